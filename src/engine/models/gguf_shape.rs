//! The shape metadata every GGUF decoder architecture shares, checked against the tensors.

use crate::engine::gguf::GgufFile;
use crate::{Error, Result};

/// The shape keys every GGUF decoder architecture shares, under its `{arch}.` prefix.
pub(crate) struct GgufShape {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f64,
    pub max_positions: usize,
    /// Padded positions are never read; any valid id will do.
    pub pad_id: u32,
}

impl GgufShape {
    pub fn read(g: &GgufFile, arch: &str) -> Result<Self> {
        let key = |k: &str| format!("{arch}.{k}");
        let hidden_size = g.u32(&key("embedding_length"))? as usize;
        let heads = g.u32(&key("attention.head_count"))? as usize;
        let kv_heads = g
            .optional(&key("attention.head_count_kv"), GgufFile::u32)?
            .map_or(heads, |v| v as usize);
        let vocab_size = match g.optional(&key("vocab_size"), GgufFile::u32)? {
            Some(v) => v as usize,
            None => g.metadata().array("tokenizer.ggml.tokens")?.len(),
        };
        if heads == 0 {
            return Err(Error::model(&g.path, "attention.head_count is 0"));
        }
        // Gemma's head dimension is not hidden / heads (Gemma-3-270m: 640 / 4 vs 256).
        let head_dim = g
            .optional(&key("attention.key_length"), GgufFile::u32)?
            .map_or(hidden_size / heads, |v| v as usize);
        let layers = g.u32(&key("block_count"))? as usize;
        // Untrusted metadata: every size must agree with tensors whose extent gguf.rs has
        // checked against the file, before anything is allocated from it.
        let shape_of = |name: &str| {
            g.content
                .tensor_infos
                .get(name)
                .map(|t| t.shape.dims().to_vec())
        };
        for (name, want) in [
            ("token_embd.weight", vec![vocab_size, hidden_size]),
            ("blk.0.attn_q.weight", vec![heads * head_dim, hidden_size]),
            (
                "blk.0.attn_k.weight",
                vec![kv_heads * head_dim, hidden_size],
            ),
        ] {
            match shape_of(name) {
                Some(got) if got == want => {}
                got => {
                    return Err(Error::model(
                        &g.path,
                        format!("tensor {name} has shape {got:?}, but the metadata says {want:?}"),
                    ))
                }
            }
        }
        let last = format!("blk.{}.attn_q.weight", layers.saturating_sub(1));
        if layers == 0 || shape_of(&last).is_none() {
            return Err(Error::model(
                &g.path,
                format!("{} = {layers}, but there is no {last}", key("block_count")),
            ));
        }
        Ok(Self {
            vocab_size,
            hidden_size,
            layers,
            heads,
            kv_heads,
            head_dim,
            eps: g.f32(&key("attention.layer_norm_rms_epsilon"))? as f64,
            max_positions: g
                .optional(&key("context_length"), GgufFile::u32)?
                .map_or(4096, |v| v as usize),
            pad_id: g
                .optional("tokenizer.ggml.padding_token_id", GgufFile::u32)?
                .unwrap_or(0),
        })
    }
}
