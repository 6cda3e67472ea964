//! Model code, one file per architecture family, behind one trait the scorer talks to
//! ([`CausalLm`]); this file dispatches a GGUF file or a Hugging Face folder to its family.

mod attention;
pub mod causal_lm;
mod config_bounds;
mod cpu_kernels;
mod cpu_tensor;
pub mod decoder;
pub mod gemma;
mod gguf_shape;
pub mod llama;
pub mod matrix;
pub mod nllb;
pub mod random;
pub mod rowdot;
pub mod spec;
mod transpose;
pub mod weight_format;
pub mod weights;

// The trait and batch types every family shares live in leaf modules (no family imports this
// file, which dispatches to the families); re-exported here under their usual paths.
pub use causal_lm::{CausalLm, KvCache, PrefixGroup};
pub use weight_format::WeightFormat;

use crate::engine::gguf::GgufFile;
use crate::{Error, Result};
use candle_core::Device;
use std::path::Path;

/// GGUF architectures this crate runs.
pub const GGUF_ARCHITECTURES: &str = "llama, gemma, gemma2, gemma3";

/// Load a GGUF model of any supported architecture.
pub fn load_gguf(
    gguf: &mut GgufFile,
    device: &Device,
    format: WeightFormat,
) -> Result<Box<dyn CausalLm>> {
    let arch = gguf.string("general.architecture")?;
    if arch == "llama" {
        return Ok(Box::new(llama::from_gguf(gguf, device, format)?));
    }
    match gemma::Version::from_arch(&arch) {
        Some(v) => Ok(Box::new(gemma::from_gguf(gguf, v, device, format)?)),
        None => Err(Error::model(
            &gguf.path,
            format!("unsupported architecture {arch:?} (supported: {GGUF_ARCHITECTURES})"),
        )),
    }
}

/// Load the model of a Hugging Face folder (config.json and safetensors). bf16/f16 weights
/// are converted to f32 at load, or kept as stored with `Quantized`; `FastQuantized`
/// quantizes the matrices to Q8_0.
pub fn load_hf(dir: &Path, device: &Device, format: WeightFormat) -> Result<Box<dyn CausalLm>> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::model(dir, "no config.json: not a Hugging Face model folder")
        }
        _ => Error::io(&path, e),
    })?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input_from(&path, e.line(), "not a JSON file", e))?;
    config_bounds::check(&path, &config)?;
    let model_type = config["model_type"].as_str().unwrap_or_default();
    if model_type == "llama" {
        let cfg: llama::Config = serde_json::from_value(config)
            .map_err(|e| Error::bad_input_from(&path, 0, "not a Llama config", e))?;
        return Ok(Box::new(llama::from_hf(dir, &cfg, device, format)?));
    }
    match gemma::Version::from_arch(model_type) {
        Some(v) => Ok(Box::new(gemma::from_hf(dir, v, &config, device, format)?)),
        None => Err(Error::model(
            &path,
            format!(
                "unsupported model_type {model_type:?} (supported: llama, gemma, gemma2, gemma3, gemma3_text)"
            ),
        )),
    }
}
