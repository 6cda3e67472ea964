"""The table of bench/vs_llama_cpp.sh --model: prompt tokens/s, items/s, peak RSS and achieved
GFLOP/s (as a share of the CPU's f32 peak) of each engine on the same GGUF and prompts.

Inputs: the GGUF (its shape gives the FLOPs), the peers' JSON lines (bench/llama_cpp_baseline.py
--json-out: the rendered prompts' lengths and each peer's time and peak RSS), and per hofbench weight format the
`hofbench-once` lines of `BENCH_ONCE=1 cargo bench --bench scorer` plus the peak RSS of its
`hofbench run`.

FLOPs of one prompt of n tokens, the way every engine here computes it (logits at the last
position only): 2 * (parameters of the layers' matrices) * n, plus attention 4 * layers *
heads * head_dim * n (n + 1) / 2, plus the output head 2 * vocab * hidden. Items/s of
hofbench's scorer (the two orders share their prefix) do less work than that: no GFLOP/s.

The CPU's f32 peak: cores * FMA units * f32 lanes * 2 * clock, from lscpu (lanes 16 with
avx512f, else 8; clock: `CPU max MHz`, else BogoMIPS / 2; FMA units per core: --fma-units,
default 2, which holds for Zen 4/5 and Xeon cores with two 512-bit or 256-bit FMA ports).

Usage: .venv/bin/python bench/model_report.py GGUF PEERS_JSONL
           --hofbench NAME ONCE_FILE RSS_KIB [--hofbench ...] [--fma-units 2]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import gguf


def flops_per_prompt(path: Path, lengths: list[int]) -> float:
    r = gguf.GGUFReader(str(path))
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()

    def u32(key: str) -> int:
        return int(r.fields[f"{arch}.{key}"].parts[-1][0])

    layers, hidden, heads = u32("block_count"), u32("embedding_length"), u32("attention.head_count")
    head_dim = u32("attention.key_length") if f"{arch}.attention.key_length" in r.fields \
        else hidden // heads
    matrix = sum(int(t.n_elements) for t in r.tensors
                 if t.name.startswith("blk.") and len([d for d in t.shape if d > 1]) == 2)
    vocab = next(int(t.shape[-1]) for t in r.tensors if t.name == "token_embd.weight")
    total = 0.0
    for n in lengths:
        total += 2 * matrix * n + 4 * layers * heads * head_dim * n * (n + 1) / 2
        total += 2 * vocab * hidden
    return total / len(lengths)


def cpu_peak_gflops(fma_units: int) -> tuple[float, str]:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout

    def field(name: str) -> str | None:
        m = re.search(rf"^{re.escape(name)}:\s*(.+)$", text, re.M)
        return m.group(1).strip() if m else None

    cores = int(field("Core(s) per socket") or 1) * int(field("Socket(s)") or 1)
    flags = field("Flags") or ""
    lanes = 16 if "avx512f" in flags.split() else 8
    mhz = field("CPU max MHz")
    clock = float(mhz) / 1e3 if mhz else float(field("BogoMIPS") or 0) / 2e3
    peak = cores * fma_units * lanes * 2 * clock
    how = (f"{cores} cores x {fma_units} FMA units x {lanes} f32 lanes x 2 x {clock:.2f} GHz "
           f"({'CPU max MHz' if mhz else 'BogoMIPS / 2'})")
    return peak, how


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", type=Path)
    ap.add_argument("peers", type=Path)
    ap.add_argument("--hofbench", nargs=3, action="append", default=[],
                    metavar=("NAME", "ONCE_FILE", "RSS_KIB"))
    ap.add_argument("--fma-units", type=int, default=2)
    a = ap.parse_args()

    records = [json.loads(line) for line in a.peers.read_text().splitlines() if line.strip()]
    lengths = next(r["lengths"] for r in records if "lengths" in r)
    per_prompt = flops_per_prompt(a.gguf, lengths)
    total_flops = per_prompt * len(lengths)
    peak, how = cpu_peak_gflops(a.fma_units)
    size = a.gguf.stat().st_size

    # name -> (prefill seconds or None, items/s or None, peak RSS KiB)
    rows: list[tuple[str, float | None, float | None, int | None]] = []
    tokens = sum(lengths)
    items = len(lengths) // 2
    for name, once_file, rss in a.hofbench:
        once = {}
        for line in Path(once_file).read_text().splitlines():
            if line.startswith("hofbench-once "):
                _, key, val = line.split()
                once[key] = float(val)
        rows.append((f"hofbench {name}", once.get("prefill/full_prompts"),
                     items / once["scorer/items"] if "scorer/items" in once else None, int(rss)))
    for p in (r for r in records if "engine" in r):
        if p["tokens"] != tokens:
            print(f"warning: {p['engine']} saw {p['tokens']} tokens, hofbench {tokens}")
        rows.append((p["engine"], p["seconds"], p["items"] / p["seconds"], p["peak_rss_kib"]))

    print(f"{a.gguf.name}: {size / 2**30:.2f} GiB, {items} items, {len(lengths)} prompts, "
          f"{tokens} prompt tokens, {per_prompt / 1e9:.1f} GFLOP per prompt")
    print(f"CPU f32 peak {peak:.0f} GFLOP/s = {how}")
    print(f"\n{'engine':42} {'prompt tok/s':>12} {'items/s':>8} {'peak RSS':>10} "
          f"{'GFLOP/s':>8} {'of peak':>8}")
    for name, secs, ips, rss in rows:
        tps = f"{tokens / secs:12.1f}" if secs else f"{'-':>12}"
        gf = total_flops / secs / 1e9 if secs else None
        gfs = f"{gf:8.1f} {gf / peak:8.1%}" if gf else f"{'-':>8} {'-':>8}"
        ipss = f"{ips:8.3f}" if ips else f"{'-':>8}"
        rsss = f"{rss / 1024:7.0f} MiB" if rss else f"{'-':>10}"
        print(f"{name:42} {tps} {ipss} {rsss} {gfs}")
    print(f"\n(hofbench items/s: `run`'s scoring, the two orders sharing their prefix; "
          f"peers' items/s: their prompt loop or batch; GGUF size + 1 GiB = "
          f"{(size + 2**30) / 2**20:.0f} MiB, x1.3 + 1 GiB = {(1.3 * size + 2**30) / 2**20:.0f} MiB)")

    print("\nratios (hofbench / peer, same prompts, same run):")
    for name, secs, ips, _ in rows:
        if not name.startswith("hofbench"):
            continue
        for peer, psecs, pips, _ in rows:
            if peer.startswith("hofbench"):
                continue
            parts = []
            if secs and psecs:
                parts.append(f"prefill tok/s {psecs / secs:.2f}x")
            if ips and pips:
                parts.append(f"items/s {ips / pips:.2f}x")
            print(f"  {name:28} vs {peer:40} " + ", ".join(parts))


if __name__ == "__main__":
    main()
