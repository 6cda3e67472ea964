//! The decoder's attention and gated activation as fused CPU kernels for f32 passes.
//!
//! candle runs attention as separate whole-tensor operations: the (rows, heads, t, keys)
//! scores are written by one product, then read and written again to scale them, to add the
//! mask and by a softmax that calls the scalar `expf`, before the second product reads them.
//! On a scoring pass of 16 prompts of 450 tokens that is 117 MB of scores per layer going
//! through memory five times, and the product computes the masked half as well. Here each
//! task takes one row, one key-value head and a block of queries, computes the scores of only
//! the keys the block's mask lets it see, applies scale, soft-cap, mask and softmax while they
//! are in cache, and multiplies by the values straight into the output's (rows, t, heads, hd)
//! layout. The SiLU gate and its product with `up` are one pass over the fused gate/up
//! product instead of a strided unary map and a binary map.
//!
//! Each value is computed by the same formulas as candle's ops, in the same order per element;
//! what differs is the exponential (a vectorised polynomial, [`exp_in_place`], within 2 ulp
//! of libm's) and the softmax's sum (16 partial sums), so logits move by rounding only.
//! Keys a query cannot see contribute exact zeros, as they do in candle's path, so a row's
//! results do not depend on how much padding its batch adds after it.

use super::cpu_tensor::contiguous_f32;
use super::matrix::{gemm_into, SendPtr};
use super::transpose::{self, GROUP};
use crate::{Error, Result};
use candle_core::{DType, Device, Layout, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// Queries per attention task: a block's scores against a few hundred keys stay in L2.
const QUERY_BLOCK: usize = 64;

/// The shape of one attention call.
#[derive(Clone, Copy)]
pub(crate) struct Heads {
    /// Query heads.
    pub query: usize,
    /// Key-value heads; each serves `query / kv` consecutive query heads.
    pub kv: usize,
    /// Elements per head.
    pub dim: usize,
}

/// softmax(q·kᵀ · scale [soft-capped] + mask) · v for q (b, heads.query, t, hd) and k, v
/// (b, heads.kv, tk, hd), contiguous f32 on the CPU; `mask` is additive, (b or 1, 1, 1, t, tk).
/// Returns (b · t, heads.query · hd), each query's heads side by side.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    heads: Heads,
    scale: f64,
    softcap: Option<f64>,
) -> Result<Tensor> {
    let (b, nh, t, hd) = q.dims4()?;
    let tk = k.dim(2)?;
    let mask_rows = mask.dim(0)?;
    if (nh, hd) != (heads.query, heads.dim)
        || k.dims4()? != (b, heads.kv, tk, hd)
        || v.dims4()? != (b, heads.kv, tk, hd)
        || mask.elem_count() != mask_rows * t * tk
        || !(mask_rows == 1 || mask_rows == b)
        || heads.kv == 0
        || nh % heads.kv != 0
    {
        return Err(Error::Internal(format!(
            "the CPU attention kernel got q {:?}, k {:?}, v {:?}, mask {:?}",
            q.dims(),
            k.dims(),
            v.dims(),
            mask.dims()
        )));
    }
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (ms, ml) = mask.storage_and_layout();
    let qd = contiguous_f32(&qs, ql, "the attention query")?;
    let kd = contiguous_f32(&ks, kl, "the attention key")?;
    let vd = contiguous_f32(&vs, vl, "the attention value")?;
    let md = contiguous_f32(&ms, ml, "the attention mask")?;
    let groups = nh / heads.kv;
    let blocks = t.div_ceil(QUERY_BLOCK);
    let mut out = vec![0f32; b * t * nh * hd];
    let out_ptr = SendPtr(out.as_mut_ptr());
    let (scale, softcap) = (scale as f32, softcap.map(|c| c as f32));
    (0..b * heads.kv * blocks).into_par_iter().for_each(|task| {
        let (row, h, block) = (
            task / (heads.kv * blocks),
            task / blocks % heads.kv,
            task % blocks,
        );
        let i0 = block * QUERY_BLOCK;
        let queries = QUERY_BLOCK.min(t - i0);
        let mask = &md[if mask_rows == 1 { 0 } else { row * t * tk }..][..t * tk];
        let mask = &mask[i0 * tk..(i0 + queries) * tk];
        // Each query's visible keys, and the span that covers the block's.
        let seen: Vec<(usize, usize)> = mask.chunks(tk).map(visible_keys).collect();
        let ks = seen.iter().map(|s| s.0).min().unwrap_or(0);
        let ke = seen.iter().map(|s| s.1).max().unwrap_or(0);
        if ke <= ks {
            return;
        }
        let nk = ke - ks;
        let head = (row * heads.kv + h) * tk * hd;
        // The span's keys transposed, (hd, nk), so that gemm reads its right operand row major.
        let keys = &kd[head + ks * hd..head + ke * hd];
        let mut keys_t = vec![0f32; hd * nk];
        for j0 in (0..nk).step_by(GROUP) {
            let group = GROUP.min(nk - j0);
            // SAFETY: keys j0..j0 + group go to columns j0..j0 + group of keys_t (hd, nk),
            // in bounds, and keys_t is this task's own buffer.
            unsafe {
                transpose::rows_into_columns(
                    &keys[j0 * hd..],
                    group,
                    hd,
                    keys_t.as_mut_ptr().add(j0),
                    nk,
                )
            };
        }
        let values = &vd[head + ks * hd..head + ke * hd];
        // The block's queries of every head this kv head serves, stacked (group-major), so
        // that each product runs once per task with groups · queries rows.
        let rows = groups * queries;
        let mut stacked = Vec::with_capacity(rows * hd);
        for g in 0..groups {
            let qh = h * groups + g;
            stacked.extend_from_slice(&qd[((row * nh + qh) * t + i0) * hd..][..queries * hd]);
        }
        let mut scores = vec![0f32; rows * nk];
        // SAFETY: scores (rows, nk), stacked (rows, hd) and keys_t (hd, nk) are row major and
        // in bounds.
        unsafe {
            gemm_into(
                (rows, nk, hd),
                scores.as_mut_ptr(),
                nk,
                stacked.as_ptr(),
                hd,
                keys_t.as_ptr(),
                (nk, 1),
                Parallelism::None,
            );
        }
        let masks = mask.chunks(tk).zip(&seen).cycle();
        for (s, (m, &(a, e))) in scores.chunks_mut(nk).zip(masks) {
            softmax_row(s, &m[ks..ke], (a - ks, e.max(a) - ks), scale, softcap);
        }
        // The products land in `stacked` (rows, hd), then go to their heads' columns.
        // SAFETY: stacked (rows, hd), scores (rows, nk) and values (nk, hd) are row major.
        unsafe {
            gemm_into(
                (rows, hd, nk),
                stacked.as_mut_ptr(),
                hd,
                scores.as_ptr(),
                nk,
                values.as_ptr(),
                (hd, 1),
                Parallelism::None,
            );
        }
        for (r, y) in stacked.chunks_exact(hd).enumerate() {
            let (g, i) = (r / queries, r % queries);
            let at = ((row * t + i0 + i) * nh + h * groups + g) * hd;
            // SAFETY: query i0 + i of head h · groups + g, hd elements of `out` that only
            // this task writes.
            unsafe { std::ptr::copy_nonoverlapping(y.as_ptr(), out_ptr.at(at), hd) };
        }
    });
    Ok(Tensor::from_vec(out, (b * t, nh * hd), &Device::Cpu)?)
}

