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

use std::collections::{HashMap, HashSet};
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use rayon::prelude::*;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BpeBuilder, Vocab};
use tokenizers::normalizers::{NormalizerWrapper, Prepend, Replace, Sequence as NormSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::{Error, Result};

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";
const KEY_BOS: &str = "tokenizer.ggml.bos_token_id";
const KEY_EOS: &str = "tokenizer.ggml.eos_token_id";
const KEY_UNK: &str = "tokenizer.ggml.unknown_token_id";
const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const KEY_ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";

/// The SentencePiece escaped space, U+2581.
const SPM_SPACE: &str = "\u{2581}";

// llama.cpp token types (`llama_token_type`).
const TYPE_NORMAL: i32 = 1;
const TYPE_UNKNOWN: i32 = 2;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

/// Token texts that llama.cpp always treats as end-of-generation tokens and forces to be
/// control tokens, whatever type the file gives them (llama-vocab.cpp, `special_eog_ids`).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "[e~[",
];

/// Fill-in-the-middle token texts that llama.cpp forces to control type when the file does not
/// name the token through the given metadata keys.
const FIM_TEXTS: &[(&[&str], &[&str])] = &[
    (
        &[
            "tokenizer.ggml.fim_pre_token_id",
            "tokenizer.ggml.prefix_token_id",
        ],
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<\u{ff5c}fim\u{2581}begin\u{ff5c}>",
            "<PRE>",
            "\u{2581}<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
    ),
    (
        &[
            "tokenizer.ggml.fim_suf_token_id",
            "tokenizer.ggml.suffix_token_id",
        ],
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<\u{ff5c}fim\u{2581}hole\u{ff5c}>",
            "<SUF>",
            "\u{2581}<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
    ),
    (
        &[
            "tokenizer.ggml.fim_mid_token_id",
            "tokenizer.ggml.middle_token_id",
        ],
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<\u{ff5c}fim\u{2581}end\u{ff5c}>",
            "<MID>",
            "\u{2581}<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
    ),
    (
        &["tokenizer.ggml.fim_pad_token_id"],
        &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    ),
    (
        &["tokenizer.ggml.fim_rep_token_id"],
        &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ],
    ),
    (&["tokenizer.ggml.fim_sep_token_id"], &["<|file_sep|>"]),
];

// Pre-tokenizer regexes, copied from llama.cpp's `llm_tokenizer_bpe` (llama-vocab.cpp).
const RE_GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const RE_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const RE_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const RE_DEFAULT: &[&str] = &[
    r"[\p{P}\$\+<=>\^~\|]+",
    RE_GPT2,
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
];

/// How llama.cpp pre-tokenizes a byte-level BPE vocabulary, by `tokenizer.ggml.pre`.
struct BpePre {
    regexes: &'static [&'static str],
    /// Use a whole pre-token as one token when it is in the vocabulary.
    ignore_merges: bool,
    /// llama.cpp's default for `add_bos_token` with this pre-tokenizer.
    add_bos: bool,
}

