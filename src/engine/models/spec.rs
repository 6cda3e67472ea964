//! What a decoder family's architecture is, as data: the [`Spec`] the shared decoder runs
//! (activation, norms, per-layer attention, rotary tables) and Hugging Face's rotary
//! parameters (`rope_theta`, `rope_scaling`).

use crate::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Llama: SiLU-gated MLP.
    Silu,
    /// Gemma: GELU with the tanh approximation ("gelu_pytorch_tanh").
    GeluTanh,
}

/// Rotary embedding parameters in Hugging Face's vocabulary (`rope_theta` plus the
/// `rope_scaling` / `rope_parameters` object).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RopeScaling {
    #[serde(alias = "type", default)]
    pub rope_type: Option<String>,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    #[serde(default)]
    pub original_max_position_embeddings: Option<usize>,
}

/// Inverse rotary frequencies, one per pair of head dimensions, as Hugging Face computes them
/// (`default`, `linear` and `llama3` rope types).
pub fn inv_freq(head_dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Result<Vec<f32>> {
    // HF computes these in f32: 1 / theta ** (arange(0, d, 2).float() / d).
    let base: Vec<f32> = (0..head_dim / 2)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let Some(s) = scaling else { return Ok(base) };
    let factor = s.factor.unwrap_or(1.0) as f32;
    match s.rope_type.as_deref().unwrap_or("default") {
        "default" => Ok(base),
        "linear" => Ok(base.iter().map(|f| f / factor).collect()),
        "llama3" => {
            let (Some(low), Some(high), Some(old_ctx)) = (
                s.low_freq_factor,
                s.high_freq_factor,
                s.original_max_position_embeddings,
            ) else {
                return Err(Error::ModelConfig(
                    "rope_scaling llama3 needs low_freq_factor, high_freq_factor and original_max_position_embeddings".into(),
                ));
            };
            let (low, high, old_ctx) = (low as f32, high as f32, old_ctx as f32);
            let low_freq_wavelen = old_ctx / low;
            let high_freq_wavelen = old_ctx / high;
            Ok(base
                .iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    if wavelen < high_freq_wavelen {
                        f
                    } else if wavelen > low_freq_wavelen {
                        f / factor
                    } else {
                        let smooth = (old_ctx / wavelen - low) / (high - low);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect())
        }
        other => Err(Error::ModelConfig(format!(
            "unsupported rope scaling type {other:?} (supported: default, linear, llama3)"
        ))),
    }
}

/// How one layer attends.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerAttention {
    /// A key is visible when it is fewer than this many positions behind the query.
    pub sliding_window: Option<usize>,
    /// Index into [`Spec::rope`].
    pub rope: usize,
}

/// Everything the forward pass needs to know about a family's architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// "llama", "gemma", "gemma2", "gemma3": for descriptions.
    pub family: &'static str,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub activation: Activation,
    /// Gemma multiplies the embeddings by sqrt(hidden_size).
    pub embed_scale: Option<f64>,
    /// Multiplies q·k: 1/sqrt(head_dim), or query_pre_attn_scalar^-0.5 in Gemma 2/3.
    pub attn_scale: f64,
    /// Gemma 2: attention scores become cap * tanh(scores / cap) before the mask.
    pub attn_softcap: Option<f64>,
    /// Gemma 2: the same on the output logits.
    pub final_softcap: Option<f64>,
    /// Gemma 2/3: norms after attention and after the MLP, before each residual add.
    pub sandwich_norms: bool,
    /// Gemma 3: RMS norm of each query and key head before the rotary embedding.
    pub qk_norm: bool,
    /// GGUF Llama q/k weights are permuted for interleaved rotary pairs (llama.cpp's
    /// "norm" rope); everything else rotates the two halves of each head (NeoX style).
    pub rope_interleaved: bool,
    /// Inverse frequency tables; each layer names one (Gemma 3: local and global).
    pub rope: Vec<Vec<f32>>,
    pub layers: Vec<LayerAttention>,
}

impl Spec {
    /// Reject shapes the forward pass cannot run, naming the file.
    pub fn check(&self, path: &std::path::Path) -> Result<()> {
        let bad = |msg: String| Err(Error::model(path, msg));
        if self.num_attention_heads == 0
            || self.num_key_value_heads == 0
            || !self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
        {
            return bad(format!(
                "inconsistent attention shape: {} heads, {} kv heads",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.vocab_size == 0 || self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(format!(
                "unusable shape: vocabulary {}, head dimension {}",
                self.vocab_size, self.head_dim
            ));
        }
        if self.layers.is_empty() || self.max_position_embeddings == 0 {
            return bad("no layers or no context".into());
        }
        if let Some(l) = self.layers.iter().find(|l| l.rope >= self.rope.len()) {
            return bad(format!(
                "layer names rope table {} of {}",
                l.rope,
                self.rope.len()
            ));
        }
        if self.rope.iter().any(|r| r.len() != self.head_dim / 2) {
            return bad("rotary table does not match the head dimension".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_rope_scaling_matches_hf_bands() {
        // HF _compute_llama3_parameters: short wavelengths kept, long ones divided by factor,
        // the band between interpolated.
        let s = RopeScaling {
            rope_type: Some("llama3".into()),
            factor: Some(8.0),
            low_freq_factor: Some(1.0),
            high_freq_factor: Some(4.0),
            original_max_position_embeddings: Some(8192),
            rope_theta: None,
        };
        let base = inv_freq(128, 500_000.0, None).unwrap();
        let scaled = inv_freq(128, 500_000.0, Some(&s)).unwrap();
        assert_eq!(scaled[0], base[0]);
        assert!((scaled[63] - base[63] / 8.0).abs() < 1e-12);
        let mid = scaled
            .iter()
            .zip(&base)
            .filter(|(s, b)| *s < *b && **s > **b / 8.0)
            .count();
        assert!(mid > 0);
    }
}
