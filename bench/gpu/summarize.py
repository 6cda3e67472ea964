#!/usr/bin/env python3
"""Reads what bench/gpu.sh measured and writes the summary (standard library only: it runs on
the GPU machine's python3).

  summarize.py compare EXPECTED.jsonl RESULTS.jsonl MODEL WEIGHTS TOLERANCE [subset]
      one JSON line: P(option) of a GPU run against the CPU results shipped beside the script;
      `subset`: the run scored only some of the expected items (the CPU dry run)
  summarize.py summary OUT_DIR
      OUT_DIR/summary.md from card.txt, correctness.jsonl, prefill.jsonl, grid.json
"""
import json
import os
import statistics
import sys


def read_rows(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                rows[(r["country"], r["dimension"], r["prompt_id"])] = r
    return rows


def compare(expected, results, model, weights, tolerance, subset):
    want, got = read_rows(expected), read_rows(results)
    missing = sorted(set(want) - set(got))
    diffs, by_order = [], []
    for key, w in want.items():
        g = got.get(key)
        if g is None:
            continue
        diffs.append(abs(w["p_high"] - g["p_high"]))
        by_order += [abs(a - b) for a, b in zip(w["p_high_by_order"], g["p_high_by_order"])]
    worst = max(diffs) if diffs else None
    line = {
        "model": model,
        "weights": weights,
        "items": len(diffs),
        "missing": len(missing),
        "max_abs_diff_p_high": worst,
        "mean_abs_diff_p_high": statistics.mean(diffs) if diffs else None,
        "max_abs_diff_p_high_by_order": max(by_order) if by_order else None,
        "tolerance": tolerance,
        "pass": None
        if tolerance is None
        else ((subset or not missing) and worst is not None and worst <= tolerance),
    }
    print(json.dumps(line))


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def summary(out):
    lines = ["# bench/gpu.sh", ""]
    card_path = os.path.join(out, "card.txt")
    if os.path.exists(card_path):
        with open(card_path) as f:
            lines += ["```", f.read().strip(), "```", ""]
    lines += [
        "## Correctness: P(option) against the CPU results in bench/gpu/expected/",
        "",
        "| model | weights | items | max abs diff P(high) | mean | max by order | bound | pass |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in load_jsonl(os.path.join(out, "correctness.jsonl")):
        lines.append(
            f"| {c['model']} | {c['weights']} | {c['items']} (missing {c['missing']}) "
            f"| {fmt(c['max_abs_diff_p_high'], '.2e')} | {fmt(c['mean_abs_diff_p_high'], '.2e')} "
            f"| {fmt(c['max_abs_diff_p_high_by_order'], '.2e')} | {fmt(c['tolerance'], 'g')} "
            f"| {'—' if c['pass'] is None else ('yes' if c['pass'] else 'NO')} |"
        )
    lines += [
        "",
        "## Prefill, random-weight model (target: MFU >= 50% at batch >= 16 x 512)",
        "",
        "| model | weights | batch x length | tokens | median s | tok/s | TFLOP/s | MFU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in load_jsonl(os.path.join(out, "prefill.jsonl")):
        lines.append(
            f"| {p['model']} | {p['weights']} | {p['batch']} x {p['length']} | {p['tokens']} "
            f"| {p['seconds_median']:.4f} | {p['tokens_per_second']:.0f} | {p['tflops']:.1f} "
            f"| {fmt(p['mfu'], '.1%')} |"
        )
    grid_path = os.path.join(out, "grid.json")
    if os.path.exists(grid_path):
        with open(grid_path) as f:
            g = json.load(f)
        m = g.get("manifest") or {}
        t = m.get("timing", {})
        lines += [
            "",
            "## Full personas grid (target: under 120 s for an 8B on one H200)",
            "",
            f"- command: `{g['command']}`",
            f"- exit status {g['status']}, wall clock {g['wall_seconds']:.1f} s",
        ]
        if m:
            lines += [
                f"- {m['items_scored_this_run']} items ({2 * m['items_scored_this_run']} prompts, "
                f"{m['tokens_this_run']} prompt tokens) scored in {m['seconds']:.1f} s: "
                f"{m['tokens_per_second']:.0f} tok/s",
                f"- time: load {t.get('load', 0):.1f} s, encode {t.get('encode', 0):.1f} s, "
                f"score {t.get('score', 0):.1f} s ({t.get('forward_passes')} passes, "
                f"{t.get('computed_token_ratio', 0):.2f}x the prompt tokens computed), "
                f"write {t.get('write', 0):.2f} s",
                f"- model: {m['model']['description']}",
            ]
    lines.append("")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1] == "compare":
        tol = None if sys.argv[6] == "none" else float(sys.argv[6])
        subset = len(sys.argv) > 7 and sys.argv[7] == "subset"
        compare(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], tol, subset)
    elif sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        sys.exit(f"summarize.py: unknown command {sys.argv[1]}")