fn bpe_pre(name: &str) -> Option<BpePre> {
    const SMOLLM: &[&str] = &[r"\p{N}", RE_GPT2];
    const GPT2: &[&str] = &[RE_GPT2];
    const LLAMA3: &[&str] = &[RE_LLAMA3];
    const QWEN2: &[&str] = &[RE_QWEN2];
    let pre = |regexes, ignore_merges, add_bos| BpePre {
        regexes,
        ignore_merges,
        add_bos,
    };
    Some(match name {
        // llama.cpp treats an empty name like a missing one: "default"
        "" | "default" => pre(RE_DEFAULT, false, false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => pre(LLAMA3, true, true),
        "dbrx" | "smaug-bpe" => pre(LLAMA3, false, false),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b"
        | "mellum2" => pre(SMOLLM, false, false),
        // "gpt2" is not a name llama.cpp knows, but it is an obvious alias of "gpt-2".
        "gpt2" | "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
        | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "exaone4" | "mpt" | "olmo"
        | "jais" | "trillion" | "granite-docling" => pre(GPT2, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" | "hunyuan"
        | "solar-open" => pre(QWEN2, false, false),
        _ => return None,
    })
}

/// The vocabulary kinds this module can rebuild.
enum VocabKind {
    /// `tokenizer.ggml.model = "llama"`: SentencePiece BPE with scores.
    Spm,
    /// `tokenizer.ggml.model = "gpt2"`: byte-level BPE with merges.
    Bpe(BpePre),
}

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
    /// Build the tokenizer from the metadata of a GGUF file. `path` is only used in error
    /// messages.
    pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Self> {
        let meta = Meta {
            md: &content.metadata,
            path,
        };

        let model = meta
            .string(KEY_MODEL)?
            .ok_or_else(|| meta.err(format!("missing {KEY_MODEL}")))?;
        let kind = match model {
            "llama" => VocabKind::Spm,
            "gpt2" => {
                // llama.cpp: a missing pre-tokenizer means "default"
                let pre = meta.string(KEY_PRE)?.unwrap_or("default");
                VocabKind::Bpe(bpe_pre(pre).ok_or_else(|| {
                    Error::Tokenizer(format!(
                        "{}: unsupported {KEY_PRE} {pre:?} for a \"gpt2\" vocabulary \
                         (supported include \"default\", \"gpt-2\", \"smollm\", \"llama-bpe\", \
                         \"llama3\", \"qwen2\")",
                        path.display()
                    ))
                })?)
            }
            other => {
                return Err(Error::Tokenizer(format!(
                    "{}: unsupported {KEY_MODEL} {other:?} (supported: \"llama\", \"gpt2\")",
                    path.display()
                )))
            }
        };

        let (pieces, vocab) = meta.pieces()?;
        let n = pieces.len();
        let types = meta.token_types(n)?;
        let scores = meta.scores(n)?;

        let token_id = |key: &str| -> Result<Option<u32>> {
            match meta.u32(key)? {
                Some(id) if id as usize >= n => Err(meta.err(format!(
                    "{key} = {id} is out of range (vocabulary has {n} tokens)"
                ))),
                other => Ok(other),
            }
        };
        let bos_key = token_id(KEY_BOS)?;
        let eos_key = token_id(KEY_EOS)?;
        let unk_key = token_id(KEY_UNK)?;
        // llama.cpp's defaults for SentencePiece vocabularies: <unk> = 0, <s> = 1, </s> = 2.
        let is_spm = matches!(kind, VocabKind::Spm);
        let spm_default = |id: u32| (is_spm && (id as usize) < n).then_some(id);
        let bos_id = bos_key.or_else(|| spm_default(1));
        let eos_id = eos_key.or_else(|| spm_default(2));
        let unk_id = unk_key.or_else(|| spm_default(0));

        let add_bos = match meta.bool(KEY_ADD_BOS)? {
            Some(b) => b,
            None => match &kind {
                VocabKind::Spm => true,
                VocabKind::Bpe(pre) => pre.add_bos,
            },
        };
        if add_bos && bos_id.is_none() {
            return Err(meta.err(format!("{KEY_ADD_BOS} is true, but {KEY_BOS} is not set")));
        }
        let add_space_prefix = is_spm && meta.bool(KEY_ADD_SPACE_PREFIX)?.unwrap_or(true);

        // Which tokens are split out of the text before the model sees it.
        let specials = special_token_ids(&meta, &vocab, &types);

        let mut tokenizer = match kind {
            VocabKind::Spm => {
                let scores = scores.ok_or_else(|| {
                    meta.err(format!(
                        "missing {KEY_SCORES} (needed for a \"llama\" vocabulary)"
                    ))
                })?;
                let merges = spm_merges(&pieces, &scores, &vocab);
                let mut builder = BpeBuilder::new()
                    .vocab_and_merges(vocab, merges)
                    .byte_fallback(true);
                if let Some(unk) = unk_id {
                    builder = builder.unk_token(pieces[unk as usize].clone());
                }
                let bpe = builder.build().map_err(|e| {
                    meta.err(format!("cannot build the SentencePiece BPE model: {e}"))
                })?;
                let mut tokenizer = Tokenizer::new(bpe);
                let space = Replace::new(" ", SPM_SPACE).map_err(tok_err)?;
                let normalizer = if add_space_prefix {
                    NormalizerWrapper::Sequence(NormSequence::new(vec![
                        NormalizerWrapper::Prepend(Prepend::new(SPM_SPACE.to_string())),
                        NormalizerWrapper::Replace(space),
                    ]))
                } else {
                    NormalizerWrapper::Replace(space)
                };
                tokenizer.with_normalizer(Some(normalizer));
                let mut decoders = vec![
                    DecoderWrapper::Replace(Replace::new(SPM_SPACE, " ").map_err(tok_err)?),
                    DecoderWrapper::ByteFallback(ByteFallback::new()),
                    DecoderWrapper::Fuse(Fuse::new()),
                ];
                if add_space_prefix {
                    decoders.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
                }
                tokenizer.with_decoder(Some(DecoderWrapper::Sequence(DecoderSequence::new(
                    decoders,
                ))));
                tokenizer
            }
            VocabKind::Bpe(pre) => {
                let merges = meta.merges(&vocab)?;
                let missing: String = gpt2_byte_chars()
                    .iter()
                    .filter(|c| !vocab.contains_key(c.encode_utf8(&mut [0; 4]) as &str))
                    .map(|c| format!("\\x{{{:x}}}", u32::from(*c)))
                    .collect();
                let missing_byte_chars = (!missing.is_empty()).then(|| format!("[{missing}]"));
                let bpe = BpeBuilder::new()
                    .vocab_and_merges(vocab, merges)
                    .ignore_merges(pre.ignore_merges)
                    .build()
                    .map_err(|e| meta.err(format!("cannot build the BPE model: {e}")))?;
                let mut tokenizer = Tokenizer::new(bpe);
                let mut steps = Vec::with_capacity(pre.regexes.len() + 1);
                for re in pre.regexes {
                    let split = Split::new(
                        SplitPattern::Regex((*re).to_string()),
                        SplitDelimiterBehavior::Isolated,
                        false,
                    )
                    .map_err(|e| Error::Tokenizer(format!("pre-tokenizer regex {re:?}: {e}")))?;
                    steps.push(PreTokenizerWrapper::Split(split));
                }
                steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(
                    false, false, false,
                )));
                // A byte whose character is not in the vocabulary (SmolLM2 lacks some control
                // characters) yields no token, but in llama.cpp it still stands between its
                // neighbours, which therefore never merge: isolate it so HF does the same.
                if let Some(class) = missing_byte_chars {
                    let split = Split::new(
                        SplitPattern::Regex(class),
                        SplitDelimiterBehavior::Isolated,
                        false,
                    )
                    .map_err(tok_err)?;
                    steps.push(PreTokenizerWrapper::Split(split));
                }
                tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(
                    PreSequence::new(steps),
                )));
                tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
                tokenizer
            }
        };

        let added: Vec<AddedToken> = specials
            .iter()
            .map(|&id| AddedToken::from(pieces[id as usize].clone(), true).normalized(false))
            .collect();
        tokenizer.add_special_tokens(&added);

        let specials = SpecialMatcher::new(&pieces, &specials);
        Ok(GgufTokenizer {
            tokenizer,
            bos_id,
            eos_id,
            add_bos,
            pieces,
            specials,
        })
    }

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

/// What a Hugging Face folder's `tokenizer_config.json` (and `chat_template.jinja`) say about
/// prompting the model.
#[derive(Debug, Clone, Default)]
pub struct HfPromptConfig {
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub add_bos_token: Option<bool>,
}

