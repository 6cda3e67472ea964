//! Where a decoder's tensors come from: a GGUF file or a Hugging Face folder of safetensors.
//! The decoder asks for tensors by role; each source knows its own names for them.

use super::matrix::{Embedding, Matrix};
use super::WeightFormat;
use crate::engine::gguf::GgufFile;
use crate::{Error, Result};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A tensor of one decoder layer, by what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerWeight {
    AttnNorm,
    Q,
    K,
    V,
    O,
    QNorm,
    KNorm,
    /// Gemma 2/3: norm of the attention output before the residual add.
    PostAttnNorm,
    /// The norm in front of the MLP.
    FfnNorm,
    /// Gemma 2/3: norm of the MLP output before the residual add.
    PostFfnNorm,
    Gate,
    Up,
    Down,
}

impl LayerWeight {
    fn is_norm(self) -> bool {
        use LayerWeight::*;
        matches!(
            self,
            AttnNorm | QNorm | KNorm | PostAttnNorm | FfnNorm | PostFfnNorm
        )
    }
}

/// A decoder tensor, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightName {
    Embed,
    Output,
    OutputNorm,
    Layer(usize, LayerWeight),
}

impl WeightName {
    fn is_norm(self) -> bool {
        match self {
            WeightName::OutputNorm => true,
            WeightName::Layer(_, w) => w.is_norm(),
            _ => false,
        }
    }

    /// llama.cpp's tensor name (llama, gemma, gemma2, gemma3 architectures).
    pub fn gguf(self) -> String {
        use LayerWeight::*;
        match self {
            WeightName::Embed => "token_embd.weight".into(),
            WeightName::Output => "output.weight".into(),
            WeightName::OutputNorm => "output_norm.weight".into(),
            WeightName::Layer(i, w) => {
                let t = match w {
                    AttnNorm => "attn_norm",
                    Q => "attn_q",
                    K => "attn_k",
                    V => "attn_v",
                    O => "attn_output",
                    QNorm => "attn_q_norm",
                    KNorm => "attn_k_norm",
                    PostAttnNorm => "post_attention_norm",
                    FfnNorm => "ffn_norm",
                    PostFfnNorm => "post_ffw_norm",
                    Gate => "ffn_gate",
                    Up => "ffn_up",
                    Down => "ffn_down",
                };
                format!("blk.{i}.{t}.weight")
            }
        }
    }

    /// The Hugging Face name below the model prefix. `sandwich`: Gemma 2/3 naming, where
    /// `post_attention_layernorm` normalises the attention output and the MLP's input norm is
    /// `pre_feedforward_layernorm` (in Llama and Gemma 1 `post_attention_layernorm` is that one).
    fn hf(self, sandwich: bool) -> String {
        use LayerWeight::*;
        match self {
            WeightName::Embed => "embed_tokens.weight".into(),
            WeightName::Output => "lm_head.weight".into(),
            WeightName::OutputNorm => "norm.weight".into(),
            WeightName::Layer(i, w) => {
                let t = match w {
                    AttnNorm => "input_layernorm",
                    Q => "self_attn.q_proj",
                    K => "self_attn.k_proj",
                    V => "self_attn.v_proj",
                    O => "self_attn.o_proj",
                    QNorm => "self_attn.q_norm",
                    KNorm => "self_attn.k_norm",
                    PostAttnNorm => "post_attention_layernorm",
                    FfnNorm if sandwich => "pre_feedforward_layernorm",
                    FfnNorm => "post_attention_layernorm",
                    PostFfnNorm => "post_feedforward_layernorm",
                    Gate => "mlp.gate_proj",
                    Up => "mlp.up_proj",
                    Down => "mlp.down_proj",
                };
                format!("layers.{i}.{t}.weight")
            }
        }
    }
}

/// A source of decoder tensors.
pub trait WeightSource {
    /// The file or folder, for error messages.
    fn path(&self) -> &Path;
    fn has(&self, name: WeightName) -> bool;
    /// The tensor in f32 (dequantized, converted from bf16/f16).
    fn tensor(&mut self, name: WeightName) -> Result<Tensor>;
    /// The tensor in its stored form: GGUF blocks, or bf16/f16/f32 as in the safetensors.
    fn stored(&mut self, name: WeightName) -> Result<QTensor>;
    /// A weight matrix for `x @ w.T`, in the form `format` asks for.
    fn linear(&mut self, name: WeightName, format: WeightFormat) -> Result<Matrix> {
        Ok(match format {
            // The decoder converts to bf16 after this (one matrix's f32 copy at a time).
            WeightFormat::F32 | WeightFormat::Bf16 => Matrix::Dense(self.tensor(name)?),
            WeightFormat::Quantized => Matrix::Stored(Arc::new(self.stored(name)?)),
            WeightFormat::FastQuantized => Matrix::Fast(QMatMul::from_qtensor(self.stored(name)?)?),
        })
    }
    /// The token embedding table: stored where the format keeps matrices stored (its rows
    /// are dequantized exactly when looked up), else f32.
    fn embedding(&mut self, format: WeightFormat) -> Result<Embedding> {
        Ok(match format.keeps_stored() {
            true => Embedding::Stored(Arc::new(self.stored(WeightName::Embed)?)),
            false => Embedding::Dense(self.tensor(WeightName::Embed)?),
        })
    }
}

/// GGUF tensors. llama.cpp's converter already stores Gemma norm weights as (1 + w).
pub struct GgufWeights<'a> {
    pub file: &'a mut GgufFile,
    pub device: Device,
}

