"""llama.cpp's generation speed on the same prompts as hofbench, on the same GGUF.

Run by bench/gen_vs_llama_cpp.sh, which first makes a `hofbench run --mode generate
--keep-text` (for the rendered prompts) and runs `cargo bench --bench generate` on them
(hofbench's figures, BENCH_OUT). This script tokenizes the same rendered prompts with
llama.cpp's tokenizer and times, with the same thread count and the same work (greedy,
exactly NEW new tokens per prompt, no stop tokens, prefill included):
  - llama.cpp batch 1: one prompt at a time, one llama_decode for its prompt, then one per
    new token;
  - llama.cpp batched: BATCH prompts as parallel sequences, one llama_decode for all their
    prompts, then one llama_decode per step carrying one token of every sequence.
Both use llama.cpp's low-level API (llama-cpp-python's ctypes bindings), greedy by numpy
argmax of each sequence's logits. Prints tok/s of each beside hofbench's and the ratios.

Usage: .venv/bin/python bench/gen_llama_cpp_baseline.py RUN_DIR GGUF THREADS
           --new N --batch B --hofbench BENCH_OUT.jsonl
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp import Llama


def generate(llm: Llama, prompts: list[list[int]], per_call: int, new: int, threads: int) -> float:
    n_vocab = llama_cpp.llama_n_vocab(llama_cpp.llama_model_get_vocab(llm._model.model))
    longest = max(len(p) for p in prompts)
    n_ctx = per_call * (longest + new) + 64
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = per_call * longest + 8
    params.n_ubatch = 512
    params.n_seq_max = per_call
    params.n_threads = threads
    params.n_threads_batch = threads
    params.kv_unified = True
    ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    mem = llama_cpp.llama_get_memory(ctx)
    lbatch = llama_cpp.llama_batch_init(params.n_batch, 0, per_call)

    def argmax(i: int) -> int:
        ptr = llama_cpp.llama_get_logits_ith(ctx, i)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(n_vocab,))))

    def run(group: list[list[int]]) -> None:
        n = 0
        last_index = []  # each sequence's last prompt token, in the batch
        for seq, toks in enumerate(group):
            for pos, tok in enumerate(toks):
                lbatch.token[n] = tok
                lbatch.pos[n] = pos
                lbatch.n_seq_id[n] = 1
                lbatch.seq_id[n][0] = seq
                lbatch.logits[n] = pos == len(toks) - 1
                n += 1
            last_index.append(n - 1)
        lbatch.n_tokens = n
        if llama_cpp.llama_decode(ctx, lbatch) != 0:
            raise RuntimeError("llama_decode failed")
        last = [argmax(i) for i in last_index]
        for step in range(1, new):
            for seq, toks in enumerate(group):
                lbatch.token[seq] = last[seq]
                lbatch.pos[seq] = len(toks) + step - 1
                lbatch.n_seq_id[seq] = 1
                lbatch.seq_id[seq][0] = seq
                lbatch.logits[seq] = True
            lbatch.n_tokens = len(group)
            if llama_cpp.llama_decode(ctx, lbatch) != 0:
                raise RuntimeError("llama_decode failed")
            last = [argmax(i) for i in range(len(group))]
        llama_cpp.llama_memory_clear(mem, True)

    try:
        run(prompts[:1])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(prompts), per_call):
            run(prompts[i : i + per_call])
        return time.perf_counter() - start
    finally:
        llama_cpp.llama_batch_free(lbatch)
        llama_cpp.llama_free(ctx)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("gguf", type=Path)
    ap.add_argument("threads", type=int)
    ap.add_argument("--new", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--hofbench", type=Path, required=True)
    a = ap.parse_args()

    rows = [json.loads(line) for line in open(a.run_dir / "results.jsonl", encoding="utf-8")]
    llm = Llama(model_path=str(a.gguf), n_ctx=512, n_threads=a.threads,
                n_threads_batch=a.threads, verbose=False)
    texts = [next(t for t in r["rendered"] if t) for r in rows]
    prompts = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]
    tokens = sum(len(p) for p in prompts)
    print(f"{len(prompts)} prompts, {tokens} prompt tokens, {a.new} new tokens each, "
          f"{a.threads} threads, batches of {a.batch}")
    work = len(prompts) * a.new
    theirs = {
        "batch 1": work / generate(llm, prompts, 1, a.new, a.threads),
        "batched": work / generate(llm, prompts, a.batch, a.new, a.threads),
    }
    ours = {}
    for line in a.hofbench.read_text().splitlines():
        r = json.loads(line)
        if r["prompts"] != len(prompts) or r["new_tokens"] != a.new:
            raise SystemExit(f"{a.hofbench} was measured on other work: {r}")
        ours[r["setting"]] = r["tok_s"]
    print(f"\n{'engine':32} {'batch 1 tok/s':>14} {'batched tok/s':>14}")
    print(f"{'hofbench (f32 weights)':32} {ours['batch 1']:14.1f} {ours['batched']:14.1f}")
    print(f"{'llama.cpp (GGUF as is)':32} {theirs['batch 1']:14.1f} {theirs['batched']:14.1f}")
    print("\nratios (hofbench / llama.cpp, same prompts, same run):")
    for setting in ("batch 1", "batched"):
        print(f"  {setting:8} {ours[setting] / theirs[setting]:.2f}x")
    print(f"  hofbench batched / llama.cpp batched (the target, >= 1.0): "
          f"{ours['batched'] / theirs['batched']:.2f}x")


if __name__ == "__main__":
    main()
