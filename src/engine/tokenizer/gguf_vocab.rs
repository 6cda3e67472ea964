//! [`ModelTokenizer::from_gguf`]: a `tokenizers::Tokenizer` rebuilt from a GGUF file's
//! `tokenizer.ggml.*` metadata (read with `engine::gguf`'s typed reader) the way llama.cpp
//! builds its vocabulary: SentencePiece merges from scores, byte-level BPE from merges, the
//! pre-tokenizer of `tokenizer.ggml.pre`, and the special tokens split out first.

use std::collections::HashSet;
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

use super::llama_cpp::*;
use super::model_tokenizer::{tok_err, ModelTokenizer};
use super::special::SpecialMatcher;
use crate::engine::gguf::{integer, Metadata};
use crate::{Error, Result};

/// The vocabulary kinds this module can rebuild.
enum VocabKind {
    /// `tokenizer.ggml.model = "llama"`: SentencePiece BPE with scores.
    Spm,
    /// `tokenizer.ggml.model = "gpt2"`: byte-level BPE with merges.
    Bpe(BpePre),
}

impl ModelTokenizer {
    /// Build the tokenizer from the metadata of a GGUF file. `path` is only used in error
    /// messages.
    pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Self> {
        let meta = Metadata::new(&content.metadata, path);

        let model = meta.string(KEY_MODEL)?;
        let kind = match model {
            "llama" => VocabKind::Spm,
            "gpt2" => {
                // llama.cpp: a missing pre-tokenizer means "default"
                let pre = meta
                    .optional(KEY_PRE, Metadata::string)?
                    .unwrap_or("default");
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

        let (pieces, vocab) = read_pieces(&meta)?;
        let n = pieces.len();
        let types = read_token_types(&meta, n)?;
        let scores = read_scores(&meta, n)?;

        let token_id = |key: &str| -> Result<Option<u32>> {
            match meta.optional(key, Metadata::u32)? {
                Some(id) if id as usize >= n => Err(err(
                    &meta,
                    format!("{key} = {id} is out of range (vocabulary has {n} tokens)"),
                )),
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

        let add_bos = match meta.optional(KEY_ADD_BOS, Metadata::bool)? {
            Some(b) => b,
            None => match &kind {
                VocabKind::Spm => true,
                VocabKind::Bpe(pre) => pre.add_bos,
            },
        };
        if add_bos && bos_id.is_none() {
            return Err(err(
                &meta,
                format!("{KEY_ADD_BOS} is true, but {KEY_BOS} is not set"),
            ));
        }
        let add_space_prefix = is_spm
            && meta
                .optional(KEY_ADD_SPACE_PREFIX, Metadata::bool)?
                .unwrap_or(true);

        // Which tokens are split out of the text before the model sees it.
        let specials = special_token_ids(&meta, &vocab, &types);

        let mut tokenizer = match kind {
            VocabKind::Spm => {
                let scores = scores.ok_or_else(|| {
                    err(
                        &meta,
                        format!("missing {KEY_SCORES} (needed for a \"llama\" vocabulary)"),
                    )
                })?;
                let merges = spm_merges(&pieces, &scores, &vocab);
                let mut builder = BpeBuilder::new()
                    .vocab_and_merges(vocab, merges)
                    .byte_fallback(true);
                if let Some(unk) = unk_id {
                    builder = builder.unk_token(pieces[unk as usize].clone());
                }
                let bpe = builder.build().map_err(|e| {
                    meta.error_from(
                        "tokenizer metadata: cannot build the SentencePiece BPE model",
                        e,
                    )
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
                let merges = read_merges(&meta, &vocab)?;
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
                    .map_err(|e| {
                        meta.error_from("tokenizer metadata: cannot build the BPE model", e)
                    })?;
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
        Ok(ModelTokenizer {
            tokenizer,
            bos_id,
            eos_id,
            add_bos,
            pieces,
            specials,
        })
    }
}

/// A model error about the tokenizer's metadata.
fn err(meta: &Metadata, msg: impl Into<String>) -> Error {
    meta.error(format!("tokenizer metadata: {}", msg.into()))
}

fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// GPT-2's byte-to-unicode table: the character that stands for each byte in a byte-level BPE
/// vocabulary.
pub(super) fn gpt2_byte_chars() -> [char; 256] {
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
pub(super) fn spm_merges(
    pieces: &[String],
    scores: &[f32],
    vocab: &Vocab,
) -> Vec<(String, String)> {
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

/// `tokenizer.ggml.tokens`, with empty pieces renamed as llama.cpp does and duplicates
/// rejected, and the map from piece to id.
fn read_pieces(meta: &Metadata) -> Result<(Vec<String>, Vocab)> {
    let items = meta.array_of(KEY_TOKENS, "a string", as_str)?;
    if items.is_empty() {
        return Err(err(meta, format!("{KEY_TOKENS} is empty")));
    }
    if u32::try_from(items.len()).is_err() {
        return Err(err(meta, format!("{KEY_TOKENS} has too many entries")));
    }
    let mut pieces = Vec::with_capacity(items.len());
    let mut vocab = Vocab::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let piece = if item.is_empty() {
            format!("[EMPTY_{i}]")
        } else {
            item.to_string()
        };
        if let Some(first) = vocab.insert(piece.clone(), i as u32) {
            return Err(err(
                meta,
                format!("{KEY_TOKENS}: duplicate token {piece:?} at ids {first} and {i}"),
            ));
        }
        pieces.push(piece);
    }
    Ok((pieces, vocab))
}

fn check_len(meta: &Metadata, key: &str, got: usize, n: usize) -> Result<()> {
    if got != n {
        return Err(err(
            meta,
            format!("{key} has {got} entries but {KEY_TOKENS} has {n}"),
        ));
    }
    Ok(())
}

/// `tokenizer.ggml.token_type`; all normal when absent.
fn read_token_types(meta: &Metadata, n: usize) -> Result<Vec<i32>> {
    let Some(items) = meta.optional(KEY_TOKEN_TYPE, Metadata::array)? else {
        return Ok(vec![TYPE_NORMAL; n]);
    };
    check_len(meta, KEY_TOKEN_TYPE, items.len(), n)?;
    meta.array_of(KEY_TOKEN_TYPE, "an int32", |v| {
        integer(v).and_then(|x| i32::try_from(x).ok())
    })
}

/// `tokenizer.ggml.scores`: any numbers, as f32.
fn read_scores(meta: &Metadata, n: usize) -> Result<Option<Vec<f32>>> {
    let Some(items) = meta.optional(KEY_SCORES, Metadata::array)? else {
        return Ok(None);
    };
    check_len(meta, KEY_SCORES, items.len(), n)?;
    meta.array_of(KEY_SCORES, "a number", |v| match v {
        Value::F32(x) => Some(*x),
        Value::F64(x) => Some(*x as f32),
        other => integer(other).map(|x| x as f32),
    })
    .map(Some)
}

/// `tokenizer.ggml.merges` as pairs, in rank order, keeping the first of duplicates like
/// llama.cpp.
fn read_merges(meta: &Metadata, vocab: &Vocab) -> Result<Vec<(String, String)>> {
    if meta.get(KEY_MERGES).is_none() {
        return Err(err(
            meta,
            format!("missing {KEY_MERGES} (needed for a \"gpt2\" vocabulary)"),
        ));
    }
    let items = meta.array_of(KEY_MERGES, "a string", as_str)?;
    let mut merges = Vec::with_capacity(items.len());
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(items.len());
    for (i, &m) in items.iter().enumerate() {
        // llama.cpp splits at the first space after the first character.
        let first_len = m.chars().next().map_or(0, char::len_utf8);
        let Some(space) = m[first_len..].find(' ').map(|p| p + first_len) else {
            return Err(err(
                meta,
                format!("{KEY_MERGES}[{i}] = {m:?} is not two tokens separated by a space"),
            ));
        };
        let (l, r) = (&m[..space], &m[space + 1..]);
        for part in [l, r] {
            if !vocab.contains_key(part) {
                return Err(err(
                    meta,
                    format!(
                    "{KEY_MERGES}[{i}] = {m:?} refers to {part:?}, which is not in {KEY_TOKENS}"
                ),
                ));
            }
        }
        if !vocab.contains_key(&format!("{l}{r}")) {
            return Err(err(
                meta,
                format!(
                    "{KEY_MERGES}[{i}] = {m:?} makes {:?}, which is not in {KEY_TOKENS}",
                    format!("{l}{r}")
                ),
            ));
        }
        if seen.insert((l, r)) {
            merges.push((l.to_string(), r.to_string()));
        }
    }
    Ok(merges)
}