impl HfPromptConfig {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer_config.json");
        let mut cfg = Self::default();
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::bad_input(&path, e.line(), e.to_string()))?;
            // A token is a string or an AddedToken object {"content": ...}.
            let token = |k: &str| -> Option<String> {
                let t = v.get(k)?;
                t.as_str()
                    .or_else(|| t.get("content")?.as_str())
                    .map(String::from)
            };
            cfg.bos_token = token("bos_token");
            cfg.eos_token = token("eos_token");
            cfg.add_bos_token = v.get("add_bos_token").and_then(|b| b.as_bool());
            // A template string, or a list of named templates of which "default" is the chat one.
            cfg.chat_template = match v.get("chat_template") {
                Some(serde_json::Value::String(t)) => Some(t.clone()),
                Some(serde_json::Value::Array(named)) => named
                    .iter()
                    .find(|t| t["name"] == "default")
                    .and_then(|t| t["template"].as_str())
                    .map(String::from),
                _ => None,
            };
        }
        // Newer checkpoints keep the template in its own file; multimodal ones (Gemma 3 4B)
        // in the processor's chat_template.json.
        let jinja = dir.join("chat_template.jinja");
        if cfg.chat_template.is_none() && jinja.is_file() {
            cfg.chat_template =
                Some(std::fs::read_to_string(&jinja).map_err(|e| Error::io(&jinja, e))?);
        }
        let json = dir.join("chat_template.json");
        if cfg.chat_template.is_none() && json.is_file() {
            let text = std::fs::read_to_string(&json).map_err(|e| Error::io(&json, e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::bad_input(&json, e.line(), e.to_string()))?;
            cfg.chat_template = v["chat_template"].as_str().map(String::from);
        }
        Ok(cfg)
    }
}

/// Largest token id + 1 a tokenizer.json may use (Gemma 3 has 262 144 tokens).
const MAX_VOCAB_IDS: usize = 1 << 23;

impl GgufTokenizer {
    /// Load a Hugging Face folder's `tokenizer.json` as it is; `prompt` (its
    /// tokenizer_config.json) names the BOS and EOS tokens. Added tokens written in the text
    /// are split out by the tokenizer itself, as in `tokenizer(text, add_special_tokens=False)`.
    /// The BOS is added by [`crate::scorer::encode_with_bos`] when the tokenizer config asks
    /// for one (`add_bos_token`) or, without that key, when the tokenizer's own
    /// post-processor would add it.
    pub fn from_hf_dir(dir: &Path, prompt: &HfPromptConfig) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::model(dir, "no tokenizer.json in the model folder"));
        }
        let tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let vocab = tokenizer.get_vocab(true);
        let n = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        // The piece table is sized by the largest id: an id far beyond the vocabulary (a
        // hostile or corrupt file) must not size it.
        if n > MAX_VOCAB_IDS || n > 2 * vocab.len() + 1024 {
            return Err(Error::model(
                &path,
                format!(
                    "token id {} is far beyond the vocabulary's {} tokens",
                    n - 1,
                    vocab.len()
                ),
            ));
        }
        let mut pieces = vec![String::new(); n];
        for (piece, id) in vocab {
            pieces[id as usize] = piece;
        }
        let id_of = |t: &Option<String>| t.as_deref().and_then(|t| tokenizer.token_to_id(t));
        let bos_id = id_of(&prompt.bos_token);
        let eos_id = id_of(&prompt.eos_token);
        let add_bos = match (prompt.add_bos_token, bos_id) {
            (Some(b), _) => b,
            (None, Some(bos)) => {
                tokenizer
                    .encode_fast("a", true)
                    .map_err(tok_err)?
                    .get_ids()
                    .first()
                    == Some(&bos)
            }
            (None, None) => false,
        };
        Ok(GgufTokenizer {
            tokenizer,
            bos_id,
            eos_id,
            add_bos,
            // The tokenizer handles its added tokens itself.
            specials: SpecialMatcher::new(&pieces, &[]),
            pieces,
        })
    }
}

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

/// The ids that llama.cpp splits out of text with `parse_special = true`: control,
/// user-defined and unknown tokens, after llama.cpp's fix-ups by token text.
fn special_token_ids(meta: &Meta<'_>, vocab: &Vocab, types: &[i32]) -> Vec<u32> {
    let mut special: Vec<bool> = types
        .iter()
        .map(|&t| matches!(t, TYPE_UNKNOWN | TYPE_CONTROL | TYPE_USER_DEFINED))
        .collect();
    let index = |text: &str| vocab.get(text).map(|&i| i as usize);
    for text in EOG_TEXTS {
        if let Some(i) = index(text) {
            special[i] = true;
        }
    }
    for (keys, texts) in FIM_TEXTS {
        if keys.iter().any(|k| meta.md.contains_key(*k)) {
            continue;
        }
        for text in *texts {
            if let Some(i) = index(text) {
                special[i] = true;
            }
        }
    }
    // llama.cpp (Gemma 4 workaround): "</s>" is a normal token when "<|tool_response>" exists.
    if index("<|tool_response>").is_some() {
        if let Some(i) = index("</s>") {
            special[i] = false;
        }
    }
    special
        .iter()
        .enumerate()
        .filter(|(_, &s)| s)
        .map(|(i, _)| i as u32)
        .collect()
}

/// GPT-2's byte-to-unicode table: the character that stands for each byte in a byte-level BPE
/// vocabulary.
fn gpt2_byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for (b, slot) in (0u32..).zip(out.iter_mut()) {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
        *slot = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    out
}

