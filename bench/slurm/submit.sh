#!/usr/bin/env bash
# Queue a hofbench grid on a Slurm cluster: an array of N shard tasks, then a merge job that
# starts when all of them have succeeded (sbatch --dependency=afterok:<array job>).
#
#   bash bench/slurm/submit.sh N OUT [sbatch options for the shard tasks --] [hofbench run args]
#   bash bench/slurm/submit.sh 8 runs/llama3-8b -- --model meta-llama/Meta-Llama-3-8B-Instruct --preset paper
#   bash bench/slurm/submit.sh 4 runs/llama3-8b --partition=gpu --gpus-per-task=4 -- --preset paper
#
# Prints the two job ids. HOFBENCH (the binary, default: hofbench on PATH) and HOFBENCH_DEVICES
# are passed on to the jobs.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
n=$1
out=$2
shift 2
case $n in '' | *[!0-9]* | 0) echo "N must be a positive number of shards, got '$n'" >&2; exit 2 ;; esac
sbatch_args=()
if [[ " $* " == *" -- "* ]]; then
    while [ "$1" != "--" ]; do sbatch_args+=("$1"); shift; done
fi
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export HOFBENCH_OUT=$out HOFBENCH_SHARDS=$n

array=$(sbatch --parsable --export=ALL --array="0-$((n - 1))" "${sbatch_args[@]}" \
    "$here/hofbench-array.sbatch" "$@")
array=${array%%;*} # --parsable prints "id" or "id;cluster"
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" "$here/hofbench-merge.sbatch")
merge=${merge%%;*}
echo "shards: job $array (array 0-$((n - 1))), merge: job $merge -> $out/merged"
