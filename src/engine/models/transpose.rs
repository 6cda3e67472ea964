//! Rows written as columns: weight rows into a tile for the tiled gemm of the matrix module,
//! and a block's keys for the scores product of the CPU attention kernel.
//!
//! gemm packs its right-hand operand with one scalar load per element when that operand is
//! column major (a weight tile as dequantized, row by row), but with contiguous copies when
//! it is row major. Transposing each dequantized group of rows while it is in L1 (16 × 16
//! blocks in AVX-512 registers where the CPU has them) costs a fraction of that packing. A
//! transpose only moves values, so products are unchanged.

/// Rows per transposed group: one AVX-512 register of f32 lanes.
pub(crate) const GROUP: usize = 16;

/// Write `src`, `rows` rows of length `k` (row major), as columns: element (r, kk) of `src`
/// goes to `dst[kk * dst_stride + r]`.
///
/// # Safety
/// `dst` must be valid for writes at `kk * dst_stride + r` for every `kk < k`, `r < rows`,
/// and no other thread may access those elements during the call.
pub(crate) unsafe fn rows_into_columns(
    src: &[f32],
    rows: usize,
    k: usize,
    dst: *mut f32,
    dst_stride: usize,
) {
    assert!(src.len() >= rows * k && rows <= GROUP);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if rows == GROUP && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above); the bounds are the caller's.
        unsafe { avx512::full_groups(src, k, dst, dst_stride) };
        done = k / GROUP * GROUP;
    }
    for kk in done..k {
        for r in 0..rows {
            // SAFETY: kk < k, r < rows: in the bounds the caller guarantees.
            unsafe { *dst.add(kk * dst_stride + r) = src[r * k + kk] };
        }
    }
}

#[cfg(target_arch = "x86_64")]
const _: () = assert!(avx512::LANES == GROUP);

/// The 16 × 16 register transpose (its own lane count, so that it needs nothing from above).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// f32 lanes of one register: the rows of a full group.
    pub(super) const LANES: usize = 16;
    const GROUP: usize = LANES;

    /// `rows_into_columns` for 16 rows, the columns 0..k / 16 * 16.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn full_groups(src: &[f32], k: usize, dst: *mut f32, dst_stride: usize) {
        for k0 in (0..k / GROUP * GROUP).step_by(GROUP) {
            let mut r = [_mm512_setzero_ps(); GROUP];
            for (i, reg) in r.iter_mut().enumerate() {
                // SAFETY: row i's elements k0..k0 + 16 are in src (k0 + 16 <= k).
                *reg = unsafe { _mm512_loadu_ps(src.as_ptr().add(i * k + k0)) };
            }
            let c = transpose16(r);
            for (j, col) in c.iter().enumerate() {
                // SAFETY: the caller's bounds: row k0 + j of dst, its 16 columns.
                unsafe { _mm512_storeu_ps(dst.add((k0 + j) * dst_stride), *col) };
            }
        }
    }

    /// The transpose of a 16 × 16 block held as 16 rows: out[j] lane i = r[i] lane j.
    #[target_feature(enable = "avx512f")]
    fn transpose16(r: [__m512; GROUP]) -> [__m512; GROUP] {
        // Within 128-bit lanes: pairs of rows, then quads. v[4q + c] holds, in its 128-bit
        // lane g, column 4g + c of rows 4q..4q + 4.
        let mut u = [_mm512_setzero_ps(); GROUP];
        for p in 0..GROUP / 2 {
            u[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
            u[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
        }
        let mut v = [_mm512_setzero_ps(); GROUP];
        for q in 0..4 {
            let (lo, hi) = (u[4 * q], u[4 * q + 1]);
            let (lo2, hi2) = (u[4 * q + 2], u[4 * q + 3]);
            v[4 * q] = _mm512_shuffle_ps::<0x44>(lo, lo2);
            v[4 * q + 1] = _mm512_shuffle_ps::<0xEE>(lo, lo2);
            v[4 * q + 2] = _mm512_shuffle_ps::<0x44>(hi, hi2);
            v[4 * q + 3] = _mm512_shuffle_ps::<0xEE>(hi, hi2);
        }
        // Across 128-bit lanes: row quads 0/1 and 2/3, then the halves.
        let mut out = [_mm512_setzero_ps(); GROUP];
        for c in 0..4 {
            let a = _mm512_shuffle_f32x4::<0x88>(v[c], v[4 + c]);
            let b = _mm512_shuffle_f32x4::<0xDD>(v[c], v[4 + c]);
            let e = _mm512_shuffle_f32x4::<0x88>(v[8 + c], v[12 + c]);
            let d = _mm512_shuffle_f32x4::<0xDD>(v[8 + c], v[12 + c]);
            out[c] = _mm512_shuffle_f32x4::<0x88>(a, e);
            out[8 + c] = _mm512_shuffle_f32x4::<0xDD>(a, e);
            out[4 + c] = _mm512_shuffle_f32x4::<0x88>(b, d);
            out[12 + c] = _mm512_shuffle_f32x4::<0xDD>(b, d);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_lands_in_its_column() {
        // Full groups (the AVX-512 path where the CPU has it) and partial ones, k with and
        // without a tail past the last 16 columns, a destination wider than the rows.
        for (rows, k) in [(16, 64), (16, 37), (16, 3), (5, 48), (1, 17)] {
            let src: Vec<f32> = (0..rows * k).map(|i| i as f32).collect();
            let stride = rows + 7;
            let mut dst = vec![-1f32; k * stride];
            // SAFETY: dst holds k rows of `stride` >= rows elements.
            unsafe { rows_into_columns(&src, rows, k, dst.as_mut_ptr(), stride) };
            for kk in 0..k {
                for r in 0..stride {
                    let want = if r < rows { src[r * k + kk] } else { -1.0 };
                    assert_eq!(dst[kk * stride + r], want, "{rows}x{k}: ({kk}, {r})");
                }
            }
        }
    }
}
