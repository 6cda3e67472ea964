//! How a model's weights are kept in memory and how its matrix products are computed
//! (`--weights`).

use candle_core::{DType, Device};

/// How weights are kept in memory, and how the matrix products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// Dequantize every tensor to f32 at load: fastest on CPU when the f32 copy fits.
    F32,
    /// Dequantize the matrices and the embedding to bf16 at load and run the activations in
    /// bf16 (tensor cores, half the memory of f32); norms, the rotary angles and the logits
    /// stay f32. The GPU default for models that fit.
    Bf16,
    /// Keep the weights as stored (GGUF blocks, bf16/f16 safetensors) and compute every
    /// product in f32 on exactly dequantized values ([`super::matrix::Matrix::Stored`]): the results
    /// of `F32` within f32 rounding, in about the stored size of memory.
    Quantized,
    /// candle's quantized matmul, which rounds the activations to 8 bits (as llama.cpp does):
    /// faster and inexact; safetensors matrices are quantized to Q8_0 at load.
    FastQuantized,
}

impl WeightFormat {
    /// The dtype of the activations and of the dense weights on `device`. Quantized matmuls
    /// take either; on a GPU bf16 keeps the attention on the tensor cores.
    pub fn compute_dtype(self, device: &Device) -> DType {
        match self {
            WeightFormat::F32 => DType::F32,
            WeightFormat::Bf16 => DType::BF16,
            WeightFormat::Quantized | WeightFormat::FastQuantized if device.is_cuda() => {
                DType::BF16
            }
            WeightFormat::Quantized | WeightFormat::FastQuantized => DType::F32,
        }
    }

    /// As the manifest records it (`settings.weights`) and `--weights` spells it.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Quantized => "quantized",
            WeightFormat::FastQuantized => "fast-quantized",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            WeightFormat::F32,
            WeightFormat::Bf16,
            WeightFormat::Quantized,
            WeightFormat::FastQuantized,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }

    /// Whether results are exact: f32 arithmetic on the weights exactly as stored (no bf16
    /// activations, no 8-bit rounding of the activations). `cuda`: on a GPU.
    pub fn is_exact(self, cuda: bool) -> bool {
        match self {
            WeightFormat::F32 => true,
            WeightFormat::Quantized => !cuda,
            WeightFormat::Bf16 | WeightFormat::FastQuantized => false,
        }
    }

    /// Whether matrices stay in their stored form.
    pub fn keeps_stored(self) -> bool {
        matches!(self, WeightFormat::Quantized | WeightFormat::FastQuantized)
    }
}
