#!/usr/bin/env bash
# The GPU check of issue 8 in one run, on a GPU machine with no Rust toolchain and no network.
# It builds nothing: it takes the binaries and GGUF parts that bench/gpu-stage.sh packed into
# .gpu-carry/ (carried there by the device calls listed in .gpu-carry/PLAN) and:
#   0. unpacks them, finds the CUDA libraries the binary links (cuBLAS, cuRAND, ...), reads the
#      card's name and its dense bf16 peak from the table below;
#   1. runs tests/cuda_kernels.rs (label-softmax kernel vs the CPU scorer, every family and every
#      GGUF tensor type on the GPU vs the Hugging Face fixtures);
#   2. correctness: SmolLM2 and Gemma-3-270m P(option) on the GPU (f32 and bf16 weights) against
#      the CPU results in bench/gpu/expected/ (f32 must be within 2e-3; bf16 is reported);
#   3. prefill throughput of a random-weight Llama-3-8B over a batch x length grid: tok/s,
#      TFLOP/s and MFU against the card's peak;
#   4. the full personas grid (36 countries x 250 items x 2 orders) on that model, end to end.
# Outputs (at most 7 files, in $OUT when the device tool sets it, else ./gpu-out):
#   summary.md, card.txt, kernels.log, correctness.jsonl, prefill.jsonl, grid.json, gpu.log
#
# --cpu-dry-run does the same with the CPU build (target/release/hofbench), a tiny random
# model and small grids, to prove the argument handling and the output parsing without a GPU.
#
# Usage: bash bench/gpu.sh [--cpu-dry-run] [--out DIR] [--skip-grid]
set -uo pipefail

dry_run=false
skip_grid=false
out="${OUT:-}"
while [[ $# -gt 0 ]]; do
    case "$1" in
    --cpu-dry-run)
        dry_run=true
        shift
        ;;
    --skip-grid)
        skip_grid=true
        shift
        ;;
    --out)
        out="${2:?--out needs a folder}"
        shift 2
        ;;
    -h | --help)
        sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "gpu.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
out="${out:-$repo/gpu-out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee -a "$out/gpu.log") 2>&1
work="$(mktemp -d /tmp/hofbench-gpu.XXXXXX)"
failures=()
step() { echo; echo "== $* ($(date -u +%H:%M:%S))"; }

# The models and grid of the committed CPU results (bench/gpu/expected/README.md).
models="smollm2-135m-instruct gemma3-270m"
check_countries="Japan,India,Germany"
check_limit=3
subset=""

if $dry_run; then
    bin="$repo/target/release/hofbench"
    [[ -x "$bin" ]] || { echo "gpu.sh: build the CPU binary first (cargo build --release)" >&2; exit 1; }
    device=cpu
    shape="$repo/bench/gpu/tiny-llama.json"
    prefill_args=(--grid 2x16,4x32 --repeats 2 --weights f32)
    grid_args=(--countries Japan,India --limit 2 --weights f32)
    models_cache="${HOFBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hofbench}"
    # A subset of the committed items: the CPU is slow, bf16 on it slower still.
    check_countries=Japan
    check_limit=1
    subset=subset
    echo "CPU dry run on $(uname -n): $(nproc) cores; peak 1 TFLOP/s (a stand-in)" >"$out/card.txt"
    peak=1
