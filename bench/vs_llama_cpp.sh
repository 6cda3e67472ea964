#!/usr/bin/env bash
# hofbench vs llama.cpp (llama-cpp-python: per-prompt loop, with prefix KV reuse, batched) vs
# Hugging Face transformers (fp32, the GGUF dequantized), in one go, on the same GGUF and the
# same rendered prompts, with the same number of threads; prints tok/s, items/s, ratios and
# peak RSS. Needs the fixture venv (tests/fixtures/setup_venv.sh).
# Usage: bash bench/vs_llama_cpp.sh [--model FILE] [THREADS]   (default: all cores)
# Environment: BENCH_COUNTRIES (default "Japan,Albania"), BENCH_LIMIT (prompts per dimension,
# default 1), BENCH_BATCH (items per batch, default 8).
#
# Without --model: the default model (SmolLM2-135M), hofbench timed by criterion
# (`cargo bench --bench scorer`, f32 weights).
# With --model FILE (any GGUF, e.g. one of bench/gen_random_gguf.py's real-size shapes):
# hofbench with the weights kept as stored and exact f32 compute (`--weights quantized`) and
# with f32 weights where their copy takes at most half the available memory, each timed once
# (`BENCH_ONCE=1 cargo bench --bench scorer`: prefill of every prompt in full, and scoring as
# `run` does) with the peak RSS of its `hofbench run`; llama.cpp and HF transformers (HF only
# where two fp32 copies fit in 70% of MemAvailable) each in their own process; then
# bench/model_report.py prints prefill tok/s, items/s, peak RSS and GFLOP/s as a share of the
# CPU's f32 peak. Environment as above, plus BENCH_DIMENSIONS (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
model=""
if [ "${1:-}" = "--model" ]; then
    model=$(realpath "$2")
    shift 2
fi
threads=${1:-$(nproc)}
countries=${BENCH_COUNTRIES:-Japan,Albania}
limit=${BENCH_LIMIT:-1}
batch=${BENCH_BATCH:-8}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release --quiet

if [ -z "$model" ]; then
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
    exit 0
fi

dims=()
[ -n "${BENCH_DIMENSIONS:-}" ] && dims=(--dimensions "$BENCH_DIMENSIONS")
# Does a 4-bytes-a-parameter copy take at most half of MemAvailable (hofbench's own rule for
# --weights auto)? HF's GGUF loader holds two fp32 copies at once: it runs where those take at
# most 70% of it.
read -r fits_f32 fits_hf < <(.venv/bin/python - "$model" <<'EOF'
import sys, gguf
params = sum(int(t.n_elements) for t in gguf.GGUFReader(sys.argv[1]).tensors)
avail = next(int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemAvailable:"))
print("yes" if 4 * params <= avail / 2 else "no", "yes" if 8 * params <= 0.7 * avail else "no")
EOF
)
formats=(quantized)
[ "$fits_f32" = yes ] && formats+=(f32)
report_args=()
for w in "${formats[@]}"; do
    RAYON_NUM_THREADS=$threads /usr/bin/time -f '%M' -o "$out/rss-$w" ./target/release/hofbench \
        --quiet run --model "$model" --weights "$w" --countries "$countries" "${dims[@]}" \
        --limit "$limit" --batch-size "$batch" --keep-text --out "$out/run-$w" >/dev/null
    RAYON_NUM_THREADS=$threads BENCH_ONCE=1 BENCH_MODEL="$model" BENCH_WEIGHTS=$w \
        BENCH_RUN_DIR="$out/run-$w" BENCH_BATCH=$batch \
        cargo bench --quiet --bench scorer >"$out/once-$w" 2>"$out/once-$w.log" \
        || { cat "$out/once-$w.log"; exit 1; }
    report_args+=(--hofbench "$w" "$out/once-$w" "$(tail -1 "$out/rss-$w")")
done
.venv/bin/python bench/llama_cpp_baseline.py "$out/run-quantized" "$model" "$threads" \
    --batch "$batch" --engines llama --json-out "$out/peers.jsonl" >/dev/null
if [ "$fits_hf" = yes ]; then
    .venv/bin/python bench/llama_cpp_baseline.py "$out/run-quantized" "$model" "$threads" \
        --batch "$batch" --engines hf --json-out "$out/peers.jsonl" >/dev/null
fi
.venv/bin/python bench/model_report.py "$model" "$out/peers.jsonl" "${report_args[@]}"
