//! NLLB-200 (the M2M100 encoder-decoder) for translation: the paper's multilingual approach
//! asks each country's questions in its language, translated by NLLB-200 3.3B.
//!
//! A port of Hugging Face transformers' `M2M100ForConditionalGeneration` and of its
//! `generate` (greedy and beam search as NLLB translation calls it, with the target language
//! forced as the first generated token). See `shared/design/nllb.md` for the facts a faithful
//! port must respect; `tests/nllb_parity.rs` checks it against the reference on a tiny random
//! model.

use crate::engine::hub::{self, CheckpointDir};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{LayerNorm, Module};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
            .map_err(|e| Error::bad_input(path, e.line(), format!("not an M2M100 config: {e}")))?;
        cfg.check().map_err(|msg| Error::bad_input(path, 0, msg))?;
        Ok(cfg)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if let Some(t) = &self.model_type {
            if t != "m2m_100" {
                return Err(format!("model_type {t:?} is not m2m_100 (NLLB-200)"));
            }
        }
        if !matches!(self.activation_function.as_str(), "relu" | "gelu") {
            return Err(format!(
                "unsupported activation_function {:?}",
                self.activation_function
            ));
        }
        for (what, dim, heads) in [
            ("encoder", self.d_model, self.encoder_attention_heads),
            ("decoder", self.d_model, self.decoder_attention_heads),
        ] {
            if heads == 0 || dim % heads != 0 {
                return Err(format!(
                    "d_model {dim} is not divisible by {what}_attention_heads {heads}"
                ));
            }
        }
        if !self.d_model.is_multiple_of(2) || self.d_model < 4 {
            return Err(format!("d_model {} must be even and >= 4", self.d_model));
        }
        Ok(())
    }
}

/// Linear layer over the last dimension; leading dimensions are flattened into one matmul so
/// that a decode step reads each weight matrix once, not once per row.
#[derive(Debug, Clone)]
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (last, lead) = dims.split_last().expect("linear input has a dimension");
        let rows: usize = lead.iter().product();
        let out_dim = self.weight.dim(0)?;
        let y = x
            .reshape((rows, *last))?
            .matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?;
        let mut out_shape = lead.to_vec();
        out_shape.push(out_dim);
        Ok(y.reshape(out_shape)?)
    }
}

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

    fn layer_norm(&self, name: &str, dim: usize) -> Result<LayerNorm> {
        Ok(LayerNorm::new(
            self.get(&format!("{name}.weight"), &[dim])?,
            self.get(&format!("{name}.bias"), &[dim])?,
            1e-5,
        ))
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(w: &Weights, name: &str, dim: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            q: w.linear(&format!("{name}.q_proj"), dim, dim)?,
            k: w.linear(&format!("{name}.k_proj"), dim, dim)?,
            v: w.linear(&format!("{name}.v_proj"), dim, dim)?,
            out: w.linear(&format!("{name}.out_proj"), dim, dim)?,
            heads,
            head_dim: dim / heads,
        })
    }

    /// (b, t, d) -> (b, heads, t, head_dim)
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split_heads(&self.k.forward(x)?)?,
            self.split_heads(&self.v.forward(x)?)?,
        ))
    }

    /// `x` (b, t, d) attends to `k`, `v` (b, heads, s, head_dim); `mask` is additive and
    /// broadcasts to (b, heads, t, s).
    fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        // The reference scales the queries before Q·Kᵀ.
        let q = (self.split_heads(&self.q.forward(x)?)? * (self.head_dim as f64).powf(-0.5))?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(m)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(v)?.transpose(1, 2)?.reshape((b, t, d))?;
        self.out.forward(&ctx)
    }
}

#[derive(Debug, Clone)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    gelu: bool,
}

impl FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(x)?;
        let h = if self.gelu { h.gelu_erf()? } else { h.relu()? };
        self.fc2.forward(&h)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: Attention,
    self_attn_norm: LayerNorm,
    ffn: FeedForward,
    final_norm: LayerNorm,
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_norm: LayerNorm,
    cross_attn: Attention,
    cross_attn_norm: LayerNorm,
    ffn: FeedForward,
    final_norm: LayerNorm,
}

