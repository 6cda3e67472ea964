"""Random-weight GGUFs of real model shapes, for speed and memory benchmarks (bench/vs_llama_cpp.sh
--model FILE). Only PyPI's gguf and numpy; no hub.

Shapes: Llama-3.2-1B, Llama-3.2-3B and Llama-3-8B (hidden size, layers, heads, kv heads, MLP
width, tied or untied head as published). Types:
  - q4_k_m: llama.cpp's Q4_K_M mix: Q4_K matrices, Q6_K for the embedding / output head and for
    attn_v and ffn_down in llama.cpp's "more bits" layers (first and last eighth, every third
    in between);
  - q8_0: every matrix Q8_0.
Norm weights are f32 ones. The blocks are random bytes with block scales chosen so that the
weights have a standard deviation near 0.02 (what an initialised model has); the numbers
mean nothing, only the shapes, types and sizes matter.

The tokenizer is SmolLM2-135M's (its GGUF's tokenizer.* metadata, ChatML template), so the
vocabulary is 49152 rather than the real models' 128256: the embedding and output head are
smaller than the real ones (hofbench and llama.cpp compute the head for the last position
only, so this changes little but the file size).

Usage (from the repo root):
  .venv/bin/python bench/gen_random_gguf.py SHAPE TYPE [--out DIR] [--tokenizer GGUF]
SHAPE: llama3.2-1b | llama3.2-3b | llama3-8b; TYPE: q4_k_m | q8_0. Writes
DIR/random-SHAPE-TYPE.gguf (default DIR: .cache/bench-gguf, git-ignored) and prints its path;
an existing file is kept.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

SHAPES = {
    "llama3.2-1b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, ffn=8192, tied=True),
    "llama3.2-3b": dict(hidden=3072, layers=28, heads=24, kv_heads=8, ffn=8192, tied=True),
    "llama3-8b": dict(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, tied=False),
}
SEED = 20261207
DEFAULT_TOKENIZER = (Path.home() / ".cache/hofbench/models/smollm2-135m-instruct"
                     / "SmolLM2-135M-Instruct.Q4_1.gguf")


def more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's use_more_bits: which layers Q4_K_M gives Q6_K attn_v / ffn_down."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def random_blocks(qtype: Q, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, bytes per row) uint8 of random blocks whose values have std ~0.02."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    assert cols % block == 0, (qtype, cols)
    n = rows * cols // block
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)

    def f16(v: float, count: int = 1) -> np.ndarray:
        return np.full((n, count), v, dtype=np.float16).view(np.uint8)

    if qtype == Q.Q8_0:
        # d (f16), 32 int8: std of int8 uniform ~74 -> d = 0.02 / 74.
        raw[:, 0:2] = f16(0.02 / 74)
    elif qtype == Q.Q4_K:
        # d, dmin (f16), 12 bytes of 6-bit scales and mins, 128 bytes of nibbles:
        # w = d * sc * q - dmin * m, sc ~ U(0, 63), q ~ U(0, 15).
        raw[:, 0:2] = f16(0.02 / (32 * 4.6))
        raw[:, 2:4] = f16(0.02 / (32 * 4.6) * 7.5)
    elif qtype == Q.Q6_K:
        # 128 bytes low bits, 64 high bits, 16 int8 scales, d (f16): w = d * sc * (q - 32).
        raw[:, 192:208] = rng.integers(1, 64, size=(n, 16), dtype=np.uint8)
        raw[:, 208:210] = f16(0.02 / (32 * 18.5))
    else:
        raise ValueError(qtype)
    return raw.reshape(rows, cols // block * size)


def copy_tokenizer(w: gguf.GGUFWriter, path: Path) -> int:
    """Copy every tokenizer.* key of the GGUF at `path`; returns the vocabulary size."""
    r = gguf.GGUFReader(str(path))
    vocab = 0
    for name, field in r.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        val = field.contents()
        if vtype == gguf.GGUFValueType.ARRAY:
            if name == "tokenizer.ggml.tokens":
                vocab = len(val)
            w.add_key_value(name, val, vtype, sub_type=field.types[-1])
        else:
            w.add_key_value(name, val, vtype)
    if not vocab:
        sys.exit(f"{path}: no tokenizer.ggml.tokens")
    return vocab


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("type", choices=["q4_k_m", "q8_0"])
    ap.add_argument("--out", type=Path, default=Path(".cache/bench-gguf"))
    ap.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER)
    args = ap.parse_args()
    s = SHAPES[args.shape]
    path = args.out / f"random-{args.shape}-{args.type}.gguf"
    if path.exists():
        print(path)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".gguf.tmp")
    rng = np.random.default_rng(SEED)
    d, f, nh, nkv, nl = s["hidden"], s["ffn"], s["heads"], s["kv_heads"], s["layers"]
    hd = d // nh

    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_name(f"hofbench random {args.shape} {args.type}")
    w.add_context_length(8192)
    w.add_embedding_length(d)
    w.add_block_count(nl)
    w.add_feed_forward_length(f)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M if args.type == "q4_k_m"
                    else gguf.LlamaFileType.MOSTLY_Q8_0)
    vocab = copy_tokenizer(w, args.tokenizer)
    w.add_vocab_size(vocab)

    def mtype(role: str, layer: int) -> Q:
        if args.type == "q8_0":
            return Q.Q8_0
        if role in ("token_embd", "output"):
            return Q.Q6_K
        if role in ("attn_v", "ffn_down") and more_bits(layer, nl):
            return Q.Q6_K
        return Q.Q4_K

    # (name, rows, cols, type or None for f32 ones)
    tensors: list[tuple[str, int, int, Q | None]] = [
        ("token_embd.weight", vocab, d, mtype("token_embd", 0)),
        ("output_norm.weight", 1, d, None),
    ]
    if not s["tied"]:
        tensors.append(("output.weight", vocab, d, mtype("output", 0)))
    for i in range(nl):
        p = f"blk.{i}."
        tensors += [
            (p + "attn_norm.weight", 1, d, None),
            (p + "attn_q.weight", nh * hd, d, mtype("attn_q", i)),
            (p + "attn_k.weight", nkv * hd, d, mtype("attn_k", i)),
            (p + "attn_v.weight", nkv * hd, d, mtype("attn_v", i)),
            (p + "attn_output.weight", d, nh * hd, mtype("attn_output", i)),
            (p + "ffn_norm.weight", 1, d, None),
            (p + "ffn_gate.weight", f, d, mtype("ffn_gate", i)),
            (p + "ffn_up.weight", f, d, mtype("ffn_up", i)),
            (p + "ffn_down.weight", d, f, mtype("ffn_down", i)),
        ]
    # Header first, then one tensor at a time: never the whole model in memory.
    for name, rows, cols, qt in tensors:
        if qt is None:
            w.add_tensor_info(name, (cols,), np.dtype(np.float32), cols * 4)
        else:
            block, size = gguf.GGML_QUANT_SIZES[qt]
            nbytes = rows * cols // block * size
            w.add_tensor_info(name, (rows, cols // block * size), np.dtype(np.uint8), nbytes,
                              raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, rows, cols, qt in tensors:
        if qt is None:
            w.write_tensor_data(np.ones(cols, dtype=np.float32))
        else:
            w.write_tensor_data(random_blocks(qt, rows, cols, rng))
    w.close()
    tmp.rename(path)
    print(path)


if __name__ == "__main__":
    main()