/// The keys an additive mask row lets its query see: from its first finite entry to one past
/// its last (entries between may still be masked).
fn visible_keys(mask: &[f32]) -> (usize, usize) {
    let first = mask.iter().position(|m| *m != f32::NEG_INFINITY);
    let last = mask.iter().rposition(|m| *m != f32::NEG_INFINITY);
    match (first, last) {
        (Some(a), Some(e)) => (a, e + 1),
        _ => (0, 0),
    }
}

/// One query's scores over a span of keys become its attention weights, in place: scaled,
/// soft-capped, masked and softmaxed over `seen` (a range of the span), zero elsewhere.
fn softmax_row(
    scores: &mut [f32],
    mask: &[f32],
    seen: (usize, usize),
    scale: f32,
    softcap: Option<f32>,
) {
    let (a, e) = seen;
    scores[..a].fill(0.0);
    scores[e..].fill(0.0);
    let (s, m) = (&mut scores[a..e], &mask[a..e]);
    for (x, &m) in s.iter_mut().zip(m) {
        let y = *x * scale;
        let y = match softcap {
            Some(cap) => (y / cap).tanh() * cap,
            None => y,
        };
        *x = y + m;
    }
    let max = s.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
    for x in s.iter_mut() {
        *x -= max;
    }
    exp_in_place(s);
    let sum = lane_sum(s);
    for x in s.iter_mut() {
        *x /= sum;
    }
}

