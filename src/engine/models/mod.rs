//! Model code, one file per architecture family, behind one trait the scorer talks to.

mod config_bounds;
pub mod decoder;
pub mod gemma;
pub mod llama;
pub mod matrix;
pub mod nllb;
pub mod random;
pub mod rowdot;
pub mod weights;

use crate::engine::gguf::GgufFile;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::path::Path;

/// Rows that start with the same tokens: the prefix is run once, then each continuation
/// attends to its cached keys and values. The two option orders of an item share everything
/// up to the option list, so this nearly halves the work of scoring both.
#[derive(Debug, Clone)]
pub struct PrefixGroup<'a> {
    pub prefix: &'a [u32],
    /// Each must be non-empty.
    pub continuations: Vec<&'a [u32]>,
}

impl<'a> PrefixGroup<'a> {
    /// Split rows at their longest common prefix, leaving every continuation at least one token.
    pub fn split(rows: &[&'a [u32]]) -> Self {
        let min_len = rows.iter().map(|r| r.len()).min().unwrap_or(0);
        let mut common = 0;
        while common + 1 < min_len && rows.iter().all(|r| r[common] == rows[0][common]) {
            common += 1;
        }
        Self {
            prefix: &rows[0][..common],
            continuations: rows.iter().map(|r| &r[common..]).collect(),
        }
    }
}

/// What the scorer needs from a causal language model.
pub trait CausalLm: Send + Sync {
    /// Logits of the token that follows each continuation (prefix + continuation), shape
    /// (total continuations, vocab), f32, in group order. A row's result must not depend on
    /// its neighbours or on how it was split into prefix and continuation.
    fn next_token_logits_grouped(&self, groups: &[PrefixGroup]) -> Result<Tensor>;
    fn vocab_size(&self) -> usize;
    fn device(&self) -> &Device;
    /// A short description for logs and the manifest, e.g. "llama 30 layers, f32 weights".
    fn describe(&self) -> String;

    /// Start generating from `rows`: run the prompts (right-padded, one pass) and return their
    /// keys and values in a cache with room for `max_new_tokens` more tokens per row, and the
    /// logits of each row's next token, (rows, vocab) f32. A row's logits must not depend on
    /// its neighbours.
    fn prefill(&self, rows: &[&[u32]], max_new_tokens: usize) -> Result<(KvCache, Tensor)>;

    /// Feed one new token per row of `cache`, in its row order, attending to everything the
    /// cache holds for that row (no prefix is recomputed), and return the logits of the token
    /// after it, (rows, vocab) f32.
    fn decode_step(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Tensor>;

    /// Logits of the token that follows each row, no prefix sharing.
    fn next_token_logits(&self, rows: &[&[u32]]) -> Result<Tensor> {
        let groups: Vec<PrefixGroup> = rows
            .iter()
            .map(|r| PrefixGroup {
                prefix: &[],
                continuations: vec![r],
            })
            .collect();
        self.next_token_logits_grouped(&groups)
    }
}

/// Keys and values of a batch of sequences being generated, in one buffer per layer that is
/// allocated once ([`CausalLm::prefill`]) and filled in place.
///
/// Layout of each buffer, (rows, kv heads, capacity, head dim): the right-padded prompts in
/// columns `[0, prompt_cols)`, row r's real prompt in its first `prompt_lens[r]` of them; then
/// one column per generated token, shared by all rows, so that a step writes one column for
/// every row at once. Row r's k-th new token sits at column `prompt_cols + k` and position
/// `prompt_lens[r] + k`: its position, and what it sees, are those of the row run alone.
pub struct KvCache {
    /// Per layer (keys, values) after the rotary embedding.
    pub(crate) layers: Vec<(Tensor, Tensor)>,
    pub(crate) prompt_lens: Vec<usize>,
    pub(crate) prompt_cols: usize,
    /// Columns written so far (the next step writes column `filled`).
    pub(crate) filled: usize,
}

impl KvCache {
    pub fn rows(&self) -> usize {
        self.prompt_lens.len()
    }

    /// Tokens generated so far by every row.
    pub fn steps(&self) -> usize {
        self.filled - self.prompt_cols
    }

    /// Steps left before the buffers are full.
    pub fn steps_left(&self) -> usize {
        let capacity = self.layers.first().map_or(0, |(k, _)| k.dims()[2]);
        capacity - self.filled
    }

    /// Keep only rows `keep` (indices into the current rows), in that order: finished rows
    /// stop costing work. Copies the buffers once.
    pub fn retain(&mut self, keep: &[usize]) -> Result<()> {
        if keep.len() == self.rows() && keep.iter().enumerate().all(|(i, &k)| i == k) {
            return Ok(());
        }
        let Some((k0, _)) = self.layers.first() else {
            return Ok(());
        };
        let idx: Vec<u32> = keep.iter().map(|&k| k as u32).collect();
        let idx = Tensor::new(idx.as_slice(), k0.device())?;
        for (k, v) in &mut self.layers {
            *k = k.index_select(&idx, 0)?;
            *v = v.index_select(&idx, 0)?;
        }
        self.prompt_lens = keep.iter().map(|&k| self.prompt_lens[k]).collect();
        Ok(())
    }
}

/// How weights are kept in memory, and how the matrix products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// Dequantize every tensor to f32 at load: fastest on CPU when the f32 copy fits.
    F32,
    /// Dequantize the matrices and the embedding to bf16 at load and run the activations in
    /// bf16 (tensor cores, half the memory of f32); norms, the rotary angles and the logits
    /// stay f32. The GPU default for models that fit.
    Bf16,
    /// Keep the weights as stored (GGUF blocks, bf16/f16 safetensors) and compute every
    /// product in f32 on exactly dequantized values ([`matrix::Matrix::Stored`]): the results
    /// of `F32` within f32 rounding, in about the stored size of memory.
    Quantized,
    /// candle's quantized matmul, which rounds the activations to 8 bits (as llama.cpp does):
    /// faster and inexact; safetensors matrices are quantized to Q8_0 at load.
    FastQuantized,
}

impl WeightFormat {
    /// The dtype of the activations and of the dense weights on `device`. Quantized matmuls
    /// take either; on a GPU bf16 keeps the attention on the tensor cores.
    pub fn compute_dtype(self, device: &Device) -> DType {
        match self {
            WeightFormat::F32 => DType::F32,
            WeightFormat::Bf16 => DType::BF16,
            WeightFormat::Quantized | WeightFormat::FastQuantized if device.is_cuda() => {
                DType::BF16
            }
            WeightFormat::Quantized | WeightFormat::FastQuantized => DType::F32,
        }
    }

