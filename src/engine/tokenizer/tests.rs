//! Unit tests of the GGUF tokenizer: building it from metadata, special tokens, and bad
//! metadata as model errors.

use super::gguf_vocab::{gpt2_byte_chars, spm_merges};
use super::llama_cpp::*;
use super::special::{Fragment, SpecialMatcher};
use super::*;
use crate::{Error, Result};
use candle_core::quantized::gguf_file::{self, Value};
use std::collections::HashMap;
use std::path::Path;
use tokenizers::models::bpe::Vocab;

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

fn build(md: Vec<(&str, Value)>) -> Result<ModelTokenizer> {
    ModelTokenizer::from_gguf(&content(md), Path::new("test.gguf"))
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

fn ids_of(tok: &ModelTokenizer, pieces: &[&str]) -> Vec<u32> {
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

fn pieces_of(tok: &ModelTokenizer, ids: &[u32]) -> Vec<String> {
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
    let Some((_, Value::Array(types))) = md.iter_mut().find(|(k, _)| *k == KEY_TOKEN_TYPE) else {
        unreachable!()
    };
    types.push(Value::I32(1));
    types.push(Value::I32(1));
    let tok = build(md).unwrap();
    let n = tok.vocab_size() as u32;
    assert_eq!(tok.token_text(n - 2).unwrap(), format!("[EMPTY_{}]", n - 2));
    assert_eq!(tok.encode("<|im_end|>").unwrap(), [n - 1]);
}
