#!/usr/bin/env bash
# Generation tok/s of hofbench vs llama.cpp (llama-cpp-python's low-level batched API) on the
# same GGUF (SmolLM2-135M-Instruct Q4_1) and the same rendered prompts, batch 1 and batched,
# in one go, with the same thread count; greedy, exactly NEW new tokens per prompt, prefill
# included; prints tok/s and ratios. Needs the fixture venv (tests/fixtures/setup_venv.sh).
# Usage: bash bench/gen_vs_llama_cpp.sh [THREADS]   (default: all cores)
# Environment: BENCH_COUNTRIES (default "Japan,Albania"), BENCH_LIMIT (prompts per dimension,
# default 1), BENCH_DIMENSIONS (default "idv,mas"), BENCH_BATCH (prompts per batch, default 8),
# BENCH_NEW (new tokens per prompt, default 64).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
countries=${BENCH_COUNTRIES:-Japan,Albania}
limit=${BENCH_LIMIT:-1}
dimensions=${BENCH_DIMENSIONS:-idv,mas}
batch=${BENCH_BATCH:-8}
new=${BENCH_NEW:-64}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release --quiet
gguf=$(./target/release/hofbench --quiet fetch)
# The rendered prompts (two rounds per item: both action orders), with a short reply each.
RAYON_NUM_THREADS=$threads ./target/release/hofbench --quiet run --mode generate \
    --countries "$countries" --dimensions "$dimensions" --limit "$limit" --max-new-tokens 4 \
    --keep-text --out "$out/run" >/dev/null
RAYON_NUM_THREADS=$threads BENCH_RUN_DIR="$out/run" BENCH_BATCH=$batch BENCH_NEW=$new \
    BENCH_OUT="$out/hofbench.jsonl" cargo bench --quiet --bench generate >"$out/bench.log" 2>&1 \
    || { cat "$out/bench.log"; exit 1; }
.venv/bin/python bench/gen_llama_cpp_baseline.py "$out/run" "$gguf" "$threads" \
    --new "$new" --batch "$batch" --hofbench "$out/hofbench.jsonl"
