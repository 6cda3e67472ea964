//! `cargo bench --bench scorer` (criterion): throughput of the default model (SmolLM2-135M,
//! GGUF Q4_1, f32 weights as `--weights auto` picks on CPU) on rendered benchmark prompts:
//! - `prefill/full_prompts`: prompt tokens/s running every prompt in full (plain prefill,
//!   padded batches of --batch-size items), comparable with any engine's prompt processing;
//! - `scorer/items`: items/s (one item = both option orders) the way `hofbench run` scores,
//!   token-budget batches with the two orders sharing their prefix;
//! - `prefill/quantized`: the same prefill with the weights as stored and exact f32
//!   products (`--weights quantized`). Off unless BENCH_QUANTIZED=1.
//!
//! BENCH_MODEL=FILE scores another GGUF (a card name or path, as `--model`), BENCH_WEIGHTS
//! its weight format (`f32`, `quantized`, `fast-quantized`; default f32). BENCH_ONCE=1 skips
//! criterion for models too big for ten samples: one warm-up pass on the first batch, then
//! each of `prefill/full_prompts` and `scorer/items` timed once, printed as
//! `hofbench-once <name> <seconds>` lines (what bench/vs_llama_cpp.sh --model reads).
//!
//! Prompts: BENCH_RUN_DIR=DIR reads the rendered prompts of a `hofbench run --keep-text`
//! (what bench/vs_llama_cpp.sh does, so that every engine sees the same text); otherwise the
//! first BENCH_ITEMS (default 8) built-in requests with rotating personas. BENCH_BATCH items
//! per batch (default 8), BENCH_MAX_TOKENS the token budget (default 4096, as `run`).

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use hofbench::engine::loaded_model::{token_budget_batches, LoadedModel};
use hofbench::engine::models::WeightFormat;
use hofbench::item_scorer::{EncodedItem, ItemScorer};
use hofbench::prompts::PromptSet;
use hofbench::template::{personas_user_turn, Order};
use hofbench::{countries, fetch, results};
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "common.rs"]
mod common;
use common::env_usize;

/// Both orders' token ids of each item, sorted by length as `run` sorts them.
fn items(scorer: &LoadedModel) -> Vec<[Vec<u32>; 2]> {
    let mut out = Vec::new();
    if let Ok(dir) = std::env::var("BENCH_RUN_DIR") {
        let rows = results::read(&Path::new(&dir).join(results::RESULTS_FILE))
            .expect("BENCH_RUN_DIR/results.jsonl")
            .rows;
        for row in rows {
            let texts = row.rendered.expect("a run made with --keep-text");
            out.push(texts.map(|t| {
                hofbench::engine::loaded_model::encode_with_bos(&scorer.tokenizer, &t).unwrap()
            }));
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
fn prefill(scorer: &LoadedModel, items: &[[Vec<u32>; 2]], batch: usize) {
    for chunk in items.chunks(batch) {
        let rows: Vec<&[u32]> = chunk.iter().flat_map(|p| [&p[0][..], &p[1][..]]).collect();
        scorer.model.next_token_logits(&rows).unwrap();
    }
}

/// Items as `hofbench run` scores them.
fn score(scorer: &LoadedModel, items: &[[Vec<u32>; 2]], batch: usize, max_tokens: usize) {
    let encoded: Vec<EncodedItem> = items
        .iter()
        .enumerate()
        .map(|(i, p)| EncodedItem {
            orders: [&p[0][..], &p[1][..]],
            name: format!("item {i}"),
        })
        .collect();
    let pairs: Vec<[&[u32]; 2]> = encoded.iter().map(|e| e.orders).collect();
    let scorer = ItemScorer::new(scorer);
    for range in token_budget_batches(&pairs, batch, max_tokens).0 {
        scorer.score(&encoded[range]).unwrap();
    }
}

struct Setup {
    model: hofbench::fetch::ResolvedModel,
    scorer: LoadedModel,
    items: Vec<[Vec<u32>; 2]>,
    tokens: usize,
    batch: usize,
    max_tokens: usize,
}

fn setup() -> Setup {
    let name = std::env::var("BENCH_MODEL").ok();
    let model = fetch::resolve(name.as_deref(), true).expect("the model (hofbench fetch)");
    let format = std::env::var("BENCH_WEIGHTS")
        .ok()
        .map(|w| WeightFormat::from_name(&w).expect("BENCH_WEIGHTS: a weight format"))
        .unwrap_or(WeightFormat::F32);
    let scorer = LoadedModel::load(&model.path, &candle_core::Device::Cpu, format).unwrap();
    let items = items(&scorer);
    let tokens: usize = items.iter().map(|p| p[0].len() + p[1].len()).sum();
    let batch = env_usize("BENCH_BATCH", 8);
    let max_tokens = env_usize("BENCH_MAX_TOKENS", 4096);
    eprintln!(
        "{}: {} items ({} prompts, {tokens} prompt tokens), batches of {batch} items, {}",
        model.name,
        items.len(),
        2 * items.len(),
        scorer.model.describe()
    );
    Setup {
        model,
        scorer,
        items,
        tokens,
        batch,
        max_tokens,
    }
}

/// BENCH_ONCE=1: each measurement once, after a warm-up on the first batch.
fn once(s: &Setup) {
    prefill(&s.scorer, &s.items[..s.batch.min(s.items.len())], s.batch);
    let t = Instant::now();
    prefill(&s.scorer, &s.items, s.batch);
    println!(
        "hofbench-once prefill/full_prompts {:.4}",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    score(&s.scorer, &s.items, s.batch, s.max_tokens);
    println!(
        "hofbench-once scorer/items {:.4}",
        t.elapsed().as_secs_f64()
    );
    println!("hofbench-once tokens {}", s.tokens);
    println!("hofbench-once items {}", s.items.len());
}

fn benches(c: &mut Criterion) {
    let s = setup();
    let (scorer, items, batch, max_tokens) = (&s.scorer, &s.items, s.batch, s.max_tokens);

    let mut g = c.benchmark_group("prefill");
    // Each iteration takes seconds: ten single runs, not criterion's growing series.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(s.tokens as u64));
    g.bench_function("full_prompts", |b| b.iter(|| prefill(scorer, items, batch)));
    if std::env::var("BENCH_QUANTIZED").as_deref() == Ok("1") {
        let q = LoadedModel::load(
            &s.model.path,
            &candle_core::Device::Cpu,
            WeightFormat::Quantized,
        )
        .unwrap();
        g.bench_function("quantized", |b| b.iter(|| prefill(&q, items, batch)));
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
        b.iter(|| score(scorer, items, batch, max_tokens))
    });
    g.finish();
}

criterion_group!(scorer_benches, benches);

fn main() {
    // The binary's allocator policy, so that the bench times what `hofbench` runs.
    hofbench::engine::allocator::keep_freed_memory();
    if std::env::var("BENCH_ONCE").as_deref() == Ok("1") {
        once(&setup());
        return;
    }
    scorer_benches();
    Criterion::default().configure_from_args().final_summary();
}