/// SentencePiece BPE merges: for every piece, every split into two pieces of the vocabulary,
/// ranked by the score of the merged piece (highest first), as llama.cpp's SPM tokenizer
/// merges the adjacent pair whose concatenation has the highest score.
fn spm_merges(pieces: &[String], scores: &[f32], vocab: &Vocab) -> Vec<(String, String)> {
    // (merged id, left id, right id); Gemma 3 has 1.2M splits, so spread them over the cores.
    let mut merges: Vec<(u32, u32, u32)> = pieces
        .par_iter()
        .enumerate()
        .flat_map_iter(|(id, piece)| {
            piece.char_indices().skip(1).filter_map(move |(split, _)| {
                let (l, r) = piece.split_at(split);
                let l = *vocab.get(l)?;
                let r = *vocab.get(r)?;
                Some((id as u32, l, r))
            })
        })
        .collect();
    // Highest score first; ties by merged id, then by the ids of the two halves. llama.cpp
    // compares scores with `<`: -0.0 ties with 0.0, and NaN is taken as the lowest score here.
    let score = |id: u32| {
        let x = scores[id as usize];
        if x.is_nan() {
            f32::NEG_INFINITY
        } else {
            x + 0.0
        }
    };
    merges.par_sort_unstable_by(|a, b| {
        score(b.0)
            .total_cmp(&score(a.0))
            .then(a.0.cmp(&b.0))
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    merges
        .into_iter()
        .map(|(_, l, r)| (pieces[l as usize].clone(), pieces[r as usize].clone()))
        .collect()
}

/// A piece of text to encode, or a special token found in it.
#[derive(Debug, PartialEq, Eq)]
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// Finds special tokens in text the way llama.cpp's `tokenizer_st_partition` does: tokens are
/// taken longest text first (ties by id), each at all its leftmost non-overlapping occurrences
/// in what is still plain text.
struct SpecialMatcher {
    /// Byte trie of the special token texts; node 0 is the root.
    nodes: Vec<TrieNode>,
    count: usize,
}

#[derive(Default)]
struct TrieNode {
    /// Children sorted by byte.
    children: Vec<(u8, u32)>,
    /// The token whose text ends here: (rank in llama.cpp's processing order, id).
    token: Option<(u32, u32)>,
}

impl SpecialMatcher {
    fn new(pieces: &[String], ids: &[u32]) -> Self {
        let mut order = ids.to_vec();
        order.sort_by_key(|&id| (std::cmp::Reverse(pieces[id as usize].len()), id));
        let mut nodes = vec![TrieNode::default()];
        for (rank, &id) in order.iter().enumerate() {
            let mut node = 0usize;
            for &b in pieces[id as usize].as_bytes() {
                node = match nodes[node].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(k) => nodes[node].children[k].1 as usize,
                    Err(k) => {
                        let next = nodes.len();
                        nodes.push(TrieNode::default());
                        nodes[node].children.insert(k, (b, next as u32));
                        next
                    }
                };
            }
            nodes[node].token = Some((rank as u32, id));
        }
        SpecialMatcher {
            nodes,
            count: ids.len(),
        }
    }

    fn len(&self) -> usize {
        self.count
    }

    fn partition<'t>(&self, text: &'t str) -> Vec<Fragment<'t>> {
        let bytes = text.as_bytes();
        // Every occurrence of every special token: (rank, start, len, id).
        let mut found: Vec<(u32, usize, usize, u32)> = Vec::new();
        if self.nodes.len() > 1 {
            for start in 0..bytes.len() {
                let mut node = 0usize;
                for (k, b) in bytes[start..].iter().enumerate() {
                    let children = &self.nodes[node].children;
                    match children.binary_search_by_key(b, |c| c.0) {
                        Ok(i) => node = children[i].1 as usize,
                        Err(_) => break,
                    }
                    if let Some((rank, id)) = self.nodes[node].token {
                        found.push((rank, start, k + 1, id));
                    }
                }
            }
        }
        if found.is_empty() {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![Fragment::Text(text)]
            };
        }
        found.sort_unstable();
        let mut taken = vec![false; bytes.len()];
        let mut chosen: Vec<(usize, usize, u32)> = Vec::new();
        for (_, start, len, id) in found {
            let span = &mut taken[start..start + len];
            if span.iter().all(|t| !t) {
                span.iter_mut().for_each(|t| *t = true);
                chosen.push((start, len, id));
            }
        }
        chosen.sort_unstable();
        let mut out = Vec::with_capacity(chosen.len() * 2 + 1);
        let mut pos = 0;
        for (start, len, id) in chosen {
            if start > pos {
                out.push(Fragment::Text(&text[pos..start]));
            }
            out.push(Fragment::Token(id));
            pos = start + len;
        }
        if pos < text.len() {
            out.push(Fragment::Text(&text[pos..]));
        }
        out
    }
}

/// Typed access to GGUF metadata; every failure names the file and the key.
struct Meta<'a> {
    md: &'a HashMap<String, Value>,
    path: &'a Path,
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Array(items) => match items.first() {
            Some(first) => format!("array of {}", type_name(first)),
            None => "empty array".to_string(),
        },
        other => format!("{:?}", other.value_type()),
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    Some(match v {
        Value::U8(x) => i64::from(*x),
        Value::I8(x) => i64::from(*x),
        Value::U16(x) => i64::from(*x),
        Value::I16(x) => i64::from(*x),
        Value::U32(x) => i64::from(*x),
        Value::I32(x) => i64::from(*x),
        Value::U64(x) => i64::try_from(*x).ok()?,
        Value::I64(x) => *x,
        _ => return None,
    })
}

