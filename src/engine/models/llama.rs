//! Llama family: Llama 2, Llama 3/3.1/3.2 (GQA, "llama3" rope scaling, tied or untied
//! embeddings) and Llama-architecture small models (SmolLM2), from GGUF or a Hugging Face
//! folder. What differs from the other families is only the [`Spec`]: SiLU MLP, plain RMS
//! norms, 1/sqrt(head_dim) attention scale, one rotary table.

use super::decoder::Decoder;
use super::spec::{inv_freq, Activation, LayerAttention, RopeScaling, Spec};
use super::weights::{GgufWeights, SafetensorsWeights, WeightName, WeightSource};
use super::WeightFormat;
use crate::engine::gguf::GgufFile;
use crate::{Error, Result};
use candle_core::Device;
use serde::Deserialize;
use std::path::Path;

/// A Hugging Face `config.json` of a `LlamaForCausalLM`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// transformers < 5.
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// transformers >= 5: theta and scaling in one object.
    #[serde(default)]
    pub rope_parameters: Option<RopeScaling>,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

fn default_max_positions() -> usize {
    4096
}

impl Config {
    pub fn spec(&self) -> Result<Spec> {
        let head_dim = self
            .head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1));
        let scaling = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref());
        let theta = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0);
        Ok(llama_spec(
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            head_dim,
            self.rms_norm_eps,
            self.max_position_embeddings,
            inv_freq(head_dim, theta, scaling)?,
            false,
        ))
    }
}

#[allow(clippy::too_many_arguments)]
fn llama_spec(
    vocab_size: usize,
    hidden_size: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f64,
    max_positions: usize,
    rope: Vec<f32>,
    rope_interleaved: bool,
) -> Spec {
    Spec {
        family: "llama",
        vocab_size,
        hidden_size,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim,
        rms_norm_eps: eps,
        max_position_embeddings: max_positions,
        activation: Activation::Silu,
        embed_scale: None,
        attn_scale: 1.0 / (head_dim as f64).sqrt(),
        attn_softcap: None,
        final_softcap: None,
        sandwich_norms: false,
        qk_norm: false,
        rope_interleaved,
        rope: vec![rope],
        layers: vec![
            LayerAttention {
                sliding_window: None,
                rope: 0,
            };
            layers
        ],
    }
}

/// Load a GGUF of architecture "llama".
pub fn from_gguf(g: &mut GgufFile, device: &Device, format: WeightFormat) -> Result<Decoder> {
    let shape = super::gguf_shape::GgufShape::read(g, "llama")?;
    let theta = g
        .optional("llama.rope.freq_base", GgufFile::f32)?
        .map_or(10_000.0, f64::from);
    let mut rope = inv_freq(shape.head_dim, theta, None)?;
    // Llama 3.1+ GGUFs carry the "llama3" rope scaling as per-frequency divisors.
    if g.has_tensor("rope_freqs.weight") {
        let factors = g
            .tensor("rope_freqs.weight", device)?
            .dequantize(device)?
            .to_vec1::<f32>()?;
        if factors.len() != rope.len() {
            return Err(Error::model(
                &g.path,
                format!(
                    "rope_freqs.weight has {} values, expected {}",
                    factors.len(),
                    rope.len()
                ),
            ));
        }
        rope.iter_mut().zip(&factors).for_each(|(f, d)| *f /= d);
    }
    let spec = llama_spec(
        shape.vocab_size,
        shape.hidden_size,
        shape.layers,
        shape.heads,
        shape.kv_heads,
        shape.head_dim,
        shape.eps,
        shape.max_positions,
        rope,
        // llama.cpp's converter permutes Llama q/k rows for interleaved rotary pairs.
        true,
    );
    let pad_id = shape.pad_id;
    let mut w = GgufWeights {
        file: g,
        device: device.clone(),
    };
    let tied = !w.has(WeightName::Output);
    Decoder::load(spec, &mut w, tied, pad_id, format, "GGUF", device)
}

/// Load a Hugging Face Llama folder (config.json + safetensors).
pub fn from_hf(dir: &Path, cfg: &Config, device: &Device, format: WeightFormat) -> Result<Decoder> {
    let spec = cfg.spec()?;
    let mut w = SafetensorsWeights::open(dir, device, false, 0.0)?;
    // Some tied checkpoints still store lm_head.weight; a missing one means tied either way.
    let tied = cfg.tie_word_embeddings || !w.has(WeightName::Output);
    Decoder::load(
        spec,
        &mut w,
        tied,
        cfg.pad_token_id.unwrap_or(0),
        format,
        "safetensors",
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_config_old_and_new_rope_layouts_agree() {
        let old = r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#;
        let new = r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "rms_norm_eps": 1e-5,
            "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 8192}}"#;
        let old: Config = serde_json::from_str(old).unwrap();
        let new: Config = serde_json::from_str(new).unwrap();
        let (a, b) = (old.spec().unwrap(), new.spec().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.head_dim, 4);
        assert_ne!(a.rope[0], inv_freq(4, 500_000.0, None).unwrap());
    }
}
