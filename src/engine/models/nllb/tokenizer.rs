//! NLLB's tokenizer (`tokenizer.json`): the language codes among its added tokens, sources
//! encoded as `[src_lang] text </s>`, and translations decoded without the special tokens.

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// NLLB's tokenizer (`tokenizer.json`) and the language codes among its added tokens.
pub struct NllbTokenizer {
    inner: tokenizers::Tokenizer,
    /// NLLB code (e.g. "kor_Hang") → token id.
    pub lang_ids: BTreeMap<String, u32>,
    eos: u32,
}

/// `xxx_Yyyy`: a three-letter language and a four-letter script, as NLLB's codes are.
pub fn looks_like_lang_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 8
        && b[..3].iter().all(u8::is_ascii_lowercase)
        && b[3] == b'_'
        && b[4].is_ascii_uppercase()
        && b[5..].iter().all(u8::is_ascii_lowercase)
}

impl NllbTokenizer {
    pub fn load(path: &Path, eos: u32) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::model(
                path,
                "tokenizer.json is missing (a folder with only sentencepiece.bpe.model can be \
                 converted with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir))",
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::model_from(path, "cannot read tokenizer", e))?;
        let lang_ids: BTreeMap<String, u32> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| looks_like_lang_code(&t.content))
            .map(|(id, t)| (t.content, id))
            .collect();
        if lang_ids.is_empty() {
            return Err(Error::model(
                path,
                "no language codes (like eng_Latn) among the added tokens",
            ));
        }
        Ok(Self {
            inner,
            lang_ids,
            eos,
        })
    }

    pub fn lang_id(&self, code: &str) -> Result<u32> {
        self.lang_ids.get(code).copied().ok_or_else(|| {
            Error::ModelLimit(format!(
                "language code {code:?} is not in the tokenizer ({} codes, e.g. {})",
                self.lang_ids.len(),
                self.lang_ids
                    .keys()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// `[src_lang] tokens </s>`.
    pub fn encode_source(&self, text: &str, src_lang: &str) -> Result<Vec<u32>> {
        let lang = self.lang_id(src_lang)?;
        if text.trim().is_empty() {
            return Err(Error::ModelLimit("cannot translate an empty text".into()));
        }
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(enc.len() + 2);
        ids.push(lang);
        ids.extend_from_slice(enc.get_ids());
        ids.push(self.eos);
        Ok(ids)
    }

    /// Text of generated ids, without language codes and special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let body: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| *id != self.eos && !self.lang_ids.values().any(|l| l == id))
            .collect();
        let text = self
            .inner
            .decode(&body, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(text.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_code_shape() {
        assert!(looks_like_lang_code("kor_Hang"));
        assert!(looks_like_lang_code("eng_Latn"));
        assert!(!looks_like_lang_code("<mask>"));
        assert!(!looks_like_lang_code("eng_latn"));
        assert!(!looks_like_lang_code("en_Latn"));
    }
}