/// Per-sequence decoder state: self-attention keys/values so far, and the cross-attention
/// keys/values of the encoder output, computed once per source.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    cross_kv: Vec<(Tensor, Tensor)>,
    /// Additive source padding mask, (b, 1, 1, source_len).
    source_mask: Tensor,
    /// Decoder tokens seen so far.
    pub len: usize,
}

impl DecoderCache {
    /// Keep (and reorder or repeat) the rows named by `rows`.
    pub fn select_rows(&self, rows: &[u32]) -> Result<Self> {
        let device = self.source_mask.device();
        let idx = Tensor::new(rows, device)?;
        let pick = |t: &Tensor| t.index_select(&idx, 0);
        Ok(Self {
            self_kv: self
                .self_kv
                .iter()
                .map(|kv| {
                    kv.as_ref()
                        .map(|(k, v)| Ok::<_, Error>((pick(k)?, pick(v)?)))
                        .transpose()
                })
                .collect::<Result<_>>()?,
            cross_kv: self
                .cross_kv
                .iter()
                .map(|(k, v)| Ok((pick(k)?, pick(v)?)))
                .collect::<Result<_>>()?,
            source_mask: pick(&self.source_mask)?,
            len: self.len,
        })
    }
}

/// The M2M100 encoder-decoder with its tied output projection.
#[derive(Debug, Clone)]
pub struct NllbModel {
    pub config: Config,
    /// The shared token embedding, (vocab, d_model); also the output projection.
    shared: Tensor,
    embed_scale: f64,
    /// Sinusoidal position table, (max_position_embeddings + 2, d_model); row `pad` is zero.
    positions: Tensor,
    encoder: Vec<EncoderLayer>,
    encoder_norm: LayerNorm,
    decoder: Vec<DecoderLayer>,
    decoder_norm: LayerNorm,
    device: Device,
}

/// Names under which checkpoints store the one shared embedding (nllb.md: any of them).
const EMBEDDING_NAMES: [&str; 4] = [
    "model.shared.weight",
    "model.encoder.embed_tokens.weight",
    "model.decoder.embed_tokens.weight",
    "lm_head.weight",
];

/// The sinusoidal table of fairseq / tensor2tensor: [sin | cos] halves, zero row at `pad`.
fn sinusoids(rows: usize, dim: usize, pad: usize, device: &Device) -> Result<Tensor> {
    let half = dim / 2;
    let step = (10000f32).ln() / (half as f32 - 1.0);
    let freqs: Vec<f32> = (0..half).map(|k| (k as f32 * -step).exp()).collect();
    let mut table = vec![0f32; rows * dim];
    for pos in 0..rows {
        if pos == pad {
            continue;
        }
        for (k, f) in freqs.iter().enumerate() {
            let angle = pos as f32 * f;
            table[pos * dim + k] = angle.sin();
            table[pos * dim + half + k] = angle.cos();
        }
    }
    Ok(Tensor::from_vec(table, (rows, dim), device)?)
}

