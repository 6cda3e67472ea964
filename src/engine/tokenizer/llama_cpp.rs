//! llama.cpp's vocabulary rules that a GGUF tokenizer must follow to give its token ids
//! (llama-vocab.cpp): the metadata keys, token types, the texts it always treats as special,
//! and the pre-tokenizer regexes of each `tokenizer.ggml.pre`.

use tokenizers::models::bpe::Vocab;

use crate::engine::gguf::Metadata;

pub(super) const KEY_MODEL: &str = "tokenizer.ggml.model";
pub(super) const KEY_PRE: &str = "tokenizer.ggml.pre";
pub(super) const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
pub(super) const KEY_SCORES: &str = "tokenizer.ggml.scores";
pub(super) const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub(super) const KEY_MERGES: &str = "tokenizer.ggml.merges";
pub(super) const KEY_BOS: &str = "tokenizer.ggml.bos_token_id";
pub(super) const KEY_EOS: &str = "tokenizer.ggml.eos_token_id";
pub(super) const KEY_UNK: &str = "tokenizer.ggml.unknown_token_id";
pub(super) const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
pub(super) const KEY_ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";

/// The SentencePiece escaped space, U+2581.
pub(super) const SPM_SPACE: &str = "\u{2581}";

// llama.cpp token types (`llama_token_type`).
pub(super) const TYPE_NORMAL: i32 = 1;
pub(super) const TYPE_UNKNOWN: i32 = 2;
pub(super) const TYPE_CONTROL: i32 = 3;
pub(super) const TYPE_USER_DEFINED: i32 = 4;

/// Token texts that llama.cpp always treats as end-of-generation tokens and forces to be
/// control tokens, whatever type the file gives them (llama-vocab.cpp, `special_eog_ids`).
pub(super) const EOG_TEXTS: &[&str] = &[
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
pub(super) const FIM_TEXTS: &[(&[&str], &[&str])] = &[
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
pub(super) const RE_GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
pub(super) const RE_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const RE_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const RE_DEFAULT: &[&str] = &[
    r"[\p{P}\$\+<=>\^~\|]+",
    RE_GPT2,
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
];

/// How llama.cpp pre-tokenizes a byte-level BPE vocabulary, by `tokenizer.ggml.pre`.
pub(super) struct BpePre {
    pub(super) regexes: &'static [&'static str],
    /// Use a whole pre-token as one token when it is in the vocabulary.
    pub(super) ignore_merges: bool,
    /// llama.cpp's default for `add_bos_token` with this pre-tokenizer.
    pub(super) add_bos: bool,
}

pub(super) fn bpe_pre(name: &str) -> Option<BpePre> {
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

/// The ids that llama.cpp splits out of text with `parse_special = true`: control,
/// user-defined and unknown tokens, after llama.cpp's fix-ups by token text.
pub(super) fn special_token_ids(meta: &Metadata, vocab: &Vocab, types: &[i32]) -> Vec<u32> {
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
        if keys.iter().any(|k| meta.get(k).is_some()) {
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
