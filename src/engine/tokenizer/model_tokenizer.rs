//! [`ModelTokenizer`]: token ids of text (special tokens written as text split out first),
//! pieces and decoding; built by `gguf_vocab` (GGUF metadata) or `hf` (tokenizer.json).

use tokenizers::Tokenizer;

use super::special::{Fragment, SpecialMatcher};
use crate::{Error, Result};

/// A tokenizer equivalent to llama.cpp's for one GGUF file.
pub struct ModelTokenizer {
    pub tokenizer: Tokenizer,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`, or llama.cpp's default when absent (true for "llama"
    /// vocabularies and Llama-3-style BPE, false for other "gpt2" vocabularies).
    pub add_bos: bool,
    pub(super) pieces: Vec<String>,
    pub(super) specials: SpecialMatcher,
}

impl std::fmt::Debug for ModelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTokenizer")
            .field("vocab_size", &self.pieces.len())
            .field("special_tokens", &self.specials.len())
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

impl ModelTokenizer {
    /// Encode text that may contain special tokens written as text (e.g. "<|im_start|>"), no
    /// BOS added. Matches llama.cpp's `tokenize(text, add_special = false, parse_special =
    /// true)`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        for fragment in self.specials.partition(text) {
            match fragment {
                Fragment::Token(id) => ids.push(id),
                Fragment::Text(t) => {
                    let enc = self.tokenizer.encode_fast(t, false).map_err(tok_err)?;
                    ids.extend_from_slice(enc.get_ids());
                }
            }
        }
        Ok(ids)
    }

    /// The raw vocabulary piece of a token (e.g. "▁hello", "Ġworld", "<0x0A>").
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.pieces.get(id as usize).cloned()
    }

    /// Decode token ids to text. Special tokens are rendered as their text.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.pieces.len()) {
            return Err(Error::Tokenizer(format!(
                "cannot decode token id {bad}: the vocabulary has {} tokens",
                self.pieces.len()
            )));
        }
        self.tokenizer.decode(ids, false).map_err(tok_err)
    }

    /// Number of tokens in the GGUF vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }
}

pub(super) fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}
