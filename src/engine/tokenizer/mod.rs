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
//! `tokenizers::Tokenizer`, so that using [`ModelTokenizer::tokenizer`] directly splits them out
//! too (with HF's leftmost-longest rule, which differs from llama.cpp only when two special
//! texts overlap in the input).

mod gguf_vocab;
mod hf;
mod llama_cpp;
mod model_tokenizer;
mod special;

pub use hf::HfPromptConfig;
pub use model_tokenizer::ModelTokenizer;

#[cfg(test)]
mod tests;
