//! Loading an NLLB checkpoint's weights: its safetensors files (sharded or not), the tensors
//! by name with their shapes checked, and random weights of a config for benchmarks.

use super::config::Config;
use super::model::{Attention, DecoderLayer, EncoderLayer, FeedForward, Linear, NllbModel};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::LayerNorm;
use std::path::{Path, PathBuf};

/// Reads named tensors from the checkpoint's safetensors files, checking shapes.
struct Weights {
    st: candle_core::safetensors::MmapedSafetensors,
    dir: PathBuf,
    device: Device,
    prefix: String,
}

impl Weights {
    fn has(&self, name: &str) -> bool {
        self.st.get(name).is_ok()
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self.st.load(&full, &self.device).map_err(|_| {
            Error::model(
                &self.dir,
                format!("tensor {full} is missing from the weights"),
            )
        })?;
        if t.dims() != shape {
            return Err(Error::model(
                &self.dir,
                format!("tensor {full} has shape {:?}, expected {shape:?}", t.dims()),
            ));
        }
        Ok(t.to_dtype(DType::F32)?)
    }

    fn linear(&self, name: &str, out_dim: usize, in_dim: usize) -> Result<Linear> {
        Ok(Linear {
            weight: self.get(&format!("{name}.weight"), &[out_dim, in_dim])?,
            bias: self.get(&format!("{name}.bias"), &[out_dim])?,
        })
    }

    fn attention(&self, name: &str, dim: usize, heads: usize) -> Result<Attention> {
        Ok(Attention {
            q: self.linear(&format!("{name}.q_proj"), dim, dim)?,
            k: self.linear(&format!("{name}.k_proj"), dim, dim)?,
            v: self.linear(&format!("{name}.v_proj"), dim, dim)?,
            out: self.linear(&format!("{name}.out_proj"), dim, dim)?,
            heads,
            head_dim: dim / heads,
        })
    }

    fn layer_norm(&self, name: &str, dim: usize) -> Result<LayerNorm> {
        Ok(LayerNorm::new(
            self.get(&format!("{name}.weight"), &[dim])?,
            self.get(&format!("{name}.bias"), &[dim])?,
            1e-5,
        ))
    }
}

/// Names under which checkpoints store the one shared embedding (nllb.md: any of them).
const EMBEDDING_NAMES: [&str; 4] = [
    "model.shared.weight",
    "model.encoder.embed_tokens.weight",
    "model.decoder.embed_tokens.weight",
    "lm_head.weight",
];

/// Weight files of a checkpoint folder: the shards named by `model.safetensors.index.json`,
/// else every `*.safetensors` file.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input_from(&index, e.line(), "not a JSON file", e))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::bad_input(&index, 0, "no weight_map object"))?;
        let mut files: Vec<PathBuf> = map
            .values()
            .filter_map(|f| f.as_str())
            .map(|f| dir.join(f))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        let hint = if dir.join("pytorch_model.bin").exists() {
            " (only pytorch_model.bin: some hub snapshots keep safetensors on another branch, \
             e.g. refs/pr/…; or convert with transformers' save_pretrained(safe_serialization=True))"
        } else {
            ""
        };
        return Err(Error::model(dir, format!("no *.safetensors weights{hint}")));
    }
    Ok(files)
}

