//! A `tokenizers::Tokenizer` rebuilt from the metadata of a GGUF file, giving the same token
//! ids as llama.cpp.
//!
//! Two vocabulary kinds (`tokenizer.ggml.model`) are supported:
//!
//! * `"gpt2"`: byte-level BPE. The BPE model is built from `tokenizer.ggml.tokens` and
//!   `tokenizer.ggml.merges` (ranked in file order, first occurrence wins, as in llama.cpp); the
//!   pre-tokenizer is the sequence of regex splits llama.cpp uses for `tokenizer.ggml.pre`,
//!   followed by the GPT-2 byte-to-unicode mapping.
//! * `"llama"`: SentencePiece BPE. llama.cpp merges, at each step, the adjacent pair of symbols
//!   whose concatenation is the vocabulary piece with the highest score. That is a BPE model whose
//!   merges are every split of every piece into two pieces, ranked by the merged piece's score
//!   (what HF's `SentencePieceExtractor` does), with byte fallback to `<0xXX>` tokens, spaces
//!   replaced by `▁` and, when `tokenizer.ggml.add_space_prefix` is set, a `▁` prefix.
//!
//! Control, user-defined and unknown tokens (token types 3, 4 and 2) are matched in the text
//! before anything else, like llama.cpp's `tokenize(..., parse_special = true)`: longest token
//! text first over the whole text. They are also registered as special added tokens of the
//! `tokenizers::Tokenizer`, so that using [`GgufTokenizer::tokenizer`] directly splits them out
//! too (with HF's leftmost-longest rule, which differs from llama.cpp only when two special
//! texts overlap in the input).

mod gguf_vocab;
mod hf;
mod llama_cpp;
mod special;

use tokenizers::Tokenizer;

use crate::{Error, Result};
pub use hf::HfPromptConfig;
use special::{Fragment, SpecialMatcher};

/// A tokenizer equivalent to llama.cpp's for one GGUF file.
pub struct GgufTokenizer {
    pub tokenizer: Tokenizer,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`, or llama.cpp's default when absent (true for "llama"
    /// vocabularies and Llama-3-style BPE, false for other "gpt2" vocabularies).
    pub add_bos: bool,
    pieces: Vec<String>,
    specials: SpecialMatcher,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.pieces.len())
            .field("special_tokens", &self.specials.len())
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("add_bos", &self.add_bos)
            .finish()
    }
}

impl GgufTokenizer {
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

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

#[cfg(test)]
mod tests;
