#!/usr/bin/env bash
# hofbench vs llama.cpp (llama-cpp-python: per-prompt loop, with prefix KV reuse, batched) vs
# Hugging Face transformers (fp32, the GGUF dequantized), in one go, on the same GGUF and the
# same rendered prompts, with the same number of threads; prints tok/s, items/s, ratios and
# hofbench's peak RSS. Needs the fixture venv (tests/fixtures/setup_venv.sh).
# Usage: bash bench/vs_llama_cpp.sh [THREADS]   (default: all cores)
# Environment: BENCH_COUNTRIES (default "Japan,Albania"), BENCH_LIMIT (prompts per dimension,
# default 1), BENCH_BATCH (items per batch, default 8).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
countries=${BENCH_COUNTRIES:-Japan,Albania}
limit=${BENCH_LIMIT:-1}
batch=${BENCH_BATCH:-8}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release --quiet
gguf=$(./target/release/hofbench --quiet fetch)
# The CLI run: rendered prompts for everyone, hofbench's whole-run speed and peak RSS.
RAYON_NUM_THREADS=$threads /usr/bin/time -f '%M' -o "$out/rss_kib" ./target/release/hofbench \
    --quiet run --countries "$countries" --limit "$limit" --batch-size "$batch" --keep-text \
    --out "$out/run"
# hofbench prefill and scorer throughput on exactly those prompts (criterion).
rm -rf target/criterion/prefill target/criterion/scorer
RAYON_NUM_THREADS=$threads BENCH_RUN_DIR="$out/run" BENCH_BATCH=$batch \
    cargo bench --quiet --bench scorer >"$out/criterion.log" 2>&1 || { cat "$out/criterion.log"; exit 1; }
grep -E '^(prefill|scorer)/|thrpt' "$out/criterion.log" || true
.venv/bin/python bench/llama_cpp_baseline.py "$out/run" "$gguf" "$threads" \
    --criterion target/criterion --batch "$batch" --rss-kib "$(tail -1 "$out/rss_kib")"
