//! Model code, one file per architecture family, behind one trait the scorer talks to.

pub mod llama;

use crate::gguf::GgufFile;
use crate::{Error, Result};
use candle_core::{Device, Tensor};

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

/// How weights are kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// Dequantize every tensor to f32 at load: fastest on CPU for small models.
    F32,
    /// Keep GGUF blocks quantized and use candle's quantized matmul.
    Quantized,
}

/// Load a GGUF model of any supported architecture.
pub fn load_gguf(
    gguf: &mut GgufFile,
    device: &Device,
    format: WeightFormat,
) -> Result<Box<dyn CausalLm>> {
    let arch = gguf.string("general.architecture")?;
    gguf.check_decoder_metadata(&arch)?;
    match arch.as_str() {
        "llama" => Ok(Box::new(llama::Llama::from_gguf(gguf, device, format)?)),
        other => Err(Error::model(
            &gguf.path,
            format!("unsupported architecture {other:?} (supported: llama)"),
        )),
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
