//! What the scorer and the decoding loop need from a causal language model ([`CausalLm`]),
//! and the batch types it takes and returns: prefix groups, the generation KV cache, right
//! padding.

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
        return Err(Error::Internal(
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
