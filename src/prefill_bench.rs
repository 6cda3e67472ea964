//! `hofbench bench-prefill` (hidden; bench/gpu.sh runs it): prefill throughput of a
//! random-weight Llama of a given shape over a batch × length grid, as tokens/s, achieved
//! TFLOP/s and, given the card's peak, model FLOPs utilisation (MFU).
//!
//! FLOPs count what the forward pass computes, in the forward-only PaLM convention: 2 per
//! weight per token for every layer matrix, 2 · 2 · heads · head_dim · length² per row and
//! layer for q·kᵀ and the attention-weighted values (the full square: the causal mask is
//! applied to it, nothing is skipped), and the output head once per row (only the last
//! position is projected). Norms, rotary, softmax and the elementwise ops are not counted.

use crate::config::BenchPrefillConfig;
use crate::domain::Weights;
use crate::engine::models::llama::Config;
use crate::engine::models::{random, CausalLm, WeightFormat};
use crate::{Error, Result};
use std::time::Instant;

/// FLOPs of one prefill pass of `batch` rows of `length` tokens.
pub fn prefill_flops(cfg: &Config, batch: usize, length: usize) -> f64 {
    let d = cfg.hidden_size as f64;
    let heads = cfg.num_attention_heads as f64;
    let head_dim = cfg
        .head_dim
        .unwrap_or(cfg.hidden_size / cfg.num_attention_heads.max(1)) as f64;
    let kv = cfg.num_key_value_heads.unwrap_or(cfg.num_attention_heads) as f64;
    let ff = cfg.intermediate_size as f64;
    let layers = cfg.num_hidden_layers as f64;
    let (b, t) = (batch as f64, length as f64);
    let layer_weights = d * heads * head_dim * 2.0 + 2.0 * d * kv * head_dim + 3.0 * d * ff;
    let linear = 2.0 * layer_weights * layers * b * t;
    let attention = 2.0 * 2.0 * heads * head_dim * t * t * layers * b;
    let head = 2.0 * d * cfg.vocab_size as f64 * b;
    linear + attention + head
}

/// `16x512,32x256` → [(16, 512), (32, 256)].
pub fn parse_grid(text: &str) -> Result<Vec<(usize, usize)>> {
    text.split(',')
        .map(|cell| {
            let parsed = cell
                .trim()
                .split_once('x')
                .and_then(|(b, t)| Some((b.parse().ok()?, t.parse().ok()?)));
            match parsed {
                Some((b, t)) if b > 0 && t > 0 => Ok((b, t)),
                _ => Err(Error::Usage(format!(
                    "--grid: {cell:?} is not BATCHxLENGTH (e.g. 16x512)"
                ))),
            }
        })
        .collect()
}

pub fn bench_prefill(args: &BenchPrefillConfig, quiet: bool) -> Result<()> {
    let (cfg, name) = random::config(&args.random_weights)?;
    let device = args.device.open()?;
    let format = match args.weights {
        Weights::F32 => WeightFormat::F32,
        Weights::Bf16 => WeightFormat::Bf16,
        Weights::Auto if device.is_cuda() => WeightFormat::Bf16,
        Weights::Auto => WeightFormat::F32,
        Weights::Quantized | Weights::FastQuantized => {
            return Err(Error::Usage(
                "bench-prefill: random weights are dense: --weights f32 or bf16".into(),
            ))
        }
    };
    let t_load = Instant::now();
    let model = random::load(&cfg, &device, format, args.seed)?;
    device.synchronize()?;
    if !quiet {
        eprintln!(
            "random {name} ({}) on {} in {:.1}s",
            model.describe(),
            args.device,
            t_load.elapsed().as_secs_f64()
        );
    }
    // Token ids from a SplitMix64 stream: the values do not change the work, only the shapes.
    let mut state = args.seed;
    let mut next_id = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (state ^ (state >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        ((z ^ (z >> 29)) % cfg.vocab_size as u64) as u32
    };
    for &(batch, length) in &args.grid {
        let rows: Vec<Vec<u32>> = (0..batch)
            .map(|_| (0..length).map(|_| next_id()).collect())
            .collect();
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        // Warm-up: cuBLAS handles, kernel loading, the allocator's first blocks.
        model.next_token_logits(&refs)?;
        device.synchronize()?;
        let mut seconds = Vec::with_capacity(args.repeats);
        for _ in 0..args.repeats.max(1) {
            let t = Instant::now();
            model.next_token_logits(&refs)?;
            device.synchronize()?;
            seconds.push(t.elapsed().as_secs_f64());
        }
        seconds.sort_by(f64::total_cmp);
        let median = seconds[seconds.len() / 2];
        let flops = prefill_flops(&cfg, batch, length);
        let tflops = flops / median / 1e12;
        let line = serde_json::json!({
            "model": name,
            "device": args.device.to_string(),
            "weights": format!("{format:?}").to_lowercase(),
            "batch": batch,
            "length": length,
            "tokens": batch * length,
            "seconds_median": median,
            "seconds_min": seconds[0],
            "repeats": seconds.len(),
            "tokens_per_second": (batch * length) as f64 / median,
            "flops_per_pass": flops,
            "tflops": tflops,
            "peak_tflops": args.peak_tflops,
            "mfu": args.peak_tflops.map(|p| tflops / p),
        });
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_of_llama3_8b_are_twice_its_matrix_weights_per_token() {
        let (cfg, _) = random::config("llama3-8b").unwrap();
        // Layer matrices: 32 × (2·4096² + 2·4096·1024 + 3·4096·14336) = 6,979,321,856.
        let one_token = prefill_flops(&cfg, 1, 1);
        let head = 2.0 * 4096.0 * 128_256.0;
        let attention = 2.0 * 2.0 * 32.0 * 128.0 * 32.0;
        assert_eq!(one_token, 2.0 * 6_979_321_856.0 + head + attention);
        // The attention term grows with the square of the length.
        let (a, b) = (prefill_flops(&cfg, 1, 512), prefill_flops(&cfg, 2, 512));
        assert_eq!(b, 2.0 * a);
    }

    #[test]
    fn grid_parses_and_rejects() {
        assert_eq!(
            parse_grid("1x128, 16x512").unwrap(),
            vec![(1, 128), (16, 512)]
        );
        for bad in ["16", "0x512", "16x", "axb", ""] {
            assert!(parse_grid(bad).is_err(), "{bad}");
        }
    }
}
