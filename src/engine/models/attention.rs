//! Scaled dot-product attention of a decoder layer: the fused CPU kernel of [`cpu_kernels`]
//! where the caller allows it, else candle's tensor operations (GPUs, bf16, generation
//! steps). The tests hold the kernel to the operations.

use super::cpu_kernels::{self, Heads};
use crate::Result;
use candle_core::{DType, Tensor};

/// softmax(q·kᵀ · scale [soft-capped by `cap`] + mask) · v for q (b, heads.query, t, hd) and
/// k, v (b, heads.kv, tk, hd); `mask` is additive, (b or 1, 1, 1, t, tk). Each key-value head
/// serves `heads.query / heads.kv` consecutive query heads. Returns (b · t, heads.query · hd),
/// each query's heads side by side. `fused`: run the CPU kernel when the tensors are f32 on
/// the CPU.
pub(super) fn scaled_dot_product(
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    mask: &Tensor,
    heads: Heads,
    (scale, cap): (f64, Option<f64>),
    fused: bool,
) -> Result<Tensor> {
    if fused && q.device().is_cpu() && q.dtype() == DType::F32 {
        return cpu_kernels::attention(
            &q.contiguous()?,
            &k.contiguous()?,
            &v.contiguous()?,
            &mask.contiguous()?,
            heads,
            scale,
            cap,
        );
    }
    let (b, nh, t, hd) = q.dims4()?;
    let (nkv, tk) = (heads.kv, k.dim(2)?);
    let groups = nh / nkv;
    // Fold each kv head's query group into the row axis, (b, nkv, groups * t, hd), so keys and
    // values are used as they are instead of being repeated per query head.
    let q = q.reshape((b, nkv, groups * t, hd))?;
    let mut att = (q.matmul(&k.t()?)? * scale)?;
    if let Some(cap) = cap {
        att = ((att / cap)?.tanh()? * cap)?;
    }
    let att = att.reshape((b, nkv, groups, t, tk))?.broadcast_add(mask)?;
    let att = candle_nn::ops::softmax_last_dim(&att)?.reshape((b, nkv, groups * t, tk))?;
    let y = att.matmul(v)?; // (b, nkv, groups * t, hd)
    Ok(y.reshape((b, nh, t, hd))?
        .transpose(1, 2)?
        .reshape((b * t, nh * hd))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Deterministic values in [-scale, scale).
    fn noise(shape: (usize, usize, usize, usize), seed: u64, scale: f32) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let v: Vec<f32> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// An additive mask (rows, 1, 1, t, tk) from a visibility rule.
    fn mask(
        rows: usize,
        t: usize,
        tk: usize,
        sees: impl Fn(usize, usize, usize) -> bool,
    ) -> Tensor {
        let m: Vec<f32> = (0..rows * t * tk)
            .map(|i| match sees(i / (t * tk), i / tk % t, i % tk) {
                true => 0.0,
                false => f32::NEG_INFINITY,
            })
            .collect();
        Tensor::from_vec(m, (rows, 1, 1, t, tk), &Device::Cpu).unwrap()
    }

    fn both(q: &Tensor, k: &Tensor, v: &Tensor, m: &Tensor, heads: Heads, cap: Option<f64>) -> f32 {
        let run = |fused| {
            scaled_dot_product((q, k, v), m, heads, (0.125, cap), fused)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let (a, b) = (run(true), run(false));
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn the_fused_kernel_matches_candles_operations() {
        let heads = Heads {
            query: 6,
            kv: 2,
            dim: 16,
        };
        // Causal over 150 queries (three blocks, the last partial), one mask for all rows.
        let (b, t) = (2, 150);
        let q = noise((b, 6, t, 16), 1, 2.0);
        let k = noise((b, 2, t, 16), 2, 2.0);
        let v = noise((b, 2, t, 16), 3, 1.0);
        let causal = mask(1, t, t, |_, i, j| j <= i);
        assert!(both(&q, &k, &v, &causal, heads, None) < 2e-6);
        // Soft-capped, with a sliding window of 40.
        let window = mask(1, t, t, |_, i, j| j <= i && i - j < 40);
        assert!(both(&q, &k, &v, &window, heads, Some(3.0)) < 2e-6);
        // After a cached prefix of 70 columns of which row r sees the first 30 + 20 r: a gap
        // of masked keys inside each query's span.
        let (tp, t2) = (70, 20);
        let q2 = noise((b, 6, t2, 16), 4, 2.0);
        let k2 = noise((b, 2, tp + t2, 16), 5, 2.0);
        let v2 = noise((b, 2, tp + t2, 16), 6, 1.0);
        let prefix = mask(b, t2, tp + t2, |r, i, j| {
            if j < tp {
                j < 30 + 20 * r
            } else {
                j - tp <= i
            }
        });
        assert!(both(&q2, &k2, &v2, &prefix, heads, None) < 2e-6);
    }

    #[test]
    fn padding_after_a_row_leaves_its_results_unchanged() {
        let heads = Heads {
            query: 4,
            kv: 1,
            dim: 8,
        };
        let real = [(4, 7), (1, 8), (1, 9)].map(|(h, seed)| noise((1, h, 90, 8), seed, 2.0));
        let run = |t: usize| {
            // The 90 real positions, then t - 90 padded ones of other values.
            let [q, k, v] = [0, 1, 2].map(|i| {
                let x = &real[i];
                match t - 90 {
                    0 => x.clone(),
                    p => Tensor::cat(
                        &[x, &noise((1, x.dim(1).unwrap(), p, 8), 10 + i as u64, 9.0)],
                        2,
                    )
                    .unwrap(),
                }
            });
            let y = scaled_dot_product(
                (&q, &k, &v),
                &mask(1, t, t, |_, i, j| j <= i),
                heads,
                (0.3, None),
                true,
            )
            .unwrap();
            y.narrow(0, 0, 90)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        // 90 real positions alone, then with 40 and 100 padded positions after them.
        let alone = run(90);
        assert_eq!(alone, run(130));
        assert_eq!(alone, run(190));
    }
}
