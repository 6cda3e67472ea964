#!/usr/bin/env bash
# Runs every hofbench mode on a small grid with one binary, so that a refactor can be checked
# for bit-identical results: run it with the binary before and after, then compare the folders
# with `bench/before_after.sh --compare A B` (timings and paths are left out of the comparison).
#   bash bench/before_after.sh BIN OUT_DIR
#   bash bench/before_after.sh --compare OUT_A OUT_B
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${1:-}" = "--compare" ]; then
  exec python3 "$here/bench/before_after_compare.py" "$2" "$3"
fi
bin="$(realpath "$1")"; out="$(realpath -m "$2")"
rm -rf "$out"; mkdir -p "$out/runs" "$out/log"
cd "$here"
step() { # step NAME ARGS... : run one command, keep its exit code, stdout and stderr
  local name="$1"; shift
  "$bin" --quiet "$@" >"$out/log/$name.stdout" 2>"$out/log/$name.stderr"
  echo "$?" >"$out/log/$name.rc"
  echo "$name: rc $(cat "$out/log/$name.rc")"
}
grid=(--countries Japan,Albania --dimensions idv,mas --limit 2)
head -n 2 prompts/requests/pdi.jsonl >"$out/pdi2.jsonl"
step personas run "${grid[@]}" --keep-text --out "$out/runs/personas"
step control run --approach control --dimensions idv,mas --limit 2 --out "$out/runs/control"
step system run "${grid[@]}" --system "Be brief." --out "$out/system"
step quantized run "${grid[@]}" --weights quantized --out "$out/quantized"
step gemma run --model gemma3-270m --countries Japan --dimensions idv --limit 2 --out "$out/runs/gemma"
step shard0 run "${grid[@]}" --batch-size 2 --shard 0/2 --out "$out/shard0"
step shard1 run "${grid[@]}" --batch-size 2 --shard 1/2 --out "$out/shard1"
step merge merge "$out/shard0" "$out/shard1" --out "$out/merged"
step translate translate --model tests/fixtures/nllb/tiny --languages jpn_Jpan,deu_Latn \
  --beams 1 --max-length 10 --prompts "$out/pdi2.jsonl" --out "$out/tcache"
step multilingual run --approach multilingual --translations "$out/tcache" --prompts "$out/pdi2.jsonl" \
  --countries Japan,Germany --dimensions pdi --out "$out/runs/multilingual"
step import_translations import-translations tests/fixtures/translations/paper_translations.csv \
  --prompts tests/fixtures/translations/paper_prompts.csv --out "$out/tcache-imported"
step generate run --mode generate --rounds 1 --max-new-tokens 12 --countries Japan --dimensions idv \
  --limit 1 --judge smollm2-135m-instruct --out "$out/runs/generate"
step import_results import-results tests/fixtures/import/personas_idv.csv --model paper-model \
  --out "$out/runs/imported"
step verify_merged verify "$out/merged" --sample 4
step verify verify "$out/runs/personas" --sample 4
step stats stats "$out/runs"
step stats_control stats "$out/runs/control"
step report report "$out/runs/personas"
step compare compare "$out/runs/personas" "$out/system" --out "$out/comparison"
step prompts prompts --dimension idv
step models models
# Bad input: the message may improve, the exit code must not change.
step bad_country run --countries Atlantis --out "$out/bad1"
step bad_dimension run --dimensions xyz --out "$out/bad2"
head -c 100000 ~/.cache/hofbench/models/smollm2-135m-instruct/*.gguf >"$out/truncated.gguf"
step truncated_gguf run --model "$out/truncated.gguf" --out "$out/bad3"
step other_mode_flag run --rounds 3 "${grid[@]}" --out "$out/bad4"
rm -f "$out/truncated.gguf"
