#!/usr/bin/env bash
# Builds the CUDA binary of hofbench on a machine without a GPU, following
# shared/design/cuda.md: the CUDA 13.0 toolkit from PyPI in a cached venv, the unversioned .so
# names the linker wants, a link-time stub of the driver (libcuda), and a target dir of its own
# (target-cuda/) so the default CPU build is untouched.
#
# Output (dist/ is git-ignored; both fit the 64 MiB carry to a GPU machine):
#   dist/sm<CAP>/hofbench.xz        the stripped, xz-compressed `hofbench` built with --features cuda
#   dist/sm<CAP>/cuda_kernels.xz    the test binary of tests/cuda_kernels.rs (kernel vs CPU reference)
# bench/gpu.sh unpacks and runs them there.
#
# Usage: bench/build-cuda.sh [--cap 90|86|89] [--jobs N]
#   --cap 90  H100/H200 (default)   --cap 89  RTX 6000 Ada   --cap 86  RTX A6000 (Ampere)
# Environment: HOFBENCH_CUDA_CACHE overrides where the toolkit venv lives
# (default ~/.cache/hofbench/cuda-toolkit-13.0.2).
set -euo pipefail

cap=90
jobs=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --cap)
        cap="${2:?--cap needs a value: 90, 89 or 86}"
        shift 2
        ;;
    --jobs)
        jobs="${2:?--jobs needs a number}"
        shift 2
        ;;
    -h | --help)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "build-cuda.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
done
case "$cap" in
90 | 89 | 86) ;;
*)
    echo "build-cuda.sh: --cap must be 90 (H100/H200), 89 (RTX 6000 Ada) or 86 (RTX A6000), not '$cap'" >&2
    exit 2
    ;;
esac

repo="$(cd "$(dirname "$0")/.." && pwd)"
toolkit_version=13.0.2
cache="${HOFBENCH_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hofbench/cuda-toolkit-$toolkit_version}"
venv="$cache/venv"

# 1. The toolkit. Pinned to 13.0: the GPU machines' driver (580) runs CUDA 13.0; PTX from a newer
#    nvcc may not load there.
if [[ ! -f "$venv/.installed-$toolkit_version" ]]; then
    echo "== installing cuda-toolkit $toolkit_version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet \
        "cuda-toolkit[nvcc,crt,nvvm,cudart,cublas,curand,nvrtc,cccl]==$toolkit_version"
    touch "$venv/.installed-$toolkit_version"
fi
cuda_home="$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)"
if [[ ! -x "$cuda_home/bin/nvcc" ]]; then
    echo "build-cuda.sh: no nvcc at $cuda_home/bin/nvcc; remove $venv and run again" >&2
    exit 1
fi

# 2. The unversioned names the linker looks for (the wheels ship only the .so.N run-time names).
for lib in cublas cublasLt cudart nvrtc; do
    ln -sf "lib$lib.so.13" "$cuda_home/lib/lib$lib.so"
done
ln -sf libcurand.so.10 "$cuda_home/lib/libcurand.so"

# 3. A link-time stub of the driver: every cu* function that cudarc's driver bindings declare, as
#    an empty function, in lib/stubs/ (where cudarc's build script looks, as in a real toolkit).
#    The real libcuda.so.1 of the GPU machine replaces it at run time; it is never shipped.
cudarc_version="$(awk '/^name = "cudarc"$/ { getline; gsub(/[^0-9.]/, ""); print }' "$repo/Cargo.lock")"
(cd "$repo" && cargo fetch --quiet)
cudarc_driver="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$cudarc_version"/src/driver/sys/mod.rs | head -n1)"
stubs="$cuda_home/lib/stubs"
mkdir -p "$stubs"
if [[ ! -f "$stubs/libcuda.so" || "$cudarc_driver" -nt "$stubs/libcuda.so" ]]; then
    echo "== building the libcuda link stub from $cudarc_driver"
    grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+' "$cudarc_driver" | sed 's/^pub unsafe fn //' | sort -u |
        sed 's/.*/int &(void) { return 999; }/' >"$stubs/libcuda_stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda_stub.c"
fi

# 4. The build, in its own target dir.
export CUDA_HOME="$cuda_home"
export PATH="$cuda_home/bin:$PATH"
export CUDA_COMPUTE_CAP="$cap"
export CARGO_TARGET_DIR="$repo/target-cuda"
jobs_arg=()
[[ -n "$jobs" ]] && jobs_arg=(--jobs "$jobs")
echo "== cargo build --release --features cuda (compute capability $cap, $CARGO_TARGET_DIR)"
(cd "$repo" && cargo build --release --features cuda "${jobs_arg[@]}")
echo "== cargo test --release --features cuda --test cuda_kernels --no-run"
kernel_test="$(cd "$repo" && cargo test --release --features cuda --test cuda_kernels --no-run \
    --message-format=json "${jobs_arg[@]}" 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda_kernels" and m.get("executable"):
        print(m["executable"])')"

# 5. Stripped and compressed, one folder per compute capability.
dist="$repo/dist/sm$cap"
mkdir -p "$dist"
for pair in "hofbench:$CARGO_TARGET_DIR/release/hofbench" "cuda_kernels:$kernel_test"; do
    name="${pair%%:*}"
    binary="${pair#*:}"
    strip -o "$dist/$name" "$binary"
    xz -T0 -6 -f "$dist/$name"
done
echo "$cap" >"$dist/compute_cap"
(cd "$repo" && git rev-parse HEAD 2>/dev/null || echo unknown) >"$dist/commit"
ls -l "$dist"
du -ch "$dist"/*.xz | tail -n1
