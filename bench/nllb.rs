//! `cargo bench --bench nllb`: NLLB translation throughput (generated tokens/s), greedy,
//! batch 8, on a random-weight model of the NLLB-200-distilled-600M shape (d_model 1024,
//! 12+12 layers, 16 heads, ffn 4096, vocab 256206).
//!
//! Alone it builds the random model in memory and reports hofbench's tokens/s. With
//! `bench/nllb_vs_hf.sh` it loads the same safetensors and source ids that Hugging Face
//! transformers is timed on (NLLB_BENCH_MODEL, NLLB_BENCH_INPUTS) and writes its ids and
//! timing to NLLB_BENCH_OUT, so the script can check both produced the same tokens and print
//! the ratio. Environment: NLLB_BENCH_MAX_LENGTH (default 64), NLLB_BENCH_RUNS (default 2).

use candle_core::Device;
use hofbench::engine::models::nllb::{self, Config, GenerateOptions, MaxLength, NllbModel};
use std::path::Path;
use std::time::Instant;

#[path = "common.rs"]
mod common;
use common::env_usize;

fn bench_config() -> Config {
    serde_json::from_value(serde_json::json!({
        "vocab_size": 256206, "d_model": 1024, "encoder_layers": 12, "decoder_layers": 12,
        "encoder_attention_heads": 16, "decoder_attention_heads": 16,
        "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096, "max_position_embeddings": 1024
    }))
    .expect("valid config")
}

/// Eight sources of 12 to 40 tokens: `[eng_Latn] ids... </s>`, deterministic.
fn default_inputs() -> (Vec<Vec<u32>>, u32) {
    let mut state = 12345u64;
    let rows = (0..8)
        .map(|r| {
            let len = 12 + r * 4;
            let mut row = vec![256047u32];
            for _ in 0..len {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                row.push(4 + ((state >> 33) % 200_000) as u32);
            }
            row.push(2);
            row
        })
        .collect();
    (rows, 256057)
}

fn main() -> hofbench::Result<()> {
    // The binary's allocator policy, so that the bench times what `hofbench` runs.
    hofbench::engine::allocator::keep_freed_memory();
    let device = Device::Cpu;
    let t_load = Instant::now();
    let (model, source): (NllbModel, &str) = match std::env::var("NLLB_BENCH_MODEL") {
        Ok(dir) => {
            let dir = Path::new(&dir);
            let cfg = Config::from_file(&dir.join("config.json"))?;
            (NllbModel::load(dir, cfg, &device)?, "loaded")
        }
        Err(_) => (nllb::random_model(bench_config(), &device, 1)?, "random"),
    };
    let load_s = t_load.elapsed().as_secs_f64();
    let (sources, tgt) = match std::env::var("NLLB_BENCH_INPUTS") {
        Ok(path) => {
            let v: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(&path).map_err(|e| hofbench::Error::io(&path, e))?,
            )?;
            let sources: Vec<Vec<u32>> = serde_json::from_value(v["sources"].clone())?;
            (sources, v["tgt_lang"].as_u64().unwrap_or(256057) as u32)
        }
        Err(_) => default_inputs(),
    };
    let opts = GenerateOptions {
        beams: 1,
        max_length: MaxLength::Fixed(env_usize("NLLB_BENCH_MAX_LENGTH", 64)),
        length_penalty: 1.0,
    };
    // Warm-up: a short generation (allocations, thread pool).
    let warm = GenerateOptions {
        max_length: MaxLength::Fixed(4),
        ..opts.clone()
    };
    model.generate(&sources, tgt, &warm)?;
    let mut best = f64::INFINITY;
    let mut out = Vec::new();
    for _ in 0..env_usize("NLLB_BENCH_RUNS", 2) {
        let t = Instant::now();
        out = model.generate(&sources, tgt, &opts)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    // Generated tokens: everything after the decoder start, the forced language code included
    // (as the reference counts new tokens), up to and including </s>.
    let tokens: usize = out.iter().map(Vec::len).sum();
    println!(
        "nllb ({source} weights, loaded in {load_s:.1}s): greedy, batch {}, {} generated tokens \
         in {best:.2}s = {:.1} tok/s",
        sources.len(),
        tokens,
        tokens as f64 / best
    );
    if let Ok(path) = std::env::var("NLLB_BENCH_OUT") {
        let v = serde_json::json!({"ids": out, "seconds": best, "tokens": tokens});
        std::fs::write(&path, v.to_string()).map_err(|e| hofbench::Error::io(&path, e))?;
    }
    Ok(())
}
