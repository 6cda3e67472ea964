//! The elements of a contiguous f32 tensor on the CPU, borrowed from its storage: how the
//! engine's own kernels (gemm calls, row dots, the fused CPU kernels) read candle tensors
//! without copying them.

use crate::{Error, Result};
use candle_core::{Layout, Storage};

/// The elements of `storage` under `layout`, which must be contiguous f32 on the CPU (hold
/// the storage's read guard while using them). `what` names the tensor in the error.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a Storage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    match storage {
        Storage::Cpu(cpu) if layout.is_contiguous() => {
            Ok(&cpu.as_slice::<f32>()?[layout.start_offset()..][..layout.shape().elem_count()])
        }
        _ => Err(Error::Internal(format!(
            "{what} is not a contiguous f32 tensor on the CPU"
        ))),
    }
}
