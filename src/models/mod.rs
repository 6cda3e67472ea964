//! Model code, one file per architecture family, behind one trait the scorer talks to.

pub mod llama;

use crate::gguf::GgufFile;
use crate::{Error, Result};
use candle_core::{Device, Tensor};

/// What the scorer needs from a causal language model.
pub trait CausalLm: Send + Sync {
    /// Logits of the token that follows each row's last token, shape (rows, vocab), f32.
    /// Rows may differ in length; a row's result must not depend on its neighbours.
    fn next_token_logits(&self, rows: &[&[u32]]) -> Result<Tensor>;
    fn vocab_size(&self) -> usize;
    fn device(&self) -> &Device;
    /// A short description for logs and the manifest, e.g. "llama 30 layers, f32 weights".
    fn describe(&self) -> String;
}

/// How weights are kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// Dequantize every tensor to f32 at load: fastest on CPU for small models.
    F32,
    /// Keep GGUF blocks quantized and use candle's quantized matmul.
    Quantized,
}

/// Load a GGUF model of any supported architecture.
pub fn load_gguf(gguf: &mut GgufFile, device: &Device, format: WeightFormat) -> Result<Box<dyn CausalLm>> {
    let arch = gguf.string("general.architecture")?;
    match arch.as_str() {
        "llama" => Ok(Box::new(llama::Llama::from_gguf(gguf, device, format)?)),
        other => Err(Error::model(
            &gguf.path,
            format!("unsupported architecture {other:?} (supported: llama)"),
        )),
    }
}

/// Right-pad rows into a (rows, max_len) u32 tensor; returns it with each row's length.
pub(crate) fn pad_right(rows: &[&[u32]], pad_id: u32, device: &Device) -> Result<(Tensor, Vec<usize>)> {
    let max_len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if max_len == 0 || rows.iter().any(|r| r.is_empty()) {
        return Err(Error::Usage("cannot run a model on an empty token sequence".into()));
    }
    let mut flat = Vec::with_capacity(rows.len() * max_len);
    for r in rows {
        flat.extend_from_slice(r);
        flat.extend(std::iter::repeat_n(pad_id, max_len - r.len()));
    }
    let lens = rows.iter().map(|r| r.len()).collect();
    Ok((Tensor::from_vec(flat, (rows.len(), max_len), device)?, lens))
}