/// Weight files of a checkpoint folder: the shards named by `model.safetensors.index.json`,
/// else every `*.safetensors` file.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(&index, e.line(), e.to_string()))?;
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
            .map_err(|e| Error::model(dir, format!("cannot read safetensors: {e}")))?;
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
                    self_attn: Attention::load(
                        &w,
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
                    self_attn: Attention::load(
                        &w,
                        &format!("{p}.self_attn"),
                        d,
                        config.decoder_attention_heads,
                    )?,
                    self_attn_norm: w.layer_norm(&format!("{p}.self_attn_layer_norm"), d)?,
                    cross_attn: Attention::load(
                        &w,
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

    fn from_parts(
        config: Config,
        shared: Tensor,
        encoder: Vec<EncoderLayer>,
        encoder_norm: LayerNorm,
        decoder: Vec<DecoderLayer>,
        decoder_norm: LayerNorm,
        device: &Device,
    ) -> Result<Self> {
        let positions = sinusoids(
            config.max_position_embeddings + 2,
            config.d_model,
            config.pad_token_id as usize,
            device,
        )?;
        let embed_scale = if config.scale_embedding {
            (config.d_model as f64).sqrt()
        } else {
            1.0
        };
        Ok(Self {
            config,
            shared,
            embed_scale,
            positions,
            encoder,
            encoder_norm,
            decoder,
            decoder_norm,
            device: device.clone(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.shared.dim(0).expect("embedding is 2-D")
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token embedding × scale plus sinusoidal positions. `position_ids` as in the reference:
    /// non-pad tokens count up from pad + 1 (+ tokens already cached); pads get the zero row.
    fn embed(&self, ids: &[Vec<u32>], cache_len: usize) -> Result<Tensor> {
        let pad = self.config.pad_token_id;
        let (b, t) = (ids.len(), ids[0].len());
        let mut flat_ids = Vec::with_capacity(b * t);
        let mut pos_ids = Vec::with_capacity(b * t);
        for row in ids {
            let mut seen = 0u32;
            for &id in row {
                flat_ids.push(id);
                if id == pad {
                    pos_ids.push(pad);
                } else {
                    seen += 1;
                    pos_ids.push(seen + cache_len as u32 + pad);
                }
            }
        }
        let max_pos = *pos_ids.iter().max().unwrap_or(&0) as usize;
        if max_pos >= self.positions.dim(0)? {
            return Err(Error::Usage(format!(
                "sequence of {} tokens exceeds the model's {} positions",
                t + cache_len,
                self.config.max_position_embeddings
            )));
        }
        if let Some(&bad) = flat_ids.iter().find(|&&i| i as usize >= self.vocab_size()) {
            return Err(Error::Usage(format!(
                "token id {bad} is outside the model's vocabulary of {}",
                self.vocab_size()
            )));
        }
        let ids_t = Tensor::from_vec(flat_ids, b * t, &self.device)?;
        let pos_t = Tensor::from_vec(pos_ids, b * t, &self.device)?;
        let tok = (self.shared.index_select(&ids_t, 0)? * self.embed_scale)?;
        let pos = self.positions.index_select(&pos_t, 0)?;
        Ok((tok + pos)?.reshape((b, t, self.config.d_model))?)
    }

    /// Additive source padding mask (b, 1, 1, s): 0 for tokens, -inf for pads.
    fn source_mask(&self, lens: &[usize], width: usize) -> Result<Tensor> {
        let mut m = Vec::with_capacity(lens.len() * width);
        for &l in lens {
            m.extend((0..width).map(|j| if j < l { 0f32 } else { f32::NEG_INFINITY }));
        }
        Ok(Tensor::from_vec(
            m,
            (lens.len(), 1, 1, width),
            &self.device,
        )?)
    }

    /// Encode right-padded source rows (each `[src_lang] tokens </s>`); returns the final
    /// hidden states (b, s, d) and the decoder cache with the cross-attention keys/values.
    pub fn encode(&self, rows: &[Vec<u32>]) -> Result<(Tensor, DecoderCache)> {
        if rows.is_empty() || rows.iter().any(|r| r.is_empty()) {
            return Err(Error::Usage("cannot encode an empty token sequence".into()));
        }
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let lens: Vec<usize> = rows.iter().map(Vec::len).collect();
        let padded: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| {
                let mut p = r.clone();
                p.resize(width, self.config.pad_token_id);
                p
            })
            .collect();
        let mask = self.source_mask(&lens, width)?;
        let mut x = self.embed(&padded, 0)?;
        for layer in &self.encoder {
            let h = layer.self_attn_norm.forward(&x)?;
            let (k, v) = layer.self_attn.keys_values(&h)?;
            x = (x + layer.self_attn.attend(&h, &k, &v, Some(&mask))?)?;
            let h = layer.final_norm.forward(&x)?;
            x = (x + layer.ffn.forward(&h)?)?;
        }
        let enc = self.encoder_norm.forward(&x)?;
        let cross_kv = self
            .decoder
            .iter()
            .map(|l| l.cross_attn.keys_values(&enc))
            .collect::<Result<_>>()?;
        let cache = DecoderCache {
            self_kv: vec![None; self.decoder.len()],
            cross_kv,
            source_mask: mask,
            len: 0,
        };
        Ok((enc, cache))
    }

    /// Run the decoder on `ids` (b rows of equal length t, appended to the cache), returning
    /// the final hidden states (b, t, d).
    fn decode_hidden(&self, ids: &[Vec<u32>], cache: &mut DecoderCache) -> Result<Tensor> {
        let t = ids[0].len();
        if ids.iter().any(|r| r.len() != t) || t == 0 {
            return Err(Error::Usage(
                "decoder rows must be non-empty and of equal length".into(),
            ));
        }
        let past = cache.len;
        let mut x = self.embed(ids, past)?;
        // Causal mask over (new tokens) × (cached + new); a single new token sees everything.
        let causal = if t > 1 {
            let m: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..past + t).map(move |j| {
                        if j <= past + i {
                            0.0
                        } else {
                            f32::NEG_INFINITY
                        }
                    })
                })
                .collect();
            Some(Tensor::from_vec(m, (1, 1, t, past + t), &self.device)?)
        } else {
            None
        };
        for (i, layer) in self.decoder.iter().enumerate() {
            let h = layer.self_attn_norm.forward(&x)?;
            let (k_new, v_new) = layer.self_attn.keys_values(&h)?;
            let (k, v) = match &cache.self_kv[i] {
                Some((k, v)) => (Tensor::cat(&[k, &k_new], 2)?, Tensor::cat(&[v, &v_new], 2)?),
                None => (k_new, v_new),
            };
            x = (x + layer.self_attn.attend(&h, &k, &v, causal.as_ref())?)?;
            cache.self_kv[i] = Some((k, v));
            let h = layer.cross_attn_norm.forward(&x)?;
            let (ck, cv) = &cache.cross_kv[i];
            x = (x + layer
                .cross_attn
                .attend(&h, ck, cv, Some(&cache.source_mask))?)?;
            let h = layer.final_norm.forward(&x)?;
            x = (x + layer.ffn.forward(&h)?)?;
        }
        cache.len += t;
        Ok(self.decoder_norm.forward(&x)?)
    }

    /// Logits (b, t, vocab) for every decoder position (teacher forcing).
    pub fn decode(&self, ids: &[Vec<u32>], cache: &mut DecoderCache) -> Result<Tensor> {
        let h = self.decode_hidden(ids, cache)?;
        self.logits(&h)
    }

    /// Logits (b, vocab) of the token after the last of `ids`.
    pub fn decode_last(&self, ids: &[Vec<u32>], cache: &mut DecoderCache) -> Result<Tensor> {
        let h = self.decode_hidden(ids, cache)?;
        let t = h.dim(1)?;
        self.logits(&h.narrow(1, t - 1, 1)?)?
            .squeeze(1)
            .map_err(Error::from)
    }

    fn logits(&self, h: &Tensor) -> Result<Tensor> {
        let (b, t, d) = h.dims3()?;
        Ok(h.reshape((b * t, d))?
            .matmul(&self.shared.t()?)?
            .reshape((b, t, self.vocab_size()))?)
    }

    /// Translate tokenized sources into the target language `tgt_lang` (a token id).
    /// Returns, per row, the generated ids after the decoder start token: the target language
    /// code, the translation and `</s>` (absent when the row reached the maximum length).
    pub fn generate(
        &self,
        sources: &[Vec<u32>],
        tgt_lang: u32,
        opts: &GenerateOptions,
    ) -> Result<Vec<Vec<u32>>> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        for s in sources {
            if s.len() > self.config.max_position_embeddings {
                return Err(Error::Usage(format!(
                    "a source of {} tokens exceeds the model's {} positions",
                    s.len(),
                    self.config.max_position_embeddings
                )));
            }
        }
        let longest = sources.iter().map(Vec::len).max().unwrap_or(0);
        let max_length = opts
            .max_length
            .resolve(longest)
            .min(self.config.max_position_embeddings);
        // The decoder prompt is [decoder start]; the target language is the first generated
        // token, forced (log-probability 0), as `forced_bos_token_id` does in the reference.
        // Both are fed in one pass.
        if max_length < 3 {
            return Err(Error::Usage(format!(
                "max length {max_length} leaves no room for a translation"
            )));
        }
        let (_, cache) = self.encode(sources)?;
        if opts.beams <= 1 {
            self.greedy(cache, sources.len(), tgt_lang, max_length)
        } else {
            self.beam_search(cache, sources.len(), tgt_lang, max_length, opts)
        }
    }

    /// Log-probabilities of one row of logits, in f32 like the reference's log_softmax.
    fn log_softmax(row: &[f32]) -> Vec<f32> {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        let lse = max + sum.ln();
        row.iter().map(|&v| v - lse).collect()
    }

    fn force_eos_if_last(&self, scores: &mut [f32], cur_len: usize, max_length: usize) {
        if let Some(eos) = self.config.forced_eos_token_id {
            if cur_len + 1 == max_length {
                for (i, s) in scores.iter_mut().enumerate() {
                    *s = if i as u32 == eos {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    };
                }
            }
        }
    }

    fn greedy(
        &self,
        mut cache: DecoderCache,
        n: usize,
        tgt_lang: u32,
        max_length: usize,
    ) -> Result<Vec<Vec<u32>>> {
        let eos = self.config.eos_token_id;
        let start = self.config.decoder_start_token_id;
        let mut out: Vec<Vec<u32>> = vec![vec![tgt_lang]; n];
        // Rows still generating, as indices into `out`; finished rows leave the batch.
        let mut live: Vec<usize> = (0..n).collect();
        let mut step_ids: Vec<Vec<u32>> = vec![vec![start, tgt_lang]; n];
        let mut cur_len = 2; // start token + language code
        while !live.is_empty() && cur_len < max_length {
            let logits = self.decode_last(&step_ids, &mut cache)?.to_vec2::<f32>()?;
            let mut keep = Vec::new();
            let mut next_live = Vec::new();
            for (r, row) in logits.into_iter().enumerate() {
                let mut scores = row;
                self.force_eos_if_last(&mut scores, cur_len, max_length);
                let tok = argmax(&scores);
                let o = live[r];
                out[o].push(tok);
                if tok != eos {
                    keep.push(r as u32);
                    next_live.push(o);
                }
            }
            cur_len += 1;
            if next_live.len() != live.len() && !next_live.is_empty() {
                cache = cache.select_rows(&keep)?;
            }
            step_ids = next_live
                .iter()
                .map(|&o| vec![*out[o].last().unwrap()])
                .collect();
            live = next_live;
        }
        Ok(out)
    }

    /// Beam search as the reference's `_beam_search` with `early_stopping=False`: at each
    /// step the top 2·beams continuations; those ending in `</s>` among the top `beams` become
    /// hypotheses scored by sum(log p) / generated_len^length_penalty; a source is done when
    /// its best running beam cannot beat its worst kept hypothesis.
    fn beam_search(
        &self,
        cache: DecoderCache,
        n: usize,
        tgt_lang: u32,
        max_length: usize,
        opts: &GenerateOptions,
    ) -> Result<Vec<Vec<u32>>> {
        const NEG: f32 = -1.0e9;
        let beams = opts.beams;
        let k_keep = 2 * beams;
        let eos = self.config.eos_token_id;
        let start = self.config.decoder_start_token_id;
        let prompt_len = 1usize;
        let lp = opts.length_penalty;
        let vocab = self.vocab_size();
        if vocab < k_keep {
            return Err(Error::Usage(format!(
                "{beams} beams need a vocabulary of at least {k_keep} tokens"
            )));
        }

        struct Item {
            /// Running beams: generated ids (after the start token) and accumulated log-prob.
            running: Vec<(Vec<u32>, f32)>,
            /// Kept hypotheses: ids, score, finished flag (placeholders start at NEG).
            finished: Vec<(Vec<u32>, f32, bool)>,
            improvable: bool,
        }
        let mut items: Vec<Item> = (0..n)
            .map(|_| Item {
                running: (0..beams)
                    .map(|b| (vec![tgt_lang], if b == 0 { 0.0 } else { NEG }))
                    .collect(),
                finished: (0..beams).map(|_| (Vec::new(), NEG, false)).collect(),
                improvable: true,
            })
            .collect();

        // Every beam of a source starts from the same prefix: run it once per source, then
        // repeat the cache rows.
        let mut cache = cache;
        let prefix: Vec<Vec<u32>> = vec![vec![start, tgt_lang]; n];
        let first = self.decode_last(&prefix, &mut cache)?.to_vec2::<f32>()?;
        let repeat: Vec<u32> = (0..n as u32)
            .flat_map(|i| std::iter::repeat_n(i, beams))
            .collect();
        cache = cache.select_rows(&repeat)?;
        let mut logits: Vec<Vec<f32>> = repeat.iter().map(|&i| first[i as usize].clone()).collect();
        let mut live: Vec<usize> = (0..n).collect();
        let mut cur_len = 2usize;

        loop {
            // Rows of `logits` are live items × beams, in `live` order.
            let mut next_rows: Vec<u32> = Vec::new();
            let mut next_tokens: Vec<Vec<u32>> = Vec::new();
            let mut still_live = Vec::new();
            let mut all_hit = true;
            for (li, &it) in live.iter().enumerate() {
                let item = &mut items[it];
                // Accumulated scores over beams × vocab.
                let mut cand: Vec<(f32, usize, u32)> = Vec::with_capacity(beams * vocab);
                for b in 0..beams {
                    let mut lps = Self::log_softmax(&logits[li * beams + b]);
                    self.force_eos_if_last(&mut lps, cur_len, max_length);
                    let base = item.running[b].1;
                    cand.extend(
                        lps.iter()
                            .enumerate()
                            .map(|(v, &l)| (l + base, b, v as u32)),
                    );
                }
                let top = top_k(cand, k_keep);
                let hits: Vec<bool> = top
                    .iter()
                    .map(|&(_, _, tok)| tok == eos || cur_len + 1 >= max_length)
                    .collect();
                all_hit &= hits.iter().all(|&h| h);
                // Next running beams: the best non-finished continuations.
                let run_scores: Vec<(f32, usize)> = top
                    .iter()
                    .zip(&hits)
                    .enumerate()
                    .map(|(k, (&(s, _, _), &h))| (s + if h { NEG } else { 0.0 }, k))
                    .collect();
                let chosen = top_k_indexed(run_scores, beams);
                let new_running: Vec<(Vec<u32>, f32)> = chosen
                    .iter()
                    .map(|&(s, k)| {
                        let (_, b, tok) = top[k];
                        let mut ids = item.running[b].0.clone();
                        ids.push(tok);
                        (ids, s)
                    })
                    .collect();
                // Finished hypotheses: merge the newly finished among the top `beams`.
                let gen_len = (cur_len + 1 - prompt_len) as f32;
                let mut merged = item.finished.clone();
                for (k, &(s, b, tok)) in top.iter().enumerate() {
                    let just_finished = hits[k] && k < beams;
                    let mut score = s / gen_len.powf(lp);
                    if !item.improvable {
                        score += NEG;
                    }
                    if !just_finished {
                        score += NEG;
                    }
                    let mut ids = item.running[b].0.clone();
                    ids.push(tok);
                    merged.push((ids, score, just_finished));
                }
                let order = top_k_indexed(
                    merged.iter().enumerate().map(|(i, m)| (m.1, i)).collect(),
                    beams,
                );
                item.finished = order.iter().map(|&(_, i)| merged[i].clone()).collect();
                // Which old beam each new running beam continues, for the cache.
                for &(_, k) in &chosen {
                    next_rows.push((li * beams + top[k].1) as u32);
                    next_tokens.push(vec![top[k].2]);
                }
                item.running = new_running;
                // Early-stop heuristic (early_stopping=False): can the best running beam,
                // at the current length, still beat the worst kept hypothesis?
                let next_len = cur_len + 1;
                let best = item.running[0].1 / ((next_len - prompt_len) as f32).powf(lp);
                let worst = item
                    .finished
                    .iter()
                    .map(|f| f.1)
                    .fold(f32::INFINITY, f32::min);
                let improvable_now = item
                    .finished
                    .iter()
                    .any(|f| best > if f.2 { worst } else { NEG });
                item.improvable &= improvable_now;
                still_live.push((li, it));
            }
            cur_len += 1;
            // Items that cannot improve are final; the rest continue.
            let mut keep_rows = Vec::new();
            let mut keep_tokens = Vec::new();
            let mut new_live = Vec::new();
            for (li, it) in still_live {
                if items[it].improvable {
                    new_live.push(it);
                    keep_rows.extend_from_slice(&next_rows[li * beams..(li + 1) * beams]);
                    keep_tokens.extend_from_slice(&next_tokens[li * beams..(li + 1) * beams]);
                }
            }
            if all_hit || new_live.is_empty() || cur_len >= max_length {
                break;
            }
            cache = cache.select_rows(&keep_rows)?;
            logits = self
                .decode_last(&keep_tokens, &mut cache)?
                .to_vec2::<f32>()?;
            live = new_live;
        }
        Ok(items
            .into_iter()
            .map(|it| {
                it.finished
                    .into_iter()
                    .next()
                    .map(|f| f.0)
                    .unwrap_or_default()
            })
            .collect())
    }
}

