//! `cargo bench --bench generate`: generation tok/s of the default model (SmolLM2-135M, GGUF
//! Q4_1, f32 weights as `--weights auto` picks on CPU), greedy, exactly BENCH_NEW new tokens
//! per prompt (no stop tokens, so every engine does the same work), prefill included:
//! - `batch 1`: one prompt at a time;
//! - `batched`: BENCH_BATCH prompts per `generate` call (default 8).
//!
//! Prompts: BENCH_RUN_DIR=DIR reads the rendered prompts of a `hofbench run --mode generate
//! --keep-text` (what bench/gen_vs_llama_cpp.sh does, so llama.cpp sees the same text);
//! otherwise BENCH_PROMPTS (default 8) built-in requests with rotating personas. Prints one
//! JSON object per setting ({"setting", "prompts", "new_tokens", "seconds", "tok_s"}) and
//! writes them to BENCH_OUT when set. BENCH_WEIGHTS=quantized keeps the GGUF blocks
//! quantized (`--weights quantized`) instead of f32. Each setting runs BENCH_REPEAT times
//! (default 1) after a warm-up; the fastest counts.

use hofbench::engine::generate::{generate, Request, RowRng, Sampling, Stop};
use hofbench::engine::loaded_model::{encode_with_bos, LoadedModel};
use hofbench::engine::models::WeightFormat;
use hofbench::prompts::PromptSet;
use hofbench::template::{personas_generate_turn, Order};
use hofbench::{countries, fetch, results};
use std::path::Path;
use std::time::Instant;

#[path = "common.rs"]
mod common;
use common::env_usize;

fn prompts(scorer: &LoadedModel) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    if let Ok(dir) = std::env::var("BENCH_RUN_DIR") {
        let rows = results::read(&Path::new(&dir).join(results::RESULTS_FILE))
            .expect("BENCH_RUN_DIR/results.jsonl")
            .rows;
        for row in rows {
            let texts = row.rendered.expect("a run made with --keep-text");
            // Generate rows keep their one prompt in its order's slot.
            let text = texts.into_iter().find(|t| !t.is_empty()).unwrap();
            out.push(encode_with_bos(&scorer.tokenizer, &text).unwrap());
        }
    } else {
        let set = PromptSet::builtin().unwrap();
        let all = countries::builtin();
        for (i, item) in set
            .items
            .iter()
            .take(env_usize("BENCH_PROMPTS", 8))
            .enumerate()
        {
            let country = &all[(7 * i) % all.len()];
            let turn = personas_generate_turn(&country.persona_name, item, Order::HighFirst);
            out.push(scorer.encode_user_turn(&turn.unwrap()).unwrap().1);
        }
    }
    out
}

fn main() {
    // The binary's allocator policy, so that the bench times what `hofbench` runs.
    hofbench::engine::allocator::keep_freed_memory();
    // `cargo bench` passes --bench; nothing else is expected.
    let path = fetch::find_card("smollm2-135m-instruct")
        .unwrap()
        .local_path();
    assert!(
        path.is_file(),
        "{} is missing: run `hofbench fetch`",
        path.display()
    );
    let format = std::env::var("BENCH_WEIGHTS")
        .ok()
        .and_then(|w| WeightFormat::from_name(&w))
        .unwrap_or(WeightFormat::F32);
    let scorer = LoadedModel::load(&path, &candle_core::Device::Cpu, format).unwrap();
    let prompts = prompts(&scorer);
    let new = env_usize("BENCH_NEW", 64);
    let batch = env_usize("BENCH_BATCH", 8);
    let repeat = env_usize("BENCH_REPEAT", 1).max(1);
    let greedy = Sampling {
        greedy: true,
        repetition_penalty: 1.0,
        ..Sampling::default()
    };
    let run = |per_call: usize| {
        for chunk in prompts.chunks(per_call) {
            let requests: Vec<Request> = chunk
                .iter()
                .map(|p| Request {
                    prompt: p,
                    rng: RowRng::from_state(0),
                })
                .collect();
            let replies = generate(
                scorer.model.as_ref(),
                &requests,
                &greedy,
                new,
                Stop::default(),
            )
            .unwrap();
            assert!(replies.iter().all(|r| r.tokens.len() == new));
        }
    };
    run(batch.min(prompts.len())); // warm-up
    let mut lines = Vec::new();
    for (setting, per_call) in [("batch 1", 1), ("batched", batch)] {
        let mut best = f64::INFINITY;
        for _ in 0..repeat {
            let t = Instant::now();
            run(per_call);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let line = serde_json::json!({
            "setting": setting,
            "weights": format!("{format:?}").to_lowercase(),
            "batch": per_call,
            "prompts": prompts.len(),
            "new_tokens": new,
            "seconds": best,
            "tok_s": (prompts.len() * new) as f64 / best,
        });
        println!("{line}");
        lines.push(line.to_string());
    }
    if let Ok(out) = std::env::var("BENCH_OUT") {
        std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    }
}
