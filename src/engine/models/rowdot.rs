//! Matrix products of a few rows against f32 weights, for generation steps: y = x · wᵀ with
//! x (m, k), m small, and w (n, k) as stored. Each weight row is read once and dotted with
//! every row of x while it is in cache; gemm would instead pack the whole weight matrix on
//! every step, which costs more than the product when m is a handful. Each output is one
//! dot product in a fixed order, so a row's result does not depend on the other rows.
//!
//! Every generation step takes this path, whatever its number of rows: were larger steps
//! handed to gemm (whose sums run in another order), a reply's text would depend on how many
//! rows shared its batch.

use super::cpu_tensor::contiguous_f32;
use crate::Result;
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

/// Dequantize rows `first..first + out.len() / k` of a matrix of row length `k` stored as
/// `data`, into `out`, exactly as `QTensor::dequantize` does (`matrix::row_dequantizer` picks
/// the one of a GGUF type).
pub(crate) type RowDequantizer = fn(data: &[u8], first: usize, k: usize, out: &mut [f32]);

/// Weight rows per parallel task.
const CHUNK: usize = 64;

/// Where the weight rows of [`products_t`] come from.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// f32, (n, k) row major.
    F32(&'a [f32]),
    /// A stored matrix ([`super::matrix::Matrix::Stored`]): each row is dequantized into a
    /// per-task buffer right before its dot products.
    Stored {
        bytes: &'a [u8],
        dequantize: RowDequantizer,
    },
}

/// x (m, k) · wᵀ for w (n, k), both f32 on the CPU; None when they are not (the caller
/// falls back to candle's matmul).
pub fn matmul_t(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    if !matches!(x.device(), Device::Cpu) || x.dtype() != DType::F32 || w.dtype() != DType::F32 {
        return Ok(None);
    }
    let (m, k) = x.dims2()?;
    let (n, wk) = w.dims2()?;
    if k != wk || m == 0 || !w.is_contiguous() {
        return Ok(None);
    }
    let x: Vec<f32> = x.flatten_all()?.to_vec1()?;
    if !matches!(w.device(), Device::Cpu) {
        return Ok(None);
    }
    let (storage, layout) = w.storage_and_layout();
    let weights = contiguous_f32(&storage, layout, "a dense weight matrix")?;
    let out_t = products_t(&x, m, k, n, Rows::F32(weights));
    let y = Tensor::from_vec(out_t, (n, m), &Device::Cpu)?;
    Ok(Some(y.t()?.contiguous()?))
}

/// The products of x (m, k, row major) with every weight row, transposed, (n, m): each task
/// takes [`CHUNK`] weight rows and writes one contiguous block.
pub(crate) fn products_t(x: &[f32], m: usize, k: usize, n: usize, w: Rows) -> Vec<f32> {
    let mut out_t = vec![0f32; n * m];
    out_t
        .par_chunks_mut(CHUNK * m)
        .enumerate()
        .for_each(|(c, out)| {
            let mut buf = match w {
                Rows::F32(_) => Vec::new(),
                Rows::Stored { .. } => vec![0f32; k],
            };
            for (i, o) in out.chunks_mut(m).enumerate() {
                let j = c * CHUNK + i;
                let row: &[f32] = match w {
                    Rows::F32(w) => &w[j * k..(j + 1) * k],
                    Rows::Stored { bytes, dequantize } => {
                        dequantize(bytes, j, k, &mut buf);
                        &buf
                    }
                };
                for (r, o) in o.iter_mut().enumerate() {
                    *o = dot(&x[r * k..(r + 1) * k], row);
                }
            }
        });
    out_t
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    // Compiled with AVX2 and FMA, the same code vectorises to 256-bit fused multiply-adds.
    dot_portable(a, b)
}

/// Sixteen independent partial sums (vectorisable without reassociation), then the tail.
#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let (at, bt) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for j in 0..16 {
            acc[j] = x[j].mul_add(y[j], acc[j]);
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for (x, y) in at.iter().zip(bt) {
        sum = x.mul_add(*y, sum);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_candle_matmul() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (5, 70), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (130, 70), &dev).unwrap();
        let got = matmul_t(&x, &w).unwrap().unwrap();
        let want = x.matmul(&w.t().unwrap()).unwrap();
        let diff = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "{diff}");
        // Rows do not depend on each other.
        let one = matmul_t(&x.narrow(0, 2, 1).unwrap(), &w).unwrap().unwrap();
        let all = matmul_t(&x, &w).unwrap().unwrap();
        assert_eq!(
            one.to_vec2::<f32>().unwrap()[0],
            all.to_vec2::<f32>().unwrap()[2]
        );
    }

    /// A step of 32 rows (beyond the 16 up to which gemm was once left out) gives each row
    /// the very bits it gets alone: a reply does not depend on its batch's size.
    #[test]
    fn rows_above_sixteen_take_the_same_path_bit_for_bit() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (32, 576), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (200, 576), &dev).unwrap();
        let all = matmul_t(&x, &w).unwrap().unwrap().to_vec2::<f32>().unwrap();
        for (i, row) in all.iter().enumerate() {
            let one = matmul_t(&x.narrow(0, i, 1).unwrap(), &w).unwrap().unwrap();
            assert_eq!(&one.to_vec2::<f32>().unwrap()[0], row, "row {i}");
        }
    }
}
