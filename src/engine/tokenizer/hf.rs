//! Tokenizers of Hugging Face folders: `tokenizer.json` as it is, with what
//! `tokenizer_config.json` (and `chat_template.jinja`) say about prompting the model.

use std::path::Path;

use tokenizers::Tokenizer;

use super::model_tokenizer::{tok_err, ModelTokenizer};
use super::special::SpecialMatcher;
use crate::{Error, Result};

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
                .map_err(|e| Error::bad_input_from(&path, e.line(), "not a JSON file", e))?;
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
                .map_err(|e| Error::bad_input_from(&json, e.line(), "not a JSON file", e))?;
            cfg.chat_template = v["chat_template"].as_str().map(String::from);
        }
        Ok(cfg)
    }
}

/// Largest token id + 1 a tokenizer.json may use (Gemma 3 has 262 144 tokens).
const MAX_VOCAB_IDS: usize = 1 << 23;

impl ModelTokenizer {
    /// Load a Hugging Face folder's `tokenizer.json` as it is; `prompt` (its
    /// tokenizer_config.json) names the BOS and EOS tokens. Added tokens written in the text
    /// are split out by the tokenizer itself, as in `tokenizer(text, add_special_tokens=False)`.
    /// The BOS is added by [`crate::engine::loaded_model::encode_with_bos`] when the tokenizer config asks
    /// for one (`add_bos_token`) or, without that key, when the tokenizer's own
    /// post-processor would add it.
    pub fn from_hf_dir(dir: &Path, prompt: &HfPromptConfig) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::model(dir, "no tokenizer.json in the model folder"));
        }
        let tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| Error::model_from(&path, "cannot read the tokenizer", e))?;
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
        Ok(ModelTokenizer {
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