impl<'a> Meta<'a> {
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::model(self.path, format!("tokenizer metadata: {}", msg.into()))
    }

    fn wrong_type(&self, key: &str, want: &str, got: &Value) -> Error {
        self.err(format!("{key} should be {want}, found {}", type_name(got)))
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.wrong_type(key, "a string", v)),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong_type(key, "a bool", v)),
        }
    }

    fn u32(&self, key: &str) -> Result<Option<u32>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(v) => match as_i64(v) {
                Some(x) => u32::try_from(x)
                    .map(Some)
                    .map_err(|_| self.err(format!("{key} = {x} is not a valid token id"))),
                None => Err(self.wrong_type(key, "an integer", v)),
            },
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a [Value]>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.as_slice())),
            Some(v) => Err(self.wrong_type(key, "an array", v)),
        }
    }

    /// `tokenizer.ggml.tokens`, with empty pieces renamed as llama.cpp does and duplicates
    /// rejected, and the map from piece to id.
    fn pieces(&self) -> Result<(Vec<String>, Vocab)> {
        let items = self
            .array(KEY_TOKENS)?
            .ok_or_else(|| self.err(format!("missing {KEY_TOKENS}")))?;
        if items.is_empty() {
            return Err(self.err(format!("{KEY_TOKENS} is empty")));
        }
        if u32::try_from(items.len()).is_err() {
            return Err(self.err(format!("{KEY_TOKENS} has too many entries")));
        }
        let mut pieces = Vec::with_capacity(items.len());
        let mut vocab = Vocab::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::String(s) = item else {
                return Err(self.wrong_type(&format!("{KEY_TOKENS}[{i}]"), "a string", item));
            };
            let piece = if s.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                s.clone()
            };
            if let Some(first) = vocab.insert(piece.clone(), i as u32) {
                return Err(self.err(format!(
                    "{KEY_TOKENS}: duplicate token {piece:?} at ids {first} and {i}"
                )));
            }
            pieces.push(piece);
        }
        Ok((pieces, vocab))
    }

    fn check_len(&self, key: &str, got: usize, n: usize) -> Result<()> {
        if got != n {
            return Err(self.err(format!("{key} has {got} entries but {KEY_TOKENS} has {n}")));
        }
        Ok(())
    }

    /// `tokenizer.ggml.token_type`; all normal when absent.
    fn token_types(&self, n: usize) -> Result<Vec<i32>> {
        let Some(items) = self.array(KEY_TOKEN_TYPE)? else {
            return Ok(vec![TYPE_NORMAL; n]);
        };
        self.check_len(KEY_TOKEN_TYPE, items.len(), n)?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                as_i64(v)
                    .and_then(|x| i32::try_from(x).ok())
                    .ok_or_else(|| {
                        self.wrong_type(&format!("{KEY_TOKEN_TYPE}[{i}]"), "an int32", v)
                    })
            })
            .collect()
    }

    fn scores(&self, n: usize) -> Result<Option<Vec<f32>>> {
        let Some(items) = self.array(KEY_SCORES)? else {
            return Ok(None);
        };
        self.check_len(KEY_SCORES, items.len(), n)?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::F32(x) => Ok(*x),
                Value::F64(x) => Ok(*x as f32),
                other => as_i64(other).map(|x| x as f32).ok_or_else(|| {
                    self.wrong_type(&format!("{KEY_SCORES}[{i}]"), "a number", other)
                }),
            })
            .collect::<Result<Vec<f32>>>()
            .map(Some)
    }

    /// `tokenizer.ggml.merges` as pairs, in rank order, keeping the first of duplicates like
    /// llama.cpp.
    fn merges(&self, vocab: &Vocab) -> Result<Vec<(String, String)>> {
        let items = self.array(KEY_MERGES)?.ok_or_else(|| {
            self.err(format!(
                "missing {KEY_MERGES} (needed for a \"gpt2\" vocabulary)"
            ))
        })?;
        let mut merges = Vec::with_capacity(items.len());
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::String(m) = item else {
                return Err(self.wrong_type(&format!("{KEY_MERGES}[{i}]"), "a string", item));
            };
            // llama.cpp splits at the first space after the first character.
            let first_len = m.chars().next().map_or(0, char::len_utf8);
            let Some(space) = m[first_len..].find(' ').map(|p| p + first_len) else {
                return Err(self.err(format!(
                    "{KEY_MERGES}[{i}] = {m:?} is not two tokens separated by a space"
                )));
            };
            let (l, r) = (&m[..space], &m[space + 1..]);
            for part in [l, r] {
                if !vocab.contains_key(part) {
                    return Err(self.err(format!(
                        "{KEY_MERGES}[{i}] = {m:?} refers to {part:?}, which is not in {KEY_TOKENS}"
                    )));
                }
            }
            if !vocab.contains_key(&format!("{l}{r}")) {
                return Err(self.err(format!(
                    "{KEY_MERGES}[{i}] = {m:?} makes {:?}, which is not in {KEY_TOKENS}",
                    format!("{l}{r}")
                )));
            }
            if seen.insert((l, r)) {
                merges.push((l.to_string(), r.to_string()));
            }
        }
        Ok(merges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(md: Vec<(&str, Value)>) -> gguf_file::Content {
        gguf_file::Content {
            magic: gguf_file::VersionedMagic::GgufV3,
            metadata: md.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    fn strs<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(
            items
                .iter()
                .map(|s| Value::String(s.as_ref().to_string()))
                .collect(),
        )
    }

    fn s(x: &str) -> Value {
        Value::String(x.to_string())
    }

    fn build(md: Vec<(&str, Value)>) -> Result<GgufTokenizer> {
        GgufTokenizer::from_gguf(&content(md), Path::new("test.gguf"))
    }

    /// A SentencePiece vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then `extra`
    /// as (piece, score, token type).
    fn spm_md(extra: &[(&str, f32, i32)]) -> Vec<(&'static str, Value)> {
        let mut pieces: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut scores = vec![0.0f32; 3];
        let mut types = vec![TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL];
        for b in 0..=255u8 {
            pieces.push(format!("<0x{b:02X}>"));
            scores.push(0.0);
            types.push(6);
        }
        for (p, sc, t) in extra {
            pieces.push(p.to_string());
            scores.push(*sc);
            types.push(*t);
        }
        vec![
            (KEY_MODEL, s("llama")),
            (KEY_TOKENS, strs(&pieces)),
            (
                KEY_SCORES,
                Value::Array(scores.into_iter().map(Value::F32).collect()),
            ),
            (
                KEY_TOKEN_TYPE,
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
        ]
    }

    fn set(md: &mut Vec<(&'static str, Value)>, key: &'static str, v: Value) {
        md.retain(|(k, _)| *k != key);
        md.push((key, v));
    }

    fn ids_of(tok: &GgufTokenizer, pieces: &[&str]) -> Vec<u32> {
        pieces
            .iter()
            .map(|p| {
                tok.pieces
                    .iter()
                    .position(|q| q == p)
                    .unwrap_or_else(|| panic!("{p:?} not in vocab")) as u32
            })
            .collect()
    }

    fn pieces_of(tok: &GgufTokenizer, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&i| tok.token_text(i).unwrap()).collect()
    }

    const N: i32 = TYPE_NORMAL;

    #[test]
    fn spm_merges_follow_scores() {
        let abc = |ab: f32, bc: f32| {
            let mut md = spm_md(&[
                ("a", -10.0, N),
                ("b", -11.0, N),
                ("c", -12.0, N),
                ("ab", ab, N),
                ("bc", bc, N),
            ]);
            set(&mut md, KEY_ADD_SPACE_PREFIX, Value::Bool(false));
            let tok = build(md).unwrap();
            pieces_of(&tok, &tok.encode("abc").unwrap())
        };
        assert_eq!(abc(-1.0, -2.0), ["ab", "c"]);
        assert_eq!(abc(-2.0, -1.0), ["a", "bc"]);
    }

    #[test]
    fn spm_merge_list_is_ranked_by_merged_score() {
        let pieces: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let scores = [-10.0, -11.0, -12.0, -3.0, -1.0, -2.0];
        let vocab: Vocab = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i as u32))
            .collect();
        let merges = spm_merges(&pieces, &scores, &vocab);
        let as_str: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            as_str,
            [("b", "c"), ("a", "bc"), ("ab", "c"), ("a", "b")],
            "bc (-1), then both splits of abc (-2), then ab (-3)"
        );
    }

    fn hello_md() -> Vec<(&'static str, Value)> {
        spm_md(&[
            ("\u{2581}", -1.0, N),
            ("h", -2.0, N),
            ("e", -3.0, N),
            ("l", -4.0, N),
            ("o", -5.0, N),
            ("w", -6.0, N),
            ("r", -7.0, N),
            ("d", -8.0, N),
            ("\u{2581}h", -20.0, N),
            ("\u{2581}he", -21.0, N),
            ("\u{2581}hel", -22.0, N),
            ("\u{2581}hell", -23.0, N),
            ("\u{2581}hello", -24.0, N),
            ("\u{2581}w", -30.0, N),
            ("\u{2581}wo", -31.0, N),
            ("\u{2581}wor", -32.0, N),
            ("\u{2581}worl", -33.0, N),
            ("\u{2581}world", -34.0, N),
            ("<start_of_turn>", 0.0, TYPE_CONTROL),
            ("\n", 0.0, TYPE_USER_DEFINED),
        ])
    }

    #[test]
    fn spm_space_prefix_and_defaults() {
        let tok = build(hello_md()).unwrap();
        // llama.cpp defaults for a "llama" vocabulary without the keys
        assert!(tok.add_bos);
        assert_eq!(tok.bos_id, Some(1));
        assert_eq!(tok.eos_id, Some(2));
        let ids = tok.encode("hello world").unwrap();
        assert_eq!(pieces_of(&tok, &ids), ["\u{2581}hello", "\u{2581}world"]);
        assert_eq!(tok.decode(&ids).unwrap(), "hello world");
        // the prefix goes before every text fragment that follows a special token
        let ids = tok.encode("<start_of_turn>hello\nworld").unwrap();
        assert_eq!(
            pieces_of(&tok, &ids),
            ["<start_of_turn>", "\u{2581}hello", "\n", "\u{2581}world"]
        );

        let mut md = hello_md();
        set(&mut md, KEY_ADD_SPACE_PREFIX, Value::Bool(false));
        set(&mut md, KEY_ADD_BOS, Value::Bool(false));
        let tok = build(md).unwrap();
        assert!(!tok.add_bos);
        let ids = tok.encode("hello world").unwrap();
        assert_eq!(
            pieces_of(&tok, &ids),
            ["h", "e", "l", "l", "o", "\u{2581}world"]
        );
        assert_eq!(tok.decode(&ids).unwrap(), "hello world");
    }

    #[test]
    fn spm_byte_fallback() {
        let mut md = hello_md();
        set(&mut md, KEY_ADD_SPACE_PREFIX, Value::Bool(false));
        let tok = build(md).unwrap();
        let ids = tok.encode("hé").unwrap();
        assert_eq!(pieces_of(&tok, &ids), ["h", "<0xC3>", "<0xA9>"]);
        // byte tokens are ids 3 + byte
        assert_eq!(&ids[1..], &[3 + 0xC3, 3 + 0xA9]);
        assert_eq!(tok.decode(&ids).unwrap(), "hé");
        let ids = tok.encode("\u{1F600}").unwrap();
        assert_eq!(ids, [3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80]);
    }

    #[test]
    fn special_tokens_are_split_out() {
        let mut md = hello_md();
        set(&mut md, KEY_ADD_SPACE_PREFIX, Value::Bool(false));
        let tok = build(md).unwrap();
        let ids = tok.encode("<start_of_turn>\n\n<unk></s>").unwrap();
        assert_eq!(
            pieces_of(&tok, &ids),
            ["<start_of_turn>", "\n", "\n", "<unk>", "</s>"]
        );
        // a partial special text is plain text
        let ids = tok.encode("<start_of_tur").unwrap();
        assert!(ids.len() > 1);
        // the HF tokenizer knows them as special added tokens too
        let enc = tok
            .tokenizer
            .encode_fast("<start_of_turn>\n", false)
            .unwrap();
        assert_eq!(
            enc.get_ids(),
            ids_of(&tok, &["<start_of_turn>", "\n"]).as_slice()
        );
        assert_eq!(tok.encode("").unwrap(), Vec::<u32>::new());
    }

    #[test]
    fn partition_takes_longest_special_first() {
        let pieces: Vec<String> = ["x", "ab", "bcd", "<a>", "<a><b>"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let m = SpecialMatcher::new(&pieces, &[1, 2, 3, 4]);
        // llama.cpp takes "bcd" (longer) before "ab", even though "ab" starts first
        assert_eq!(
            m.partition("abcd"),
            [Fragment::Text("a"), Fragment::Token(2)]
        );
        assert_eq!(
            m.partition("<a><a><b>ab<a>"),
            [
                Fragment::Token(3),
                Fragment::Token(4),
                Fragment::Token(1),
                Fragment::Token(3)
            ]
        );
        assert_eq!(m.partition("xyz"), [Fragment::Text("xyz")]);
        assert_eq!(
            m.partition("ababab"),
            [Fragment::Token(1), Fragment::Token(1), Fragment::Token(1)]
        );
        assert_eq!(m.partition(""), []);
    }

    fn byte_chars() -> Vec<String> {
        gpt2_byte_chars().iter().map(|c| c.to_string()).collect()
    }

    fn gpt2_md(pre: &str) -> Vec<(&'static str, Value)> {
        let mut pieces = vec!["<|endoftext|>".to_string(), "<|im_start|>".to_string()];
        pieces.extend(byte_chars());
        let merges = ["\u{120} t", "h e", "\u{120}t he", "1 2", "12 3"];
        pieces.extend(["\u{120}t", "he", "\u{120}the", "12", "123"].map(String::from));
        let mut types = vec![TYPE_CONTROL, TYPE_CONTROL];
        types.resize(pieces.len(), TYPE_NORMAL);
        vec![
            (KEY_MODEL, s("gpt2")),
            (KEY_PRE, s(pre)),
            (KEY_TOKENS, strs(&pieces)),
            (
                KEY_TOKEN_TYPE,
                Value::Array(types.into_iter().map(Value::I32).collect()),
            ),
            (KEY_MERGES, strs(&merges)),
            (KEY_BOS, Value::U32(0)),
            (KEY_EOS, Value::U32(0)),
        ]
    }

    #[test]
    fn gpt2_merges_and_specials() {
        let tok = build(gpt2_md("gpt-2")).unwrap();
        assert!(!tok.add_bos);
        assert_eq!(tok.vocab_size(), 2 + 256 + 5);
        let ids = tok.encode("the the").unwrap();
        assert_eq!(pieces_of(&tok, &ids), ["t", "he", "\u{120}the"]);
        assert_eq!(tok.decode(&ids).unwrap(), "the the");
        let ids = tok.encode("<|im_start|>the<|endoftext|>").unwrap();
        assert_eq!(
            pieces_of(&tok, &ids),
            ["<|im_start|>", "t", "he", "<|endoftext|>"]
        );
        assert_eq!(tok.decode(&ids).unwrap(), "<|im_start|>the<|endoftext|>");
        let ids = tok.encode("é\n").unwrap();
        assert_eq!(pieces_of(&tok, &ids), ["\u{c3}", "\u{a9}", "\u{10a}"]);
        assert_eq!(tok.decode(&ids).unwrap(), "é\n");
        assert_eq!(tok.token_text(1).as_deref(), Some("<|im_start|>"));
        assert_eq!(tok.token_text(100_000), None);
        assert!(matches!(tok.decode(&[100_000]), Err(Error::Tokenizer(_))));
    }

    #[test]
    fn gpt2_byte_missing_from_vocab_blocks_merges() {
        let mut md = gpt2_md("gpt-2");
        for (k, v) in md.iter_mut() {
            match (*k, v) {
                (KEY_TOKENS, Value::Array(tokens)) => {
                    // byte 0x04 is written U+0104 in byte-level vocabularies
                    tokens.retain(|t| !matches!(t, Value::String(s) if s == "\u{104}"));
                    tokens.push(s("!!"));
                }
                (KEY_TOKEN_TYPE, Value::Array(types)) => {
                    types.pop();
                    types.push(Value::I32(TYPE_NORMAL));
                }
                (KEY_MERGES, Value::Array(merges)) => merges.push(s("! !")),
                _ => {}
            }
        }
        let tok = build(md).unwrap();
        assert_eq!(pieces_of(&tok, &tok.encode("!!").unwrap()), ["!!"]);
        // llama.cpp drops the unknown byte but does not merge across it
        assert_eq!(pieces_of(&tok, &tok.encode("!\u{4}!").unwrap()), ["!", "!"]);
    }

    #[test]
    fn gpt2_digit_splitting_depends_on_pre() {
        let digits = |pre: &str, text: &str| {
            let tok = build(gpt2_md(pre)).unwrap();
            pieces_of(&tok, &tok.encode(text).unwrap())
        };
        assert_eq!(digits("gpt-2", "1234"), ["123", "4"]);
        assert_eq!(digits("smollm", "1234"), ["1", "2", "3", "4"]);
        assert_eq!(digits("llama-bpe", "1234"), ["123", "4"]);
        assert_eq!(digits("llama-bpe", "12345"), ["123", "4", "5"]);
        assert_eq!(digits("default", "the 123"), ["t", "he", "\u{120}", "123"]);
    }

    #[test]
    fn gpt2_add_bos_defaults() {
        assert!(build(gpt2_md("llama-bpe")).unwrap().add_bos);
        assert!(!build(gpt2_md("smollm")).unwrap().add_bos);
        let mut md = gpt2_md("smollm");
        set(&mut md, KEY_ADD_BOS, Value::Bool(true));
        let tok = build(md).unwrap();
        assert!(tok.add_bos);
        assert_eq!(tok.bos_id, Some(0));
        let mut md = gpt2_md("llama-bpe");
        md.retain(|(k, _)| *k != KEY_BOS);
        let err = build(md).unwrap_err().to_string();
        assert!(err.contains(KEY_ADD_BOS) && err.contains(KEY_BOS), "{err}");
    }

    fn expect_model_err(md: Vec<(&str, Value)>, needles: &[&str]) {
        match build(md) {
            Err(e @ Error::Model { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("test.gguf"), "{msg}");
                for n in needles {
                    assert!(msg.contains(n), "{msg:?} should mention {n:?}");
                }
            }
            Err(e) => panic!("expected a model error, got {e}"),
            Ok(_) => panic!("expected an error for {needles:?}"),
        }
    }

    #[test]
    fn bad_metadata_is_a_model_error() {
        let mut md = hello_md();
        md.retain(|(k, _)| *k != KEY_TOKENS);
        expect_model_err(md, &[KEY_TOKENS, "missing"]);

        let mut md = hello_md();
        set(&mut md, KEY_MODEL, Value::U32(1));
        expect_model_err(md, &[KEY_MODEL, "string"]);

        let mut md = hello_md();
        set(&mut md, KEY_TOKENS, Value::String("a".into()));
        expect_model_err(md, &[KEY_TOKENS, "array"]);

        let mut md = hello_md();
        set(
            &mut md,
            KEY_TOKENS,
            Value::Array(vec![s("a"), Value::U8(1)]),
        );
        expect_model_err(md, &["tokenizer.ggml.tokens[1]", "string"]);

        let mut md = hello_md();
        set(&mut md, KEY_SCORES, Value::Array(vec![Value::F32(0.0); 3]));
        expect_model_err(md, &[KEY_SCORES, "3 entries"]);

        let mut md = hello_md();
        set(
            &mut md,
            KEY_TOKEN_TYPE,
            Value::Array(vec![Value::I32(1); 7]),
        );
        expect_model_err(md, &[KEY_TOKEN_TYPE, "7 entries"]);

        let mut md = hello_md();
        md.retain(|(k, _)| *k != KEY_SCORES);
        expect_model_err(md, &[KEY_SCORES, "missing"]);

        let mut md = hello_md();
        set(&mut md, KEY_BOS, Value::U32(1_000_000));
        expect_model_err(md, &[KEY_BOS, "out of range"]);

        let mut md = hello_md();
        set(&mut md, KEY_EOS, Value::I32(-1));
        expect_model_err(md, &[KEY_EOS]);

        let mut md = hello_md();
        set(&mut md, KEY_ADD_BOS, Value::U8(1));
        expect_model_err(md, &[KEY_ADD_BOS, "bool"]);

        let mut md = hello_md();
        set(&mut md, KEY_TOKENS, strs(&["a", "b", "a"]));
        set(&mut md, KEY_SCORES, Value::Array(vec![Value::F32(0.0); 3]));
        set(
            &mut md,
            KEY_TOKEN_TYPE,
            Value::Array(vec![Value::I32(1); 3]),
        );
        expect_model_err(md, &["duplicate", "\"a\""]);

        let mut md = gpt2_md("gpt-2");
        set(&mut md, KEY_MERGES, strs(&["h e", "q zzz"]));
        expect_model_err(md, &["tokenizer.ggml.merges[1]", "\"zzz\""]);

        let mut md = gpt2_md("gpt-2");
        set(&mut md, KEY_MERGES, strs(&["he"]));
        expect_model_err(md, &["tokenizer.ggml.merges[0]"]);

        let mut md = gpt2_md("gpt-2");
        md.retain(|(k, _)| *k != KEY_MERGES);
        expect_model_err(md, &[KEY_MERGES, "missing"]);
    }

    #[test]
    fn unsupported_kinds_are_tokenizer_errors() {
        let err = build(gpt2_md("klingon-bpe")).unwrap_err();
        assert!(
            matches!(&err, Error::Tokenizer(m) if m.contains("\"klingon-bpe\"")),
            "{err}"
        );
        let mut md = hello_md();
        set(&mut md, KEY_MODEL, s("bert"));
        let err = build(md).unwrap_err();
        assert!(
            matches!(&err, Error::Tokenizer(m) if m.contains("\"bert\"")),
            "{err}"
        );
    }

    #[test]
    fn empty_pieces_and_eog_texts() {
        // an empty piece is renamed like llama.cpp; "<|im_end|>" typed normal becomes special
        let mut md = gpt2_md("gpt-2");
        let Some((_, Value::Array(tokens))) = md.iter_mut().find(|(k, _)| *k == KEY_TOKENS) else {
            unreachable!()
        };
        tokens.push(s(""));
        tokens.push(s("<|im_end|>"));
        let Some((_, Value::Array(types))) = md.iter_mut().find(|(k, _)| *k == KEY_TOKEN_TYPE)
        else {
            unreachable!()
        };
        types.push(Value::I32(1));
        types.push(Value::I32(1));
        let tok = build(md).unwrap();
        let n = tok.vocab_size() as u32;
        assert_eq!(tok.token_text(n - 2).unwrap(), format!("[EMPTY_{}]", n - 2));
        assert_eq!(tok.encode("<|im_end|>").unwrap(), [n - 1]);
    }
}
