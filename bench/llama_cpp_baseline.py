"""Peer baseline: llama.cpp (llama-cpp-python) scoring the same rendered prompts as hofbench.

Run by bench/vs_llama_cpp.sh, which first scores a grid with `hofbench run --keep-text`; this
script reads that run's results.jsonl, feeds every rendered prompt (both option orders) to
llama.cpp on the same GGUF with the same thread count, and prints prompt tokens/s:
  - full:   every prompt evaluated from an empty KV cache;
  - prefix: the second order of an item reuses the first order's KV cache up to their common
            prefix (what hofbench's shared-prefix scoring does).
Usage: .venv/bin/python bench/llama_cpp_baseline.py RUN_DIR GGUF THREADS [HOFBENCH_TOK_S]
With HOFBENCH_TOK_S (from the same run), also prints hofbench's speed as a ratio of each.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from llama_cpp import Llama


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) - 1 and a[n] == b[n]:
        n += 1
    return n


def main() -> None:
    run_dir, gguf, threads = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    ours = float(sys.argv[4]) if len(sys.argv) > 4 else None
    rows = [json.loads(line) for line in open(run_dir / "results.jsonl", encoding="utf-8")]
    llm = Llama(model_path=gguf, n_ctx=2048, n_batch=512, n_threads=threads,
                n_threads_batch=threads, logits_all=False, verbose=False)
    pairs = [[llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in r["rendered"]]
             for r in rows]
    tokens = sum(len(p[0]) + len(p[1]) for p in pairs)
    llm.eval(pairs[0][0])  # warm-up
    for mode in ("full", "prefix"):
        start = time.perf_counter()
        for first, second in pairs:
            llm.reset()
            llm.eval(first)
            if mode == "prefix":
                keep = common_prefix(first, second)
                llm.n_tokens = keep
                llm._ctx.kv_cache_seq_rm(-1, keep, -1)
                llm.eval(second[keep:])
            else:
                llm.reset()
                llm.eval(second)
        secs = time.perf_counter() - start
        tps = tokens / secs
        ratio = f"  -> hofbench is {ours / tps:.2f}x" if ours else ""
        print(f"llama.cpp {mode:6}: {tokens} prompt tokens in {secs:.1f}s = {tps:.0f} tok/s{ratio}")


if __name__ == "__main__":
    main()
