"""Peer baselines scoring the same rendered prompts as hofbench, on the same GGUF.

Run by bench/vs_llama_cpp.sh, which first scores a grid with `hofbench run --keep-text` and
runs the criterion bench (`cargo bench --bench scorer`) on that run's prompts. This script
reads the run's results.jsonl (both option orders of every item, exactly as hofbench
rendered them) and times, with the same thread count:
  - llama.cpp (llama-cpp-python) per-prompt loop: every prompt from an empty KV cache;
  - llama.cpp per-prompt loop reusing the first order's KV cache for the second order's
    common prefix (what hofbench's shared-prefix scoring does);
  - llama.cpp batched: BATCH items' prompts as parallel sequences of one llama_decode,
    logits only at each sequence's last token;
  - Hugging Face transformers, float32, the GGUF dequantized (`from_pretrained(gguf_file=)`),
    right-padded batches of BATCH items with an attention mask.
Then prints prompt tokens/s and items/s of each beside hofbench's (criterion
`prefill/full_prompts` and `scorer/items` estimates, and the CLI run), with ratios.

Usage: .venv/bin/python bench/llama_cpp_baseline.py RUN_DIR GGUF THREADS
           [--criterion DIR] [--batch N] [--rss-kib N] [--engines llama,hf] [--json-out FILE]
--engines picks the peers to time (default both); --json-out appends one JSON line per
measurement (engine, seconds, tokens, items, this process's peak RSS so far) for
bench/model_report.py, which bench/vs_llama_cpp.sh --model uses with one process per engine
so that each peak RSS is that engine's.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import resource
import time
from pathlib import Path

import llama_cpp
from llama_cpp import Llama


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) - 1 and a[n] == b[n]:
        n += 1
    return n


def llama_cpp_loop(llm: Llama, pairs: list[list[list[int]]], share_prefix: bool) -> float:
    llm.reset()
    llm.eval(pairs[0][0])  # warm-up
    start = time.perf_counter()
    for first, second in pairs:
        llm.reset()
        llm.eval(first)
        if share_prefix:
            keep = common_prefix(first, second)
            llm.n_tokens = keep
            llm._ctx.kv_cache_seq_rm(-1, keep, -1)
            llm.eval(second[keep:])
        else:
            llm.reset()
            llm.eval(second)
    return time.perf_counter() - start


def llama_cpp_batched(llm: Llama, pairs: list[list[list[int]]], batch: int, threads: int) -> float:
    prompts = [p for pair in pairs for p in pair]
    per_pass = 2 * batch
    longest = max(len(p) for p in prompts)
    n_ctx = per_pass * longest + 64
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx
    params.n_batch = n_ctx
    params.n_ubatch = 512
    params.n_seq_max = per_pass
    params.n_threads = threads
    params.n_threads_batch = threads
    params.kv_unified = True
    ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    mem = llama_cpp.llama_get_memory(ctx)
    lbatch = llama_cpp.llama_batch_init(n_ctx, 0, per_pass)

    def decode(group: list[list[int]]) -> None:
        n = 0
        for seq, toks in enumerate(group):
            for pos, tok in enumerate(toks):
                lbatch.token[n] = tok
                lbatch.pos[n] = pos
                lbatch.n_seq_id[n] = 1
                lbatch.seq_id[n][0] = seq
                lbatch.logits[n] = pos == len(toks) - 1
                n += 1
        lbatch.n_tokens = n
        if llama_cpp.llama_decode(ctx, lbatch) != 0:
            raise RuntimeError("llama_decode failed")
        for i in range(len(group)):
            llama_cpp.llama_get_logits_ith(ctx, i)
        llama_cpp.llama_memory_clear(mem, True)

    try:
        decode(prompts[:2])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(prompts), per_pass):
            decode(prompts[i : i + per_pass])
        return time.perf_counter() - start
    finally:
        llama_cpp.llama_batch_free(lbatch)
        llama_cpp.llama_free(ctx)


def hf_batched(gguf: Path, pairs: list[list[list[int]]], batch: int, threads: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32
    ).eval()
    prompts = [p for pair in pairs for p in pair]

    def run(group: list[list[int]]) -> None:
        longest = max(len(p) for p in group)
        ids = torch.zeros((len(group), longest), dtype=torch.long)
        mask = torch.zeros((len(group), longest), dtype=torch.long)
        for i, p in enumerate(group):
            ids[i, : len(p)] = torch.tensor(p)
            mask[i, : len(p)] = 1
        with torch.no_grad():
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            last = hidden[torch.arange(len(group)), mask.sum(1) - 1]
            model.lm_head(last)

    run(prompts[:2])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(prompts), 2 * batch):
        run(prompts[i : i + 2 * batch])
    return time.perf_counter() - start


def criterion_rate(root: Path, group: str, name: str, elements: int) -> float | None:
    est = root / group / name / "new" / "estimates.json"
    if not est.exists():
        return None
    ns = json.loads(est.read_text())["mean"]["point_estimate"]
    return elements / (ns / 1e9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("gguf", type=Path)
    ap.add_argument("threads", type=int)
    ap.add_argument("--criterion", type=Path)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rss-kib", type=int)
    ap.add_argument("--engines", default="llama,hf")
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()
    engines = a.engines.split(",")

    rows = [json.loads(line) for line in open(a.run_dir / "results.jsonl", encoding="utf-8")]
    manifest = json.loads((a.run_dir / "manifest.json").read_text())
    results: dict[str, float] = {}  # name -> seconds for all items
    if "llama" in engines:
        llm = Llama(model_path=str(a.gguf), n_ctx=2048, n_batch=512, n_threads=a.threads,
                    n_threads_batch=a.threads, logits_all=False, verbose=False)
        pairs = [[llm.tokenize(t.encode("utf-8"), add_bos=False, special=True)
                  for t in r["rendered"]] for r in rows]
    else:
        # The same ids without loading llama.cpp: the tokenizer only (vocab_only).
        vocab = Llama(model_path=str(a.gguf), vocab_only=True, verbose=False)
        pairs = [[vocab.tokenize(t.encode("utf-8"), add_bos=False, special=True)
                  for t in r["rendered"]] for r in rows]
        del vocab
    items = len(pairs)
    tokens = sum(len(p[0]) + len(p[1]) for p in pairs)
    print(f"{items} items, {2 * items} prompts, {tokens} prompt tokens, {a.threads} threads, "
          f"batches of {a.batch} items")

    if a.json_out:
        with open(a.json_out, "a", encoding="utf-8") as f:
            f.write(json.dumps({"lengths": [len(p) for pair in pairs for p in pair]}) + "\n")

    def record(name: str, secs: float) -> None:
        results[name] = secs
        if a.json_out:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
            with open(a.json_out, "a", encoding="utf-8") as f:
                f.write(json.dumps({"engine": name, "seconds": secs, "tokens": tokens,
                                    "items": items, "peak_rss_kib": rss}) + "\n")

    if "llama" in engines:
        record("llama.cpp per-prompt loop", llama_cpp_loop(llm, pairs, share_prefix=False))
        record("llama.cpp per-prompt, prefix KV reuse",
               llama_cpp_loop(llm, pairs, share_prefix=True))
        record("llama.cpp batched", llama_cpp_batched(llm, pairs, a.batch, a.threads))
        del llm
    if "hf" in engines:
        record("HF transformers fp32 batched", hf_batched(a.gguf, pairs, a.batch, a.threads))

    ours_prefill = ours_items = None
    if a.criterion:
        ours_prefill = criterion_rate(a.criterion, "prefill", "full_prompts", tokens)
        ours_items = criterion_rate(a.criterion, "scorer", "items", items)
    print(f"\n{'engine':42} {'prompt tok/s':>12} {'items/s':>8}")
    if ours_prefill:
        print(f"{'hofbench prefill, full prompts (criterion)':42} {ours_prefill:12.0f} "
              f"{ours_prefill / tokens * items:8.2f}")
    if ours_items:
        print(f"{'hofbench scorer (criterion)':42} {ours_items * tokens / items:12.0f} "
              f"{ours_items:8.2f}")
    print(f"{'hofbench run (CLI, whole run)':42} {manifest['tokens_per_second']:12.0f} "
          f"{manifest['items_per_second']:8.2f}")
    for name, secs in results.items():
        print(f"{name:42} {tokens / secs:12.0f} {items / secs:8.2f}")

    print("\nratios (hofbench / baseline, same prompts, same run):")
    for name, secs in results.items():
        parts = []
        if ours_prefill:
            parts.append(f"prefill tok/s {ours_prefill / (tokens / secs):.2f}x")
        if ours_items:
            parts.append(f"scorer items/s {ours_items / (items / secs):.2f}x")
        print(f"  vs {name:40} " + ", ".join(parts))
    if a.rss_kib:
        print(f"\nhofbench run peak RSS: {a.rss_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
