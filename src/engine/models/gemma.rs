//! Gemma family: Gemma 1, Gemma 2 and Gemma 3 (text), from GGUF or a Hugging Face folder.
//!
//! What sets them apart from Llama, all expressed in the decoder [`Spec`]: GELU-tanh MLP,
//! embeddings scaled by sqrt(hidden), RMS norms computed as x * (1 + w) (Hugging Face stores
//! w, llama.cpp's converter stores 1 + w), tied embeddings. Gemma 2 adds norms after attention
//! and after the MLP, tanh soft-capping of attention scores and final logits, an attention
//! scale of query_pre_attn_scalar^-0.5 and sliding-window attention on every other layer.
//! Gemma 3 drops the soft-capping, adds RMS norms on each query and key head, and has five
//! sliding-window layers (with their own rotary base) for every global one.

use super::decoder::Decoder;
use super::spec::{inv_freq, Activation, LayerAttention, RopeScaling, Spec};
use super::weights::{GgufWeights, SafetensorsWeights};
use super::WeightFormat;
use crate::engine::gguf::GgufFile;
use crate::{Error, Result};
use candle_core::Device;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Gemma1,
    Gemma2,
    Gemma3,
}

impl Version {
    /// The GGUF architecture name, which is also Hugging Face's `model_type`.
    pub fn arch(self) -> &'static str {
        match self {
            Version::Gemma1 => "gemma",
            Version::Gemma2 => "gemma2",
            Version::Gemma3 => "gemma3",
        }
    }

    pub fn from_arch(arch: &str) -> Option<Self> {
        match arch {
            "gemma" => Some(Version::Gemma1),
            "gemma2" => Some(Version::Gemma2),
            "gemma3" | "gemma3_text" => Some(Version::Gemma3),
            _ => None,
        }
    }

    /// Layers out of every this many that use sliding-window attention, the last one global
    /// (Hugging Face's `sliding_window_pattern`, llama.cpp's `set_swa_pattern`).
    fn default_pattern(self) -> usize {
        match self {
            Version::Gemma1 => 0,
            Version::Gemma2 => 2,
            Version::Gemma3 => 6,
        }
    }
}

/// A Hugging Face `config.json` of Gemma, Gemma 2 or Gemma 3 text (for a Gemma 3 multimodal
/// checkpoint, its `text_config`). Defaults are those of transformers' config classes, which
/// multimodal checkpoints rely on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    #[serde(default = "default_hidden")]
    pub hidden_size: usize,
    #[serde(default = "default_intermediate")]
    pub intermediate_size: usize,
    #[serde(default = "default_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "default_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "default_kv_heads")]
    pub num_key_value_heads: usize,
    #[serde(default = "default_head_dim")]
    pub head_dim: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Gemma 3 (transformers < 5): the sliding layers' rotary base.
    #[serde(default)]
    pub rope_local_base_freq: Option<f64>,
    /// Gemma 3 (transformers < 5): scaling of the global layers' rotary frequencies.
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// transformers >= 5: one object, or for Gemma 3 one per layer type.
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    #[serde(default)]
    pub sliding_window: Option<usize>,
    #[serde(default)]
    pub sliding_window_pattern: Option<usize>,
    /// "sliding_attention" / "full_attention" per layer (newer configs).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
}

// transformers' Gemma3TextConfig defaults (the multimodal checkpoints omit these fields).
fn default_vocab() -> usize {
    262_208
}
fn default_hidden() -> usize {
    2304
}
fn default_intermediate() -> usize {
    9216
}
fn default_layers() -> usize {
    26
}
fn default_heads() -> usize {
    8
}
fn default_kv_heads() -> usize {
    4
}
fn default_head_dim() -> usize {
    256
}
fn default_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> usize {
    131_072
}