/// Index of the largest value; the first on ties (like torch.argmax).
fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// The k best candidates by score, best first; earlier candidates first on ties.
fn top_k(mut cand: Vec<(f32, usize, u32)>, k: usize) -> Vec<(f32, usize, u32)> {
    let cmp = |a: &(f32, usize, u32), b: &(f32, usize, u32)| {
        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
    };
    if cand.len() > k {
        cand.select_nth_unstable_by(k - 1, cmp);
        cand.truncate(k);
    }
    cand.sort_by(cmp);
    cand
}

fn top_k_indexed(mut v: Vec<(f32, usize)>, k: usize) -> Vec<(f32, usize)> {
    v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    v.truncate(k);
    v
}

/// How long a translation may get, counting the decoder start and language tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxLength {
    /// Exactly this many decoder tokens at most (the reference's `max_length`).
    Fixed(usize),
    /// min(200, 1.5 × the longest source + 10): long enough for any real translation, short
    /// enough that a degenerate repeat stops soon.
    Auto,
}

impl MaxLength {
    pub const DEFAULT_CAP: usize = 200;

    pub fn resolve(self, longest_source: usize) -> usize {
        match self {
            MaxLength::Fixed(n) => n,
            MaxLength::Auto => {
                Self::DEFAULT_CAP.min((longest_source as f64 * 1.5).ceil() as usize + 10)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// 1 = greedy.
    pub beams: usize,
    pub max_length: MaxLength,
    pub length_penalty: f32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            beams: 4,
            max_length: MaxLength::Auto,
            length_penalty: 1.0,
        }
    }
}

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
            .map_err(|e| Error::model(path, format!("cannot read tokenizer: {e}")))?;
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
            Error::Usage(format!(
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
            return Err(Error::Usage("cannot translate an empty text".into()));
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
                    .map_err(|e| Error::Usage(format!("{e} (text: {:?})", preview(t))))?;
                if ids.len() > max {
                    return Err(Error::Usage(format!(
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

/// A model with random weights of the given config, for shape checks and benchmarks.
pub fn random_model(config: Config, device: &Device, seed: u64) -> Result<NllbModel> {
    config
        .check()
        .map_err(|msg| Error::Usage(format!("bad config: {msg}")))?;
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

    #[test]
    fn max_length_auto_is_capped() {
        assert_eq!(MaxLength::Auto.resolve(10), 25);
        assert_eq!(MaxLength::Auto.resolve(500), 200);
        assert_eq!(MaxLength::Fixed(7).resolve(500), 7);
    }

    #[test]
    fn sinusoid_layout_is_sin_then_cos_with_a_zero_pad_row() {
        let t = sinusoids(5, 8, 1, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!(t[1].iter().all(|&v| v == 0.0));
        // position 2, frequency 0: sin(2), cos(2)
        assert!((t[2][0] - 2f32.sin()).abs() < 1e-6);
        assert!((t[2][4] - 2f32.cos()).abs() < 1e-6);
        // last frequency is 1/10000
        assert!((t[3][3] - (3.0f32 / 10000.0).sin()).abs() < 1e-6);
    }

    #[test]
    fn top_k_prefers_earlier_on_ties() {
        let c = vec![(1.0, 1, 5), (2.0, 0, 3), (1.0, 0, 9), (0.5, 0, 1)];
        let t = top_k(c, 3);
        assert_eq!(t, vec![(2.0, 0, 3), (1.0, 0, 9), (1.0, 1, 5)]);
    }
}
