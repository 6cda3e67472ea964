#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on a GPU machine into .gpu-carry/c1, c2, ... (git-ignored), each
# folder small enough to travel as the `carry` of one device call (64 MiB per call, the working
# tree included). The binaries come from bench/build-cuda.sh; the two real GGUFs (98 and
# 253 MB, far over one call) are split into parts that bench/gpu.sh joins and sha256-checks.
#
# The GPU session then makes one call per folder, back to back (files carried by an earlier call
# stay on the machine while it is warm), and runs bench/gpu.sh in the last:
#   call k < n:  carry [".gpu-carry/ck"]   command: "ls -R .gpu-carry | tail -3"
#   call n:      carry [".gpu-carry/cn"]   command: "bash bench/gpu.sh"
# .gpu-carry/PLAN lists the calls. With --models smollm2-135m-instruct only the first model is
# packed (2 calls instead of 7): gpu.sh then checks that one and says the other was not carried.
#
# Usage: bench/gpu-stage.sh [--cap 90|89|86] [--models "smollm2-135m-instruct gemma3-270m"]
set -euo pipefail

cap=90
models="smollm2-135m-instruct gemma3-270m"
while [[ $# -gt 0 ]]; do
    case "$1" in
    --cap)
        cap="${2:?--cap needs a value}"
        shift 2
        ;;
    --models)
        models="${2:?--models needs a list}"
        shift 2
        ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "gpu-stage.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
dist="dist/sm$cap"
for f in hofbench.xz cuda_kernels.xz; do
    if [[ ! -f "$dist/$f" ]]; then
        echo "gpu-stage.sh: no $dist/$f: run bench/build-cuda.sh --cap $cap first" >&2
        exit 1
    fi
done
cache="${HOFBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hofbench}"

# What travels besides the carry: tracked and untracked-not-ignored files.
tree_bytes=$(git ls-files -co --exclude-standard -z | du --files0-from=- -cb 2>/dev/null | tail -n1 | cut -f1)
limit=$((64 * 1024 * 1024))
budget=$((limit - tree_bytes - 2 * 1024 * 1024))
if ((budget < 16 * 1024 * 1024)); then
    echo "gpu-stage.sh: the working tree ($tree_bytes bytes) leaves under 16 MiB per call" >&2
    exit 1
fi

rm -rf .gpu-carry
mkdir -p .gpu-carry/pieces
cp "$dist/hofbench.xz" "$dist/cuda_kernels.xz" "$dist/compute_cap" "$dist/commit" .gpu-carry/pieces/
for card in $models; do
    toml="models/$card.toml"
    [[ -f "$toml" ]] || { echo "gpu-stage.sh: no model card $toml" >&2; exit 1; }
    file=$(sed -n 's/^file = "\(.*\)"$/\1/p' "$toml")
    src="$cache/models/$card/$file"
    [[ -f "$src" ]] || { echo "gpu-stage.sh: $src missing: run hofbench fetch $card" >&2; exit 1; }
    # Parts of a quarter call, so the greedy packing below wastes little.
    split -b $((budget / 4)) -d -a 2 "$src" ".gpu-carry/pieces/$card.gguf.part"
done

# Greedy: pieces in order (binaries first, then each model's parts), a new call when full.
call=1
used=0
mkdir -p .gpu-carry/c1
pieces="hofbench.xz cuda_kernels.xz compute_cap commit"
for card in $models; do
    pieces="$pieces $(cd .gpu-carry/pieces && ls "$card".gguf.part* | sort | tr '\n' ' ')"
done
for piece in $pieces; do
    size=$(stat -c %s ".gpu-carry/pieces/$piece")
    if ((used + size > budget)); then
        call=$((call + 1))
        used=0
        mkdir -p ".gpu-carry/c$call"
    fi
    mv ".gpu-carry/pieces/$piece" ".gpu-carry/c$call/"
    used=$((used + size))
done
rmdir .gpu-carry/pieces

{
    echo "# $call device calls, back to back (a machine stays warm 30 s after a call)."
    echo "# Working tree $tree_bytes bytes; per-call carry budget $budget bytes."
    for k in $(seq 1 "$call"); do
        if ((k < call)); then
            echo "call $k: carry [\".gpu-carry/c$k\"] command: ls -R .gpu-carry | tail -3"
        else
            echo "call $k: carry [\".gpu-carry/c$k\"] command: bash bench/gpu.sh   (timeout_s 600)"
        fi
    done
} >.gpu-carry/PLAN
cat .gpu-carry/PLAN
du -sh .gpu-carry/c*