impl Config {
    pub fn spec(&self, version: Version) -> Result<Spec> {
        let hd = self.head_dim;
        // Rotary tables: 0 = global layers, 1 = sliding layers (Gemma 3 only).
        let rope_param = |kind: &str| -> Result<Option<RopeScaling>> {
            let Some(p) = &self.rope_parameters else {
                return Ok(None);
            };
            let p = p.get(kind).unwrap_or(p);
            Ok(Some(serde_json::from_value(p.clone())?))
        };
        let global = rope_param("full_attention")?.or_else(|| self.rope_scaling.clone());
        let global_theta = global
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(match version {
                Version::Gemma3 => 1_000_000.0,
                _ => 10_000.0,
            });
        let mut rope = vec![inv_freq(hd, global_theta, global.as_ref())?];
        if version == Version::Gemma3 {
            let local = rope_param("sliding_attention")?;
            let local_theta = local
                .as_ref()
                .and_then(|p| p.rope_theta)
                .or(self.rope_local_base_freq)
                .unwrap_or(10_000.0);
            rope.push(inv_freq(hd, local_theta, local.as_ref())?);
        }
        let sliding: Vec<bool> = match &self.layer_types {
            Some(types) => {
                if types.len() != self.num_hidden_layers {
                    return Err(Error::ModelConfig(format!(
                        "layer_types has {} entries for {} layers",
                        types.len(),
                        self.num_hidden_layers
                    )));
                }
                types.iter().map(|t| t == "sliding_attention").collect()
            }
            None => sliding_layers(
                self.num_hidden_layers,
                self.sliding_window_pattern
                    .unwrap_or(version.default_pattern()),
            ),
        };
        let query_scalar = self.query_pre_attn_scalar.unwrap_or(hd as f64);
        Ok(gemma_spec(
            version,
            Shape {
                vocab_size: self.vocab_size,
                hidden_size: self.hidden_size,
                heads: self.num_attention_heads,
                kv_heads: self.num_key_value_heads,
                head_dim: hd,
                eps: self.rms_norm_eps,
                max_positions: self.max_position_embeddings,
            },
            match version {
                Version::Gemma1 => 1.0 / (hd as f64).sqrt(),
                _ => 1.0 / query_scalar.sqrt(),
            },
            self.attn_logit_softcapping,
            self.final_logit_softcapping,
            &sliding,
            self.sliding_window,
            rope,
        ))
    }
}

/// Which of `layers` use the sliding window: all but every `pattern`-th (0 = none).
fn sliding_layers(layers: usize, pattern: usize) -> Vec<bool> {
    (0..layers)
        .map(|i| pattern > 0 && (i + 1) % pattern != 0)
        .collect()
}

struct Shape {
    vocab_size: usize,
    hidden_size: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f64,
    max_positions: usize,
}

#[allow(clippy::too_many_arguments)]
fn gemma_spec(
    version: Version,
    s: Shape,
    attn_scale: f64,
    attn_softcap: Option<f64>,
    final_softcap: Option<f64>,
    sliding: &[bool],
    window: Option<usize>,
    rope: Vec<Vec<f32>>,
) -> Spec {
    let two_ropes = rope.len() > 1;
    Spec {
        family: version.arch(),
        vocab_size: s.vocab_size,
        hidden_size: s.hidden_size,
        num_attention_heads: s.heads,
        num_key_value_heads: s.kv_heads,
        head_dim: s.head_dim,
        rms_norm_eps: s.eps,
        max_position_embeddings: s.max_positions,
        activation: Activation::GeluTanh,
        embed_scale: Some((s.hidden_size as f64).sqrt()),
        attn_scale,
        attn_softcap: attn_softcap.filter(|_| version == Version::Gemma2),
        final_softcap: final_softcap.filter(|_| version != Version::Gemma1),
        sandwich_norms: version != Version::Gemma1,
        qk_norm: version == Version::Gemma3,
        rope_interleaved: false,
        rope,
        layers: sliding
            .iter()
            .map(|&sw| LayerAttention {
                sliding_window: if sw { window } else { None },
                rope: usize::from(sw && two_ropes),
            })
            .collect(),
    }
}

