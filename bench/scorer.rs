//! `cargo bench --bench scorer`: scoring throughput of the default model (SmolLM2-135M, GGUF
//! Q4_1) with weights dequantized to f32 versus kept quantized (candle's quantized matmul),
//! measured in the same run on the same rendered prompts. Prints tok/s for each and the ratio.
//!
//! Needs the model in the cache (`hofbench fetch`). Environment: BENCH_ITEMS (default 16),
//! BENCH_BATCH (items per batch, default 8).

use hofbench::countries;
use hofbench::fetch;
use hofbench::models::WeightFormat;
use hofbench::prompts::PromptSet;
use hofbench::scorer::Scorer;
use hofbench::template::{personas_user_turn, Order};
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> hofbench::Result<()> {
    // `cargo bench` passes --bench; nothing else to parse.
    let n_items = env_usize("BENCH_ITEMS", 16);
    let batch = env_usize("BENCH_BATCH", 8);
    let model = fetch::resolve(None, false)?;
    let set = PromptSet::builtin()?;
    let all = countries::builtin();
    let mut results = Vec::new();
    for format in [WeightFormat::F32, WeightFormat::Quantized] {
        let scorer = Scorer::load(&model.path, &candle_core::Device::Cpu, format)?;
        let mut rows = Vec::new();
        for (i, item) in set.items.iter().take(n_items).enumerate() {
            let country = &all[i % all.len()];
            for order in Order::BOTH {
                let turn = personas_user_turn(&country.persona_name, item, order)?;
                rows.push(scorer.encode_user_turn(&turn)?.1);
            }
        }
        let names: Vec<String> = (0..rows.len()).map(|i| format!("row {i}")).collect();
        // Warm-up batch (allocations, thread pool).
        let first: Vec<&[u32]> = rows.iter().take(2).map(Vec::as_slice).collect();
        scorer.score(&first, &names[..2])?;
        let t = Instant::now();
        let mut tokens = 0;
        for (chunk, chunk_names) in rows.chunks(2 * batch).zip(names.chunks(2 * batch)) {
            let refs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
            scorer.score(&refs, chunk_names)?;
            tokens += chunk.iter().map(Vec::len).sum::<usize>();
        }
        let secs = t.elapsed().as_secs_f64();
        let tps = tokens as f64 / secs;
        println!("{format:?}: {tokens} tokens in {secs:.2}s = {tps:.0} tok/s ({} prompts, batch {batch} items)", rows.len());
        results.push(tps);
    }
    println!("f32 / quantized throughput ratio: {:.2}x", results[0] / results[1]);
    Ok(())
}