/// The sum of `xs` in 16 lanes (element i in lane i mod 16), then the lanes in order.
fn lane_sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    for (l, x) in lanes.iter_mut().zip(rest) {
        *l += x;
    }
    lanes.iter().sum()
}

/// silu(gate) · up, element by element, as candle computes `gate.silu()? * up`, for gate and
/// up (m, n) CPU f32 views with contiguous rows (any row stride); (m, n) contiguous out.
pub(crate) fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let (m, n) = gate.dims2()?;
    if up.dims2()? != (m, n) {
        return Err(Error::Internal(format!(
            "silu · up of {:?} and {:?}",
            gate.dims(),
            up.dims()
        )));
    }
    let (gs, gl) = gate.storage_and_layout();
    let (us, ul) = up.storage_and_layout();
    let g = strided_rows(&gs, gl, "gate")?;
    let u = strided_rows(&us, ul, "up")?;
    if m * n == 0 {
        return Ok(Tensor::zeros((m, n), DType::F32, &Device::Cpu)?);
    }
    // Unset until each task writes its row (the first loop below sets every element).
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    out.spare_capacity_mut()[..m * n]
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(r, o)| {
            let (g, u) = (&g.0[r * g.1..][..n], &u.0[r * u.1..][..n]);
            for (o, &g) in o.iter_mut().zip(g) {
                o.write(-g);
            }
            // SAFETY: every element of o was written just above.
            let o = unsafe { &mut *(o as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
            exp_in_place(o);
            for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                *o = g / (1.0 + *o) * u;
            }
        });
    // SAFETY: every row was written above.
    unsafe { out.set_len(m * n) };
    Ok(Tensor::from_vec(out, (m, n), &Device::Cpu)?)
}

/// A 2-D CPU f32 view whose rows are contiguous: its elements from the first, and the row
/// stride.
fn strided_rows<'a>(
    storage: &'a Storage,
    layout: &Layout,
    what: &str,
) -> Result<(&'a [f32], usize)> {
    match (storage, layout.stride()) {
        (Storage::Cpu(cpu), &[row_stride, 1]) => {
            Ok((&cpu.as_slice::<f32>()?[layout.start_offset()..], row_stride))
        }
        _ => Err(Error::Internal(format!(
            "silu · up got a {what} whose rows are not contiguous CPU f32"
        ))),
    }
}

