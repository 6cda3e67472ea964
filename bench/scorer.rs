//! `cargo bench --bench scorer`: scoring throughput of the default model (SmolLM2-135M, GGUF
//! Q4_1) on the same rendered prompts (both option orders of each item), in one run:
//! - f32 weights, the two orders sharing their common prefix (what `hofbench run` does),
//! - f32 weights, every prompt run in full,
//! - quantized weights (candle's quantized matmul), every prompt in full.
//!
//! Prints prompt-tokens/s for each and the ratios against the quantized baseline. Needs the
//! model in the cache (`hofbench fetch`). Environment: BENCH_ITEMS (default 16), BENCH_BATCH
//! (items per batch, default 8).

use hofbench::countries;
use hofbench::fetch;
use hofbench::models::WeightFormat;
use hofbench::prompts::PromptSet;
use hofbench::scorer::Scorer;
use hofbench::template::{personas_user_turn, Order};
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prompt tokens per second scoring `rows` in batches of `batch` items.
fn measure(
    scorer: &Scorer,
    rows: &[Vec<u32>],
    batch: usize,
    share_prefix: usize,
) -> hofbench::Result<f64> {
    let names: Vec<String> = (0..rows.len()).map(|i| format!("row {i}")).collect();
    let warm: Vec<&[u32]> = rows.iter().take(2).map(Vec::as_slice).collect();
    scorer.score(&warm, share_prefix, &names[..2])?;
    let t = Instant::now();
    let mut tokens = 0;
    for (chunk, chunk_names) in rows.chunks(2 * batch).zip(names.chunks(2 * batch)) {
        let refs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        scorer.score(&refs, share_prefix, chunk_names)?;
        tokens += chunk.iter().map(Vec::len).sum::<usize>();
    }
    Ok(tokens as f64 / t.elapsed().as_secs_f64())
}

fn main() -> hofbench::Result<()> {
    let n_items = env_usize("BENCH_ITEMS", 16);
    let batch = env_usize("BENCH_BATCH", 8);
    let model = fetch::resolve(None, false)?;
    let set = PromptSet::builtin()?;
    let all = countries::builtin();
    let f32_scorer = Scorer::load(&model.path, &candle_core::Device::Cpu, WeightFormat::F32)?;
    let q_scorer = Scorer::load(
        &model.path,
        &candle_core::Device::Cpu,
        WeightFormat::Quantized,
    )?;
    let mut rows = Vec::new();
    for (i, item) in set.items.iter().take(n_items).enumerate() {
        let country = &all[i % all.len()];
        for order in Order::BOTH {
            let turn = personas_user_turn(&country.persona_name, item, order)?;
            rows.push(f32_scorer.encode_user_turn(&turn)?.1);
        }
    }
    let tokens: usize = rows.iter().map(Vec::len).sum();
    println!(
        "{} prompts, {tokens} tokens, batches of {batch} items ({} prompts)",
        rows.len(),
        2 * batch
    );
    let shared = measure(&f32_scorer, &rows, batch, 2)?;
    let full = measure(&f32_scorer, &rows, batch, 1)?;
    let quant = measure(&q_scorer, &rows, batch, 1)?;
    println!(
        "f32, shared prefix : {shared:8.0} prompt tok/s  {:.2}x quantized",
        shared / quant
    );
    println!(
        "f32, full prompts  : {full:8.0} prompt tok/s  {:.2}x quantized",
        full / quant
    );
    println!("quantized (baseline): {quant:7.0} prompt tok/s");
    Ok(())
}
