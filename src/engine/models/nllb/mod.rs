//! NLLB-200 (the M2M100 encoder-decoder) for translation: the paper's multilingual approach
//! asks each country's questions in its language, translated by NLLB-200 3.3B.
//!
//! A port of Hugging Face transformers' `M2M100ForConditionalGeneration` and of its
//! `generate` (greedy and beam search as NLLB translation calls it, with the target language
//! forced as the first generated token). See `shared/design/nllb.md` for the facts a faithful
//! port must respect; `tests/it/nllb_parity.rs` checks it against the reference on a tiny random
//! model.
//!
//! The parts: [`config`] (config.json), [`weights`] (loading safetensors, random weights),
//! [`model`] (the encoder-decoder), [`search`] (greedy and beam search), [`tokenizer`]
//! (language codes); this file is the facade, [`Translator`], that the translation pipeline
//! uses. Checkpoint folders and hub ids are found by `engine::hub`.

pub mod config;
pub mod model;
pub mod search;
pub mod tokenizer;
pub mod weights;

pub use config::Config;
pub use model::{DecoderCache, NllbModel};
pub use search::{GenerateOptions, MaxLength};
pub use tokenizer::{looks_like_lang_code, NllbTokenizer};
pub use weights::{random_model, weight_files};

use crate::engine::hub::{self, CheckpointDir};
use crate::{Error, Result};
use candle_core::Device;
use std::path::Path;

/// Resolve an NLLB checkpoint from a user path (`hub::find_checkpoint`'s forms).
pub fn resolve_checkpoint(path: &Path) -> Result<CheckpointDir> {
    if let Some(found) = hub::find_checkpoint(path)? {
        return Ok(found);
    }
    if !path.exists() {
        return Err(Error::model(path, "no such NLLB model folder"));
    }
    Err(Error::model(
        path,
        "not an NLLB checkpoint: no config.json (expected a Hugging Face folder or hub-cache entry)",
    ))
}

/// Model and tokenizer together: what the translation pipeline uses.
pub struct Translator {
    pub model: NllbModel,
    pub tokenizer: NllbTokenizer,
    pub checkpoint: CheckpointDir,
}

impl Translator {
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let checkpoint = resolve_checkpoint(path)?;
        let config = Config::from_file(&checkpoint.dir.join("config.json"))?;
        let eos = config.eos_token_id;
        let model = NllbModel::load(&checkpoint.dir, config, device)?;
        let tokenizer = NllbTokenizer::load(&checkpoint.dir.join("tokenizer.json"), eos)?;
        if let Some((code, &id)) = tokenizer
            .lang_ids
            .iter()
            .find(|(_, &id)| id as usize >= model.vocab_size())
        {
            return Err(Error::model(
                &checkpoint.dir,
                format!(
                    "language code {code} has id {id}, outside the embedding of {} rows",
                    model.vocab_size()
                ),
            ));
        }
        Ok(Self {
            model,
            tokenizer,
            checkpoint,
        })
    }

    /// Tokenize sources, checking each fits the model; errors name the text.
    pub fn encode_sources(&self, texts: &[&str], src_lang: &str) -> Result<Vec<Vec<u32>>> {
        let max = self.model.config.max_position_embeddings;
        texts
            .iter()
            .map(|t| {
                let ids = self
                    .tokenizer
                    .encode_source(t, src_lang)
                    .map_err(|e| Error::ModelLimit(format!("{e} (text: {:?})", preview(t))))?;
                if ids.len() > max {
                    return Err(Error::ModelLimit(format!(
                        "text of {} tokens exceeds the model's {max} positions; split it into \
                         sentences (text: {:?})",
                        ids.len(),
                        preview(t)
                    )));
                }
                Ok(ids)
            })
            .collect()
    }

    /// Translate one batch of texts from `src_lang` to `tgt_lang` (NLLB codes).
    pub fn translate(
        &self,
        texts: &[&str],
        src_lang: &str,
        tgt_lang: &str,
        opts: &GenerateOptions,
    ) -> Result<Vec<String>> {
        let tgt = self.tokenizer.lang_id(tgt_lang)?;
        let sources = self.encode_sources(texts, src_lang)?;
        let out = self.model.generate(&sources, tgt, opts)?;
        out.iter().map(|ids| self.tokenizer.decode(ids)).collect()
    }
}

fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        p.push('…');
    }
    p
}
