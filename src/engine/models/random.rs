//! Randomly initialised Llama decoders of a given shape, for benchmarks only (the hidden
//! `hofbench bench-prefill` and `hofbench run --random-weights`): throughput on a
//! Llama-3-8B-shaped model needs the shape, not the weights, and weights drawn on the device
//! cost no download, disk or host-to-device copy.

use super::decoder::Decoder;
use super::llama::Config;
use super::matrix::Matrix;
use super::weights::{LayerWeight, WeightName, WeightSource};
use super::WeightFormat;
use crate::{Error, Result};
use candle_core::quantized::QTensor;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

/// Llama 3.1 8B's config.json (meta-llama/Llama-3.1-8B).
pub const LLAMA3_8B: &str = r#"{
  "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
  "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
  "head_dim": 128, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
  "max_position_embeddings": 131072, "tie_word_embeddings": false
}"#;

/// HF's `initializer_range` for Llama: every matrix and the embedding ~ N(0, 0.02²).
const INIT_STD: f32 = 0.02;

/// `llama3-8b`, or the path of a Llama config.json. Returns the config and a short name.
pub fn config(shape: &str) -> Result<(Config, String)> {
    if shape == "llama3-8b" {
        let cfg = serde_json::from_str(LLAMA3_8B).expect("the built-in config parses");
        return Ok((cfg, shape.to_string()));
    }
    let path = Path::new(shape);
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Usage(format!(
            "--random-weights {shape}: neither llama3-8b nor a config.json file"
        )),
        _ => Error::io(path, e),
    })?;
    let cfg = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input_from(path, e.line(), "not a Llama config", e))?;
    let name = path
        .file_stem()
        .map_or("config".into(), |s| s.to_string_lossy().into_owned());
    Ok((cfg, name))
}

/// A Llama decoder of `cfg`'s shape with weights drawn from `seed` on `device`.
pub fn load(cfg: &Config, device: &Device, format: WeightFormat, seed: u64) -> Result<Decoder> {
    if format.keeps_stored() {
        return Err(Error::Usage(
            "random weights are dense: use --weights f32 or bf16".into(),
        ));
    }
    let spec = cfg.spec()?;
    let mut w = RandomWeights {
        cfg: cfg.clone(),
        head_dim: spec.head_dim,
        dtype: format.compute_dtype(device),
        device: device.clone(),
        path: PathBuf::from("<random weights>"),
        host_rng: seed,
    };
    if device.is_cuda() {
        device.set_seed(seed)?;
    }
    let tied = cfg.tie_word_embeddings;
    Decoder::load(spec, &mut w, tied, 0, format, "random", device)
}

struct RandomWeights {
    cfg: Config,
    head_dim: usize,
    dtype: DType,
    device: Device,
    path: PathBuf,
    /// SplitMix64 state for the CPU, whose candle RNG cannot be seeded.
    host_rng: u64,
}

impl RandomWeights {
    fn shape(&self, name: WeightName) -> Vec<usize> {
        use LayerWeight::*;
        let c = &self.cfg;
        let (d, hd) = (c.hidden_size, self.head_dim);
        let q = c.num_attention_heads * hd;
        let kv = c.num_key_value_heads.unwrap_or(c.num_attention_heads) * hd;
        match name {
            WeightName::Embed | WeightName::Output => vec![c.vocab_size, d],
            WeightName::OutputNorm => vec![d],
            WeightName::Layer(_, w) => match w {
                AttnNorm | FfnNorm | PostAttnNorm | PostFfnNorm => vec![d],
                QNorm | KNorm => vec![hd],
                Q => vec![q, d],
                K | V => vec![kv, d],
                O => vec![d, q],
                Gate | Up => vec![c.intermediate_size, d],
                Down => vec![d, c.intermediate_size],
            },
        }
    }

    fn normal(&mut self, shape: Vec<usize>) -> Result<Tensor> {
        let t = if self.device.is_cuda() {
            Tensor::randn(0f32, INIT_STD, shape, &self.device)?
        } else {
            let n: usize = shape.iter().product();
            let mut next = || {
                self.host_rng = self.host_rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.host_rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            };
            // Box-Muller.
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    let (u1, u2) = (next().max(f64::MIN_POSITIVE), next());
                    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32 * INIT_STD
                })
                .collect();
            Tensor::from_vec(values, shape, &self.device)?
        };
        Ok(t.to_dtype(self.dtype)?)
    }
}

impl WeightSource for RandomWeights {
    fn path(&self) -> &Path {
        &self.path
    }

    fn has(&self, name: WeightName) -> bool {
        use LayerWeight::*;
        match name {
            WeightName::Output => !self.cfg.tie_word_embeddings,
            WeightName::Layer(_, QNorm | KNorm | PostAttnNorm | PostFfnNorm) => false,
            _ => true,
        }
    }

    fn tensor(&mut self, name: WeightName) -> Result<Tensor> {
        let shape = self.shape(name);
        if shape.len() == 1 {
            // Norm weights start at one, as in HF.
            return Ok(Tensor::ones(shape, DType::F32, &self.device)?);
        }
        self.normal(shape)
    }

    fn stored(&mut self, _name: WeightName) -> Result<QTensor> {
        Err(Error::Usage(
            "random weights are dense: use --weights f32 or bf16".into(),
        ))
    }

    fn linear(&mut self, name: WeightName, _format: WeightFormat) -> Result<Matrix> {
        let shape = self.shape(name);
        Ok(Matrix::Dense(self.normal(shape)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_8b_has_eight_billion_parameters() {
        let (cfg, name) = config("llama3-8b").unwrap();
        assert_eq!(name, "llama3-8b");
        let spec = cfg.spec().unwrap();
        let w = RandomWeights {
            head_dim: spec.head_dim,
            cfg,
            dtype: DType::BF16,
            device: Device::Cpu,
            path: PathBuf::new(),
            host_rng: 0,
        };
        let mut params = 0;
        let count = |name| w.shape(name).iter().product::<usize>();
        for name in [
            WeightName::Embed,
            WeightName::Output,
            WeightName::OutputNorm,
        ] {
            params += count(name);
        }
        for i in 0..32 {
            use LayerWeight::*;
            for lw in [AttnNorm, Q, K, V, O, FfnNorm, Gate, Up, Down] {
                params += count(WeightName::Layer(i, lw));
            }
        }
        // meta-llama/Llama-3.1-8B: 8,030,261,248 parameters.
        assert_eq!(params, 8_030_261_248);
    }
}
