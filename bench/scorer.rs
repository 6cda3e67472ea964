//! `cargo bench --bench scorer` (criterion): throughput of the default model (SmolLM2-135M,
//! GGUF Q4_1, f32 weights as `--weights auto` picks on CPU) on rendered benchmark prompts:
//! - `prefill/full_prompts`: prompt tokens/s running every prompt in full (plain prefill,
//!   padded batches of --batch-size items), comparable with any engine's prompt processing;
//! - `scorer/items`: items/s (one item = both option orders) the way `hofbench run` scores,
//!   token-budget batches with the two orders sharing their prefix;
//! - `prefill/quantized`: the same prefill with candle's quantized matmul (`--weights
//!   quantized`), the slow path f32 dequantisation avoids. Off unless BENCH_QUANTIZED=1.
//!
//! Prompts: BENCH_RUN_DIR=DIR reads the rendered prompts of a `hofbench run --keep-text`
//! (what bench/vs_llama_cpp.sh does, so that every engine sees the same text); otherwise the
//! first BENCH_ITEMS (default 8) built-in requests with rotating personas. BENCH_BATCH items
//! per batch (default 8), BENCH_MAX_TOKENS the token budget (default 4096, as `run`).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use hofbench::models::WeightFormat;
use hofbench::prompts::PromptSet;
use hofbench::scorer::{token_budget_batches, Scorer};
use hofbench::template::{personas_user_turn, Order};
use hofbench::{countries, fetch, results};
use std::path::Path;
use std::time::Duration;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Both orders' token ids of each item, sorted by length as `run` sorts them.
fn items(scorer: &Scorer) -> Vec<[Vec<u32>; 2]> {
    let mut out = Vec::new();
    if let Ok(dir) = std::env::var("BENCH_RUN_DIR") {
        let rows = results::read(&Path::new(&dir).join(results::RESULTS_FILE))
            .expect("BENCH_RUN_DIR/results.jsonl")
            .rows;
        for row in rows {
            let texts = row.rendered.expect("a run made with --keep-text");
            out.push(
                texts.map(|t| hofbench::scorer::encode_with_bos(&scorer.tokenizer, &t).unwrap()),
            );
        }
    } else {
        let set = PromptSet::builtin().unwrap();
        let all = countries::builtin();
        for (i, item) in set
            .items
            .iter()
            .take(env_usize("BENCH_ITEMS", 8))
            .enumerate()
        {
            let country = &all[(7 * i) % all.len()];
            out.push(Order::BOTH.map(|order| {
                let turn = personas_user_turn(&country.persona_name, item, order).unwrap();
                scorer.encode_user_turn(&turn).unwrap().1
            }));
        }
    }
    out.sort_by_key(|pair| pair[0].len().max(pair[1].len()));
    out
}

/// Every prompt in full, `batch` items (2 * batch prompts) per pass.
fn prefill(scorer: &Scorer, items: &[[Vec<u32>; 2]], batch: usize) {
    for chunk in items.chunks(batch) {
        let rows: Vec<&[u32]> = chunk.iter().flat_map(|p| [&p[0][..], &p[1][..]]).collect();
        scorer.model.next_token_logits(&rows).unwrap();
    }
}

/// Items as `hofbench run` scores them.
fn score(scorer: &Scorer, items: &[[Vec<u32>; 2]], batch: usize, max_tokens: usize) {
    let pairs: Vec<[&[u32]; 2]> = items.iter().map(|p| [&p[0][..], &p[1][..]]).collect();
    let names: Vec<String> = (0..2 * items.len()).map(|i| format!("row {i}")).collect();
    for range in token_budget_batches(&pairs, batch, max_tokens).0 {
        let rows: Vec<&[u32]> = pairs[range.clone()].iter().flatten().copied().collect();
        scorer
            .score(&rows, 2, &names[2 * range.start..2 * range.end])
            .unwrap();
    }
}

fn benches(c: &mut Criterion) {
    let model = fetch::resolve(None, true).expect("the default model (hofbench fetch)");
    let scorer = Scorer::load(&model.path, &candle_core::Device::Cpu, WeightFormat::F32).unwrap();
    let items = items(&scorer);
    let tokens: usize = items.iter().map(|p| p[0].len() + p[1].len()).sum();
    let batch = env_usize("BENCH_BATCH", 8);
    let max_tokens = env_usize("BENCH_MAX_TOKENS", 4096);
    eprintln!(
        "{} items ({} prompts, {tokens} prompt tokens), batches of {batch} items",
        items.len(),
        2 * items.len()
    );

    let mut g = c.benchmark_group("prefill");
    // Each iteration takes seconds: ten single runs, not criterion's growing series.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(tokens as u64));
    g.bench_function("full_prompts", |b| {
        b.iter(|| prefill(&scorer, &items, batch))
    });
    if std::env::var("BENCH_QUANTIZED").as_deref() == Ok("1") {
        let q = Scorer::load(
            &model.path,
            &candle_core::Device::Cpu,
            WeightFormat::Quantized,
        )
        .unwrap();
        g.bench_function("quantized", |b| b.iter(|| prefill(&q, &items, batch)));
    }
    g.finish();

    let mut g = c.benchmark_group("scorer");
    // Each iteration takes seconds: ten single runs, not criterion's growing series.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(items.len() as u64));
    g.bench_function("items", |b| {
        b.iter(|| score(&scorer, &items, batch, max_tokens))
    });
    g.finish();
}

criterion_group!(scorer_benches, benches);
criterion_main!(scorer_benches);
