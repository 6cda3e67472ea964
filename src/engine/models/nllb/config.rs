//! `config.json` of an M2M100/NLLB checkpoint, checked before any value sizes a tensor.

use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// `config.json` of an M2M100/NLLB checkpoint; unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_true")]
    pub scale_embedding: bool,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default)]
    pub bos_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default = "default_eos")]
    pub decoder_start_token_id: u32,
    /// Set in some configs: the last position of a max-length output is forced to this token.
    #[serde(default)]
    pub forced_eos_token_id: Option<u32>,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_max_positions() -> usize {
    1024
}
fn default_true() -> bool {
    true
}
fn default_activation() -> String {
    "relu".into()
}
fn default_pad() -> u32 {
    1
}
fn default_eos() -> u32 {
    2
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: Config = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input_from(path, e.line(), "not an M2M100 config", e))?;
        cfg.check()
            .map_err(|e| Error::model_from(path, "not a usable M2M100 config", e))?;
        Ok(cfg)
    }

    pub(super) fn check(&self) -> Result<()> {
        if let Some(t) = &self.model_type {
            if t != "m2m_100" {
                return Err(Error::ModelConfig(format!(
                    "model_type {t:?} is not m2m_100 (NLLB-200)"
                )));
            }
        }
        if !matches!(self.activation_function.as_str(), "relu" | "gelu") {
            return Err(Error::ModelConfig(format!(
                "unsupported activation_function {:?}",
                self.activation_function
            )));
        }
        for (what, dim, heads) in [
            ("encoder", self.d_model, self.encoder_attention_heads),
            ("decoder", self.d_model, self.decoder_attention_heads),
        ] {
            if heads == 0 || dim % heads != 0 {
                return Err(Error::ModelConfig(format!(
                    "d_model {dim} is not divisible by {what}_attention_heads {heads}"
                )));
            }
        }
        if !self.d_model.is_multiple_of(2) || self.d_model < 4 {
            return Err(Error::ModelConfig(format!(
                "d_model {} must be even and >= 4",
                self.d_model
            )));
        }
        Ok(())
    }
}
