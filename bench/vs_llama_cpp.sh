#!/usr/bin/env bash
# Prompt throughput of hofbench vs llama.cpp (llama-cpp-python, the peer baseline) on the same
# GGUF, the same rendered prompts and the same number of threads, in one run.
# Needs the fixture venv (tests/fixtures/setup_venv.sh) and the default model in the cache.
# Usage: bash bench/vs_llama_cpp.sh [THREADS]   (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release --quiet
gguf=$(./target/release/hofbench --quiet fetch)
line=$(RAYON_NUM_THREADS=$threads ./target/release/hofbench run --countries "Japan,Albania,India,Sweden" \
    --limit 2 --keep-text --out "$out/run" 2>&1 | grep '^scored')
echo "hofbench: $line"
tps=$(echo "$line" | sed -E 's/.* ([0-9.]+) tok\/s$/\1/')
.venv/bin/python bench/llama_cpp_baseline.py "$out/run" "$gguf" "$threads" "$tps"