impl NllbModel {
    /// Load the weights of the checkpoint folder `dir` (config.json + safetensors) in f32.
    pub fn load(dir: &Path, config: Config, device: &Device) -> Result<Self> {
        let files = weight_files(dir)?;
        for f in &files {
            if !f.is_file() {
                return Err(Error::model(f, "weight shard is missing"));
            }
        }
        // SAFETY: the files are memory-mapped read-only; candle's loader requires `unsafe`
        // because another process could modify them while mapped.
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files) }
            .map_err(|e| Error::model_from(dir, "cannot read safetensors", e))?;
        let mut w = Weights {
            st,
            dir: dir.to_path_buf(),
            device: device.clone(),
            prefix: String::new(),
        };
        let emb_name = EMBEDDING_NAMES.iter().find(|n| w.has(n)).ok_or_else(|| {
            Error::model(
                dir,
                format!(
                    "no token embedding (looked for {})",
                    EMBEDDING_NAMES.join(", ")
                ),
            )
        })?;
        let view = w.st.get(emb_name)?;
        let shape = view.shape().to_vec();
        let d = config.d_model;
        if shape.len() != 2 || shape[1] != d {
            return Err(Error::model(
                dir,
                format!("{emb_name} has shape {shape:?}, expected (vocab, {d})"),
            ));
        }
        // The embedding's rows, not the config's or tokenizer's vocab size, set the logits' width.
        let shared = w.get(emb_name, &shape)?;
        // Checkpoints saved from the bare M2M100Model have no "model." prefix.
        if !w.has("model.encoder.layer_norm.weight") && w.has("encoder.layer_norm.weight") {
            w.prefix = String::new();
        } else {
            w.prefix = "model.".into();
        }
        let gelu = config.activation_function == "gelu";
        let ffn = |name: &str, dim: usize| -> Result<FeedForward> {
            Ok(FeedForward {
                fc1: w.linear(&format!("{name}.fc1"), dim, d)?,
                fc2: w.linear(&format!("{name}.fc2"), d, dim)?,
                gelu,
            })
        };
        let encoder = (0..config.encoder_layers)
            .map(|i| {
                let p = format!("encoder.layers.{i}");
                Ok(EncoderLayer {
                    self_attn: w.attention(
                        &format!("{p}.self_attn"),
                        d,
                        config.encoder_attention_heads,
                    )?,
                    self_attn_norm: w.layer_norm(&format!("{p}.self_attn_layer_norm"), d)?,
                    ffn: ffn(&p, config.encoder_ffn_dim)?,
                    final_norm: w.layer_norm(&format!("{p}.final_layer_norm"), d)?,
                })
            })
            .collect::<Result<_>>()?;
        let decoder = (0..config.decoder_layers)
            .map(|i| {
                let p = format!("decoder.layers.{i}");
                Ok(DecoderLayer {
                    self_attn: w.attention(
                        &format!("{p}.self_attn"),
                        d,
                        config.decoder_attention_heads,
                    )?,
                    self_attn_norm: w.layer_norm(&format!("{p}.self_attn_layer_norm"), d)?,
                    cross_attn: w.attention(
                        &format!("{p}.encoder_attn"),
                        d,
                        config.decoder_attention_heads,
                    )?,
                    cross_attn_norm: w.layer_norm(&format!("{p}.encoder_attn_layer_norm"), d)?,
                    ffn: ffn(&p, config.decoder_ffn_dim)?,
                    final_norm: w.layer_norm(&format!("{p}.final_layer_norm"), d)?,
                })
            })
            .collect::<Result<_>>()?;
        let encoder_norm = w.layer_norm("encoder.layer_norm", d)?;
        let decoder_norm = w.layer_norm("decoder.layer_norm", d)?;
        Self::from_parts(
            config,
            shared,
            encoder,
            encoder_norm,
            decoder,
            decoder_norm,
            device,
        )
    }
}

/// A model with random weights of the given config, for shape checks and benchmarks.
pub fn random_model(config: Config, device: &Device, seed: u64) -> Result<NllbModel> {
    config.check()?;
    let d = config.d_model;
    // A small seeded generator (splitmix64), uniform with std 0.02: the same weights on every
    // run and device, without an RNG dependency, and fast enough for full-width shapes.
    let state = std::cell::Cell::new(seed);
    let half_width = 0.02 * 3f32.sqrt();
    let randn = |shape: &[usize]| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let mut z = state.get();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut x = z;
                x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                let u = ((x ^ (x >> 31)) >> 40) as f32 / (1u32 << 24) as f32;
                (2.0 * u - 1.0) * half_width
            })
            .collect();
        state.set(z);
        Ok(Tensor::from_vec(v, shape, device)?)
    };
    let linear = |o: usize, i: usize| -> Result<Linear> {
        Ok(Linear {
            weight: randn(&[o, i])?,
            bias: Tensor::zeros(o, DType::F32, device)?,
        })
    };
    let norm = || -> Result<LayerNorm> {
        Ok(LayerNorm::new(
            Tensor::ones(d, DType::F32, device)?,
            Tensor::zeros(d, DType::F32, device)?,
            1e-5,
        ))
    };
    let attention = |heads: usize| -> Result<Attention> {
        Ok(Attention {
            q: linear(d, d)?,
            k: linear(d, d)?,
            v: linear(d, d)?,
            out: linear(d, d)?,
            heads,
            head_dim: d / heads,
        })
    };
    let gelu = config.activation_function == "gelu";
    let ffn = |dim: usize| -> Result<FeedForward> {
        Ok(FeedForward {
            fc1: linear(dim, d)?,
            fc2: linear(d, dim)?,
            gelu,
        })
    };
    let encoder = (0..config.encoder_layers)
        .map(|_| {
            Ok(EncoderLayer {
                self_attn: attention(config.encoder_attention_heads)?,
                self_attn_norm: norm()?,
                ffn: ffn(config.encoder_ffn_dim)?,
                final_norm: norm()?,
            })
        })
        .collect::<Result<_>>()?;
    let decoder = (0..config.decoder_layers)
        .map(|_| {
            Ok(DecoderLayer {
                self_attn: attention(config.decoder_attention_heads)?,
                self_attn_norm: norm()?,
                cross_attn: attention(config.decoder_attention_heads)?,
                cross_attn_norm: norm()?,
                ffn: ffn(config.decoder_ffn_dim)?,
                final_norm: norm()?,
            })
        })
        .collect::<Result<_>>()?;
    let shared = randn(&[config.vocab_size, d])?;
    NllbModel::from_parts(config, shared, encoder, norm()?, decoder, norm()?, device)
}