/// One of q, k or v of a pass as the attention kernel takes it: `x` (b, t, heads, hd), a view
/// of the fused projection whose heads are contiguous, written head-major (b, heads, t, hd)
/// and, with `rope` = (cos, sin, interleaved), rotated on the way: the same products as
/// candle's `rope` / `rope_i` on `x.transpose(1, 2).contiguous()`, in one parallel pass
/// instead of a single-threaded copy and a rotation. cos and sin are (b, t, hd / 2).
pub(crate) fn head_major(x: &Tensor, rope: Option<(&Tensor, &Tensor, bool)>) -> Result<Tensor> {
    let (b, t, h, d) = x.dims4()?;
    let (xs, xl) = x.storage_and_layout();
    let (Storage::Cpu(cpu), &[s0, s1, s2, 1]) = (&*xs, xl.stride()) else {
        return Err(Error::Internal(format!(
            "head_major got a {:?} tensor whose heads are not contiguous CPU rows",
            x.dims()
        )));
    };
    let src = &cpu.as_slice::<f32>()?[xl.start_offset()..];
    let tables = match rope {
        Some((cos, sin, interleaved)) => {
            if cos.dims() != [b, t, d / 2] || sin.dims() != [b, t, d / 2] || d % 2 != 0 {
                return Err(Error::Internal(format!(
                    "rope tables {:?} for {:?} heads",
                    cos.dims(),
                    x.dims()
                )));
            }
            Some((
                cos.storage_and_layout(),
                sin.storage_and_layout(),
                interleaved,
            ))
        }
        None => None,
    };
    let tables = match &tables {
        Some(((cs, cl), (ss, sl), interleaved)) => Some((
            contiguous_f32(cs, cl, "the rope cos table")?,
            contiguous_f32(ss, sl, "the rope sin table")?,
            *interleaved,
        )),
        None => None,
    };
    let mut out = vec![0f32; b * h * t * d];
    if !out.is_empty() {
        out.par_chunks_mut(t * d).enumerate().for_each(|(bh, dst)| {
            let (row, head) = (bh / h, bh % h);
            for (i, dst) in dst.chunks_exact_mut(d).enumerate() {
                let src = &src[row * s0 + i * s1 + head * s2..][..d];
                let Some((cos, sin, interleaved)) = tables else {
                    dst.copy_from_slice(src);
                    continue;
                };
                let at = (row * t + i) * (d / 2);
                let (cos, sin) = (&cos[at..at + d / 2], &sin[at..at + d / 2]);
                if interleaved {
                    let pairs = dst.chunks_exact_mut(2).zip(src.chunks_exact(2));
                    for (((o, x), &c), &s) in pairs.zip(cos).zip(sin) {
                        o[0] = x[0] * c - x[1] * s;
                        o[1] = x[0] * s + x[1] * c;
                    }
                } else {
                    // Split into halves so that the loop has no index arithmetic to vectorise.
                    let (x1, x2) = src.split_at(d / 2);
                    let (o1, o2) = dst.split_at_mut(d / 2);
                    let rows = o1.iter_mut().zip(o2.iter_mut()).zip(x1.iter().zip(x2));
                    for (((o1, o2), (&x1, &x2)), (&c, &s)) in rows.zip(cos.iter().zip(sin)) {
                        *o1 = x1 * c - x2 * s;
                        *o2 = x1 * s + x2 * c;
                    }
                }
            }
        });
    }
    Ok(Tensor::from_vec(out, (b, h, t, d), &Device::Cpu)?)
}

/// e^x for every element, in place. Cephes' `expf` polynomial: within 2 ulp of libm on
/// [-87.3, 88.3], 0 below (libm's results there are subnormal), +inf above, NaN kept. Written
/// as plain arithmetic that the compiler vectorises; the AVX-512 build and the portable one
/// compute the same operations, so they agree bit for bit.
pub(crate) fn exp_in_place(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above).
        unsafe { exp_avx512(xs) };
        return;
    }
    exp_each(xs);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_avx512(xs: &mut [f32]) {
    exp_each(xs);
}

#[inline(always)]
fn exp_each(xs: &mut [f32]) {
    for x in xs {
        *x = exp(*x);
    }
}