else
    step "0. unpack"
    carried() { find .gpu-carry -name "$1" 2>/dev/null | head -n1; }
    for name in hofbench cuda_kernels; do
        packed="$(carried "$name.xz")"
        [[ -n "$packed" ]] || { echo "gpu.sh: no .gpu-carry/*/$name.xz: see bench/gpu-stage.sh" >&2; exit 1; }
        xz -dc "$packed" >"$work/$name" && chmod +x "$work/$name"
    done
    bin="$work/hofbench"
    # The CUDA libraries the binary links: from the loader's cache, else wherever they are (the
    # toolkit, the PyTorch venv's nvidia-* packages).
    for pass in 1 2; do
        missing=$(ldd "$bin" "$work/cuda_kernels" | awk '/not found/ { print $1 }' | sort -u)
        [[ -z "$missing" ]] && break
        for lib in $missing; do
            found=$(find / \( -path /proc -o -path /sys \) -prune -o -name "$lib" -print 2>/dev/null | head -n1)
            [[ -n "$found" ]] && export LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        done
    done
    if ldd "$bin" | grep -q 'not found'; then
        ldd "$bin" | grep 'not found'
        echo "gpu.sh: CUDA libraries missing (above)" >&2
        exit 1
    fi
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    device=0
    shape=llama3-8b
    prefill_args=(--grid 1x128,4x512,8x512,16x512,32x512,64x512,16x1024,8x2048 --repeats 5 --weights bf16)
    grid_args=(--preset paper --batch-size 128 --max-batch-tokens 32768 --weights bf16)
    models_cache="$work/cache"
    query=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader | head -n1)
    name="${query%%,*}"
    built_cap=$(cat "$(dirname "$(carried hofbench.xz)")/compute_cap" 2>/dev/null || echo "?")
    card_cap=$(echo "$query" | awk -F', ' '{ gsub(/\./, "", $4); print $4 }')
    # Dense bf16 tensor peak (no sparsity), TFLOP/s, from the vendors' data sheets.
    case "$name" in
    *H200* | *H100*SXM* | *"H100 80GB HBM3"*) peak=989 ;;
    *H100*NVL*) peak=835 ;;
    *H100*PCIe* | *H100*) peak=756 ;;
    *A100*) peak=312 ;;
    *"RTX 6000 Ada"* | *L40S*) peak=362 ;;
    *"RTX A6000"* | *A40*) peak=155 ;;
    *) peak="" ;;
    esac
    {
        echo "card: $query"
        echo "dense bf16 peak: ${peak:-unknown} TFLOP/s; binary built for compute capability $built_cap"
        nvidia-smi
    } >"$out/card.txt"
    cat "$out/card.txt"
    if [[ "$built_cap" != "$card_cap" ]]; then
        echo "gpu.sh: the binary is built for compute capability $built_cap, the card is $card_cap:" \
            "rebuild with bench/build-cuda.sh --cap $card_cap" >&2
        exit 1
    fi
    # Join and check the carried GGUFs.
    for card in $models; do
        file=$(sed -n 's/^file = "\(.*\)"$/\1/p' "models/$card.toml")
        sha=$(sed -n 's/^sha256 = "\(.*\)"$/\1/p' "models/$card.toml")
        parts=$(find .gpu-carry -name "$card.gguf.part*" -printf '%f %p\n' 2>/dev/null | sort | cut -d' ' -f2)
        [[ -z "$parts" ]] && { echo "$card: not carried (bench/gpu-stage.sh --models)"; continue; }
        mkdir -p "$models_cache/models/$card"
        # shellcheck disable=SC2086
        cat $parts >"$models_cache/models/$card/$file"
        if [[ "$(sha256sum "$models_cache/models/$card/$file" | cut -d' ' -f1)" != "$sha" ]]; then
            echo "$card: the joined parts do not match the card's sha256 (a call's parts missing?)"
            rm "$models_cache/models/$card/$file"
        fi
    done
fi
export HOFBENCH_CACHE="$models_cache"
peak_args=()
[[ -n "$peak" ]] && peak_args=(--peak-tflops "$peak")

if ! $dry_run; then
    step "1. kernels and engine on the GPU (tests/cuda_kernels.rs)"
    "$work/cuda_kernels" --test-threads=1 --nocapture >"$out/kernels.log" 2>&1
    status=$?
    tail -n 40 "$out/kernels.log"
    ((status == 0)) || failures+=("kernel tests (exit $status)")
fi

step "2. correctness against bench/gpu/expected/"
: >"$out/correctness.jsonl"
for card in $models; do
    expected="bench/gpu/expected/$card.jsonl"
    file=$(sed -n 's/^file = "\(.*\)"$/\1/p' "models/$card.toml")
    if [[ ! -f "$models_cache/models/$card/$file" ]]; then
        echo "$card: no GGUF here, skipped"
        continue
    fi
    for weights in f32 bf16; do
        tolerance=none
        [[ $weights == f32 ]] && tolerance=2e-3
        run_dir="$work/check-$card-$weights"
        "$bin" --quiet run --model "$card" --countries "$check_countries" --limit "$check_limit" \
            --weights "$weights" --devices "$device" --out "$run_dir" >/dev/null
        status=$?
        if ((status != 0)); then
            failures+=("$card $weights run (exit $status)")
            continue
        fi
        python3 bench/gpu/summarize.py compare "$expected" "$run_dir/results.jsonl" \
            "$card" "$weights" "$tolerance" $subset | tee -a "$out/correctness.jsonl"
    done
done
if grep -q '"pass": false' "$out/correctness.jsonl"; then
    failures+=("P(option) beyond 2e-3")
fi

step "3. prefill throughput, random-weight $(basename "$shape")"
"$bin" bench-prefill --random-weights "$shape" --devices "$device" "${prefill_args[@]}" \
    "${peak_args[@]}" | tee "$out/prefill.jsonl"
status=${PIPESTATUS[0]}
((status == 0)) || failures+=("bench-prefill (exit $status)")

if ! $skip_grid; then
    step "4. the personas grid on the random-weight $(basename "$shape")"
    cmd=("$bin" --quiet run --model smollm2-135m-instruct --random-weights "$shape"
        --devices "$device" "${grid_args[@]}" --out "$work/grid")
    start=$(date +%s.%N)
    "${cmd[@]}" >/dev/null
    status=$?
    end=$(date +%s.%N)
    ((status == 0)) || failures+=("personas grid (exit $status)")
    python3 - "$work/grid/manifest.json" "$status" "$start" "$end" "${cmd[*]}" >"$out/grid.json" <<'EOF'
import json, os, sys
manifest, status, start, end, command = sys.argv[1:6]
m = json.load(open(manifest)) if os.path.exists(manifest) else None
print(json.dumps({"command": command, "status": int(status),
                  "wall_seconds": float(end) - float(start), "manifest": m}, indent=1))
EOF
fi

step "summary"
python3 bench/gpu/summarize.py summary "$out"
rm -rf "$work"
if ((${#failures[@]} > 0)); then
    echo "FAILED: ${failures[*]}"
    exit 1
fi
echo "all steps passed"