/// Load a GGUF of architecture "gemma", "gemma2" or "gemma3".
pub fn from_gguf(
    g: &mut GgufFile,
    version: Version,
    device: &Device,
    format: WeightFormat,
) -> Result<Decoder> {
    let arch = version.arch();
    let shape = super::gguf_shape::GgufShape::read(g, arch)?;
    let key = |k: &str| format!("{arch}.{k}");
    let theta = g.optional(&key("rope.freq_base"), GgufFile::f32)?.map_or(
        match version {
            Version::Gemma3 => 1_000_000.0,
            _ => 10_000.0,
        },
        f64::from,
    );
    let scaling = match g.optional(&key("rope.scaling.type"), GgufFile::string)? {
        Some(kind) => Some(RopeScaling {
            rope_type: Some(kind),
            factor: g
                .optional(&key("rope.scaling.factor"), GgufFile::f32)?
                .map(f64::from),
            ..Default::default()
        }),
        None => None,
    };
    let mut rope = vec![inv_freq(shape.head_dim, theta, scaling.as_ref())?];
    if version == Version::Gemma3 {
        // llama.cpp: the sliding layers of Gemma 3 use base 10000, unscaled.
        let local = g
            .optional(&key("rope.freq_base_swa"), GgufFile::f32)?
            .map_or(10_000.0, f64::from);
        rope.push(inv_freq(shape.head_dim, local, None)?);
    }
    let pattern = g
        .optional(&key("attention.sliding_window_pattern"), GgufFile::u32)?
        .map_or(version.default_pattern(), |p| p as usize);
    let window = g
        .optional(&key("attention.sliding_window"), GgufFile::u32)?
        .map(|w| w as usize);
    let softcap =
        |k: &str| -> Result<Option<f64>> { Ok(g.optional(&key(k), GgufFile::f32)?.map(f64::from)) };
    let (attn_softcap, final_softcap) = (
        softcap("attn_logit_softcapping")?,
        softcap("final_logit_softcapping")?,
    );
    // GGUF has no query_pre_attn_scalar: llama.cpp uses head_dim, except for the 27B models
    // (Gemma 2: 46 layers, Gemma 3: 62), whose scalar is hidden / heads.
    let query_scalar = match (version, shape.layers) {
        (Version::Gemma2, 46) | (Version::Gemma3, 62) => {
            (shape.hidden_size / shape.heads.max(1)) as f64
        }
        _ => shape.head_dim as f64,
    };
    let spec = gemma_spec(
        version,
        Shape {
            vocab_size: shape.vocab_size,
            hidden_size: shape.hidden_size,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            head_dim: shape.head_dim,
            eps: shape.eps,
            max_positions: shape.max_positions,
        },
        1.0 / query_scalar.sqrt(),
        attn_softcap,
        final_softcap,
        &sliding_layers(shape.layers, pattern),
        window,
        rope,
    );
    let pad_id = shape.pad_id;
    let mut w = GgufWeights {
        file: g,
        device: device.clone(),
    };
    Decoder::load(spec, &mut w, true, pad_id, format, "GGUF", device)
}

/// Load a Hugging Face Gemma folder. `config` is the parsed config.json; a Gemma 3
/// multimodal checkpoint's text model is read from its `text_config`.
pub fn from_hf(
    dir: &Path,
    version: Version,
    config: &serde_json::Value,
    device: &Device,
    format: WeightFormat,
) -> Result<Decoder> {
    let text = config.get("text_config").unwrap_or(config);
    let cfg: Config = serde_json::from_value(text.clone())
        .map_err(|e| Error::model_from(dir.join("config.json"), "not a Gemma config", e))?;
    let spec = cfg.spec(version)?;
    let mut w = SafetensorsWeights::open(dir, device, version != Version::Gemma1, 1.0)?;
    Decoder::load(
        spec,
        &mut w,
        true,
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
    fn sliding_patterns_match_transformers() {
        // Gemma 2: even layers slide; Gemma 3: five sliding then one global.
        assert_eq!(sliding_layers(4, 2), [true, false, true, false]);
        let g3 = sliding_layers(12, 6);
        assert_eq!(g3.iter().filter(|s| !**s).count(), 2);
        assert!(!g3[5] && !g3[11] && g3[0] && g3[6]);
        assert!(sliding_layers(3, 0).iter().all(|s| !s));
    }

    #[test]
    fn gemma3_config_new_and_old_rope_layouts_agree() {
        let old = r#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 6,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
            "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
            "rope_scaling": {"rope_type": "linear", "factor": 8.0},
            "sliding_window": 3, "query_pre_attn_scalar": 4}"#;
        let new = r#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 6,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
            "rope_parameters": {
              "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
              "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
            "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention",
              "sliding_attention", "sliding_attention", "full_attention"],
            "sliding_window": 3, "query_pre_attn_scalar": 4}"#;
        let old: Config = serde_json::from_str(old).unwrap();
        let new: Config = serde_json::from_str(new).unwrap();
        let (a, b) = (
            old.spec(Version::Gemma3).unwrap(),
            new.spec(Version::Gemma3).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a.layers[0].sliding_window, Some(3));
        assert_eq!(a.layers[0].rope, 1);
        assert_eq!(a.layers[5].sliding_window, None);
        assert_eq!(a.layers[5].rope, 0);
        assert!(a.qk_norm && a.sandwich_norms && a.attn_softcap.is_none());
    }
}