#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, the first exact in few bits, so that x − n·ln 2 loses nothing.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let n = (x * LOG2_E + 0.5).floor();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let p = 1.987_569_1e-4f32
        .mul_add(r, 1.398_199_9e-3)
        .mul_add(r, 8.333_452e-3)
        .mul_add(r, 4.166_579_6e-2)
        .mul_add(r, 1.666_666_5e-1)
        .mul_add(r, 0.5);
    let y = p.mul_add(r * r, r) + 1.0;
    // 2^n by its exponent bits; n is within [-126, 127] wherever the result is used. Clamped
    // as a float (max and min also turn NaN into a number; y keeps it) so that the conversion
    // needs no per-lane checks and stays vectorised.
    #[allow(clippy::manual_clamp)] // clamp would keep NaN
    let n = n.max(-126.0).min(127.0);
    // SAFETY: n is an integer in [-126, 127].
    let pow2 = f32::from_bits(((unsafe { n.to_int_unchecked::<i32>() } + 127) as u32) << 23);
    let v = y * pow2;
    if x < -87.3 {
        0.0
    } else if x > 88.3 {
        f32::INFINITY
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm_and_keeps_the_edges() {
        let mut worst = 0u32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let mut y = [x];
            exp_in_place(&mut y);
            worst = worst.max(y[0].to_bits().abs_diff(x.exp().to_bits()));
            x += 0.0137;
        }
        assert!(worst <= 2, "{worst} ulp");
        let mut edges = [
            f32::NEG_INFINITY,
            -200.0,
            0.0,
            100.0,
            f32::INFINITY,
            f32::NAN,
        ];
        exp_in_place(&mut edges);
        assert_eq!(&edges[..5], &[0.0, 0.0, 1.0, f32::INFINITY, f32::INFINITY]);
        assert!(edges[5].is_nan());
    }

    #[test]
    fn head_major_equals_candles_transpose_and_rope_bit_for_bit() {
        let (b, t, heads, d) = (2, 5, 6, 8);
        let v: Vec<f32> = (0..b * t * 10 * d)
            .map(|i| ((i * 29 % 97) as f32 - 48.0) / 7.0)
            .collect();
        // Heads 2..8 of a fused (b, t, 10 heads, d) product: a view with strided rows.
        let fused = Tensor::from_vec(v, (b, t, 10, d), &Device::Cpu).unwrap();
        let x = fused.narrow(2, 2, heads).unwrap();
        let angles: Vec<f32> = (0..b * t * d / 2).map(|i| i as f32 * 0.37).collect();
        let angles = Tensor::from_vec(angles, (b, t, d / 2), &Device::Cpu).unwrap();
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        let plain = x.transpose(1, 2).unwrap().contiguous().unwrap();
        let bits = |y: Tensor| y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(bits(head_major(&x, None).unwrap()), bits(plain.clone()));
        for (interleaved, rope) in [
            (
                false,
                candle_nn::rotary_emb::rope as fn(&Tensor, &Tensor, &Tensor) -> _,
            ),
            (true, candle_nn::rotary_emb::rope_i),
        ] {
            let ours = head_major(&x, Some((&cos, &sin, interleaved))).unwrap();
            assert_eq!(bits(ours), bits(rope(&plain, &cos, &sin).unwrap()));
        }
    }

    #[test]
    fn silu_mul_matches_candle_on_views_of_a_fused_product() {
        // Gates from -100 to 100: e^-gate overflows at the low end, as in candle.
        let v: Vec<f32> = (0..6 * 40)
            .map(|i| (i * 37 % 101) as f32 * 2.0 - 100.0)
            .collect();
        let fused = Tensor::from_vec(v, (6, 40), &Device::Cpu).unwrap();
        let (gate, up) = (
            fused.narrow(1, 0, 20).unwrap(),
            fused.narrow(1, 20, 20).unwrap(),
        );
        let ours = silu_mul(&gate, &up).unwrap().flatten_all().unwrap();
        let candle = (gate.silu().unwrap() * &up).unwrap().flatten_all().unwrap();
        let (ours, candle) = (
            ours.to_vec1::<f32>().unwrap(),
            candle.to_vec1::<f32>().unwrap(),
        );
        for (a, b) in ours.iter().zip(&candle) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}