    /// As the manifest records it (`settings.weights`) and `--weights` spells it.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Quantized => "quantized",
            WeightFormat::FastQuantized => "fast-quantized",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            WeightFormat::F32,
            WeightFormat::Bf16,
            WeightFormat::Quantized,
            WeightFormat::FastQuantized,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }

    /// Whether results are exact: f32 arithmetic on the weights exactly as stored (no bf16
    /// activations, no 8-bit rounding of the activations). `cuda`: on a GPU.
    pub fn is_exact(self, cuda: bool) -> bool {
        match self {
            WeightFormat::F32 => true,
            WeightFormat::Quantized => !cuda,
            WeightFormat::Bf16 | WeightFormat::FastQuantized => false,
        }
    }

    /// Whether matrices stay in their stored form.
    pub fn keeps_stored(self) -> bool {
        matches!(self, WeightFormat::Quantized | WeightFormat::FastQuantized)
    }
}

/// GGUF architectures this crate runs.
pub const GGUF_ARCHITECTURES: &str = "llama, gemma, gemma2, gemma3";

/// Load a GGUF model of any supported architecture.
pub fn load_gguf(
    gguf: &mut GgufFile,
    device: &Device,
    format: WeightFormat,
) -> Result<Box<dyn CausalLm>> {
    let arch = gguf.string("general.architecture")?;
    if arch == "llama" {
        return Ok(Box::new(llama::from_gguf(gguf, device, format)?));
    }
    match gemma::Version::from_arch(&arch) {
        Some(v) => Ok(Box::new(gemma::from_gguf(gguf, v, device, format)?)),
        None => Err(Error::model(
            &gguf.path,
            format!("unsupported architecture {arch:?} (supported: {GGUF_ARCHITECTURES})"),
        )),
    }
}

/// Load the model of a Hugging Face folder (config.json and safetensors). bf16/f16 weights
/// are converted to f32 at load, or kept as stored with `Quantized`; `FastQuantized`
/// quantizes the matrices to Q8_0.
pub fn load_hf(dir: &Path, device: &Device, format: WeightFormat) -> Result<Box<dyn CausalLm>> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::model(dir, "no config.json: not a Hugging Face model folder")
        }
        _ => Error::io(&path, e),
    })?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(&path, e.line(), e.to_string()))?;
    config_bounds::check(&path, &config)?;
    let model_type = config["model_type"].as_str().unwrap_or_default();
    if model_type == "llama" {
        let cfg: llama::Config = serde_json::from_value(config)
            .map_err(|e| Error::bad_input(&path, 0, e.to_string()))?;
        return Ok(Box::new(llama::from_hf(dir, &cfg, device, format)?));
    }
    match gemma::Version::from_arch(model_type) {
        Some(v) => Ok(Box::new(gemma::from_hf(dir, v, &config, device, format)?)),
        None => Err(Error::model(
            &path,
            format!(
                "unsupported model_type {model_type:?} (supported: llama, gemma, gemma2, gemma3, gemma3_text)"
            ),
        )),
    }
}

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
            None => g
                .require("tokenizer.ggml.tokens")?
                .to_vec()
                .map_err(|e| Error::model(&g.path, format!("tokenizer.ggml.tokens: {e}")))?
                .len(),
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

/// Right-padded rows ready for one forward pass.
pub(crate) struct PaddedBatch {
    /// (rows, max_len) u32 token ids.
    pub ids: Tensor,
    pub lens: Vec<usize>,
    pub max_len: usize,
}

pub(crate) fn pad_right(rows: &[&[u32]], pad_id: u32, device: &Device) -> Result<PaddedBatch> {
    let max_len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if max_len == 0 || rows.iter().any(|r| r.is_empty()) {
        return Err(Error::Usage(
            "cannot run a model on an empty token sequence".into(),
        ));
    }
    let mut flat = Vec::with_capacity(rows.len() * max_len);
    for r in rows {
        flat.extend_from_slice(r);
        flat.extend(std::iter::repeat_n(pad_id, max_len - r.len()));
    }
    Ok(PaddedBatch {
        ids: Tensor::from_vec(flat, (rows.len(), max_len), device)?,
        lens: rows.iter().map(|r| r.len()).collect(),
        max_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_one_token_per_continuation() {
        let a = [1, 2, 3, 4];
        let b = [1, 2, 5];
        let g = PrefixGroup::split(&[&a, &b]);
        assert_eq!(g.prefix, &[1, 2]);
        assert_eq!(g.continuations, vec![&[3, 4][..], &[5][..]]);
        let same = PrefixGroup::split(&[&a, &a]);
        assert_eq!(same.prefix, &[1, 2, 3]);
        assert_eq!(same.continuations, vec![&[4][..], &[4][..]]);
        let one = PrefixGroup::split(&[&b[..1]]);
        assert!(one.prefix.is_empty());
    }
}
