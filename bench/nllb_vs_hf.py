"""NLLB translation throughput: hofbench (candle, Rust) vs Hugging Face transformers (PyTorch),
greedy, batch 8, on the same random-weight M2M100 of the NLLB-200-distilled-600M shape
(d_model 1024, 12+12 layers, 16 heads, ffn 4096, vocab 256206), the same source ids and the
same number of threads, in one run. The weights are generated here (seeded) into a temporary
folder and deleted afterwards.

Usage (from the repo root): .venv/bin/python bench/nllb_vs_hf.py [--max-length 64] [--threads N]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = M2M100Config(
        vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12,
        encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
        decoder_ffn_dim=4096, max_position_embeddings=1024, scale_embedding=True,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        encoder_layerdrop=0.0, decoder_layerdrop=0.0,
    )
    model = M2M100ForConditionalGeneration(cfg).eval()
    g = torch.Generator().manual_seed(1)
    lens = [12 + 4 * r for r in range(8)]
    sources = [[256047] + torch.randint(4, 200_000, (n,), generator=g).tolist() + [2] for n in lens]
    tgt = 256057
    width = max(len(s) for s in sources)
    ids = torch.tensor([s + [1] * (width - len(s)) for s in sources])
    mask = (ids != 1).long()

    def generate(max_length):
        return model.generate(
            input_ids=ids, attention_mask=mask, num_beams=1, do_sample=False,
            max_length=max_length, forced_bos_token_id=tgt, decoder_start_token_id=2,
            eos_token_id=2, pad_token_id=1,
        )

    with torch.no_grad():
        generate(4)  # warm-up
        best = float("inf")
        for _ in range(args.runs):
            t = time.perf_counter()
            out = generate(args.max_length)
            best = min(best, time.perf_counter() - t)
    hf_ids = []
    for row in out.tolist():
        gen = []
        for tok in row[1:]:
            gen.append(tok)
            if tok == 2:
                break
        hf_ids.append(gen)
    hf_tokens = sum(len(r) for r in hf_ids)
    print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
          f"{args.threads} threads: {hf_tokens} tokens in {best:.2f}s = {hf_tokens / best:.1f} tok/s")

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        inputs = os.path.join(tmp, "inputs.json")
        with open(inputs, "w") as f:
            json.dump({"sources": sources, "tgt_lang": tgt}, f)
        del model
        result = os.path.join(tmp, "hofbench.json")
        env = dict(os.environ, NLLB_BENCH_MODEL=tmp, NLLB_BENCH_INPUTS=inputs, NLLB_BENCH_OUT=result,
                   NLLB_BENCH_MAX_LENGTH=str(args.max_length), NLLB_BENCH_RUNS=str(args.runs),
                   RAYON_NUM_THREADS=str(args.threads))
        subprocess.run(["cargo", "bench", "--quiet", "--bench", "nllb"], env=env, check=True)
        with open(result) as f:
            ours = json.load(f)
    same = ours["ids"] == hf_ids
    ratio = (ours["tokens"] / ours["seconds"]) / (hf_tokens / best)
    print(f"same generated ids as transformers: {same}")
    print(f"hofbench / transformers tokens/s: {ratio:.2f}x")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