impl WeightSource for GgufWeights<'_> {
    fn path(&self) -> &Path {
        &self.file.path
    }

    fn has(&self, name: WeightName) -> bool {
        self.file.has_tensor(&name.gguf())
    }

    fn tensor(&mut self, name: WeightName) -> Result<Tensor> {
        Ok(self
            .file
            .tensor(&name.gguf(), &self.device)?
            .dequantize(&self.device)?)
    }

    fn stored(&mut self, name: WeightName) -> Result<QTensor> {
        self.file.tensor(&name.gguf(), &self.device)
    }
}

/// The `*.safetensors` of a Hugging Face folder, memory-mapped, every tensor read as f32.
pub struct SafetensorsWeights {
    dir: PathBuf,
    device: Device,
    vb: VarBuilder<'static>,
    /// The same files, for tensors in their stored dtype.
    st: candle_core::safetensors::MmapedSafetensors,
    /// "model." for causal-LM checkpoints, "language_model.model." (or
    /// "model.language_model.") for Gemma 3 multimodal ones.
    prefix: String,
    /// Where the output head is when untied ("lm_head.weight" or under the language model).
    head_prefix: String,
    sandwich: bool,
    /// Added to every norm weight: Hugging Face Gemma stores w and computes x * (1 + w).
    norm_shift: f64,
}

impl SafetensorsWeights {
    /// Open the folder's `model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`.
    pub fn open(dir: &Path, device: &Device, sandwich: bool, norm_shift: f64) -> Result<Self> {
        let files = safetensors_files(dir)?;
        // SAFETY: the files are memory-mapped read-only; like every mmap user we rely on
        // nobody truncating them while the model is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, device) }
            .map_err(|e| Error::model_from(dir, "cannot read the safetensors", e))?;
        // SAFETY: as above.
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files) }
            .map_err(|e| Error::model_from(dir, "cannot read the safetensors", e))?;
        let (prefix, head_prefix) = [
            ("model.", ""),
            ("language_model.model.", "language_model."),
            ("model.language_model.", ""),
        ]
        .into_iter()
        .find(|(p, _)| vb.contains_tensor(&format!("{p}embed_tokens.weight")))
        .ok_or_else(|| {
            Error::model(
                dir,
                "no embed_tokens.weight under model., language_model.model. or model.language_model.",
            )
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            device: device.clone(),
            vb,
            st,
            prefix: prefix.into(),
            head_prefix: head_prefix.into(),
            sandwich,
            norm_shift,
        })
    }

    fn name(&self, name: WeightName) -> String {
        match name {
            WeightName::Output => format!("{}{}", self.head_prefix, name.hf(self.sandwich)),
            _ => format!("{}{}", self.prefix, name.hf(self.sandwich)),
        }
    }
}

impl WeightSource for SafetensorsWeights {
    fn path(&self) -> &Path {
        &self.dir
    }

    fn has(&self, name: WeightName) -> bool {
        self.vb.contains_tensor(&self.name(name))
    }

    fn tensor(&mut self, name: WeightName) -> Result<Tensor> {
        let full = self.name(name);
        if !self.vb.contains_tensor(&full) {
            return Err(Error::model(&self.dir, format!("missing tensor {full}")));
        }
        let t = self
            .vb
            .get_unchecked(&full)
            .map_err(|e| Error::model_from(&self.dir, format!("tensor {full}"), e))?;
        if name.is_norm() && self.norm_shift != 0.0 {
            return Ok((t + self.norm_shift)?);
        }
        Ok(t)
    }

    fn stored(&mut self, name: WeightName) -> Result<QTensor> {
        let full = self.name(name);
        let t = self
            .st
            .load(&full, &Device::Cpu)
            .map_err(|e| Error::model_from(&self.dir, format!("tensor {full}"), e))?;
        let dtype = match t.dtype() {
            DType::BF16 => GgmlDType::BF16,
            DType::F16 => GgmlDType::F16,
            DType::F32 => GgmlDType::F32,
            other => {
                return Err(Error::model(
                    &self.dir,
                    format!("tensor {full} is {other:?}; hofbench reads bf16, f16 and f32"),
                ))
            }
        };
        // Through f32 and back: exact for values that were bf16/f16 to begin with.
        Ok(QTensor::quantize_onto(
            &t.to_dtype(DType::F32)?,
            dtype,
            &self.device,
        )?)
    }

    fn linear(&mut self, name: WeightName, format: WeightFormat) -> Result<Matrix> {
        Ok(match format {
            WeightFormat::F32 | WeightFormat::Bf16 => Matrix::Dense(self.tensor(name)?),
            WeightFormat::Quantized => Matrix::Stored(Arc::new(self.stored(name)?)),
            // candle's fast kernels need blocks: Q8_0, the least lossy.
            WeightFormat::FastQuantized => Matrix::Fast(QMatMul::from_qtensor(QTensor::quantize(
                &self.tensor(name)?,
                GgmlDType::Q8_0,
            )?)?),
        })
    }
}

/// The safetensors files of a Hugging Face folder, in shard order.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input_from(&index, e.line(), "not a JSON file", e))?;
        let map = v["weight_map"]
            .as_object()
            .ok_or_else(|| Error::bad_input(&index, 0, "no weight_map object"))?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(String::from))
            .collect();
        files.sort();
        files.dedup();
        let mut paths = Vec::with_capacity(files.len());
        for f in files {
            // A shard name is a file name in the folder, never a path out of it.
            if f.contains(['/', '\\']) || f.starts_with('.') {
                return Err(Error::bad_input(
                    &index,
                    0,
                    format!("shard {f:?} is not a file name"),
                ));
            }
            let p = dir.join(&f);
            if !p.is_file() {
                return Err(Error::model(
                    &p,
                    "shard listed in model.safetensors.index.json is missing",
                ));
            }
            paths.push(p);
        }
        return Ok(paths);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(Error::model(
        dir,
        "no model.safetensors or model.safetensors.index.json in the folder",
    ))
}
