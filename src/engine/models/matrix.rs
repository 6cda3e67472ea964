//! A decoder's weight matrices and their products with the activations, y = x · wᵀ for w
//! (n, k) as stored.
//!
//! [`Matrix::Stored`] keeps a matrix in the form its file holds (GGUF blocks of any type,
//! bf16/f16 safetensors) and computes every product in f32 on exactly dequantized values:
//! candle's `to_float`, the function `--weights f32` dequantizes the whole model with at
//! load, so both formats multiply the same f32 numbers and differ only by summation order.
//! Prefill and scoring passes: a tile of weight rows at a time is dequantized into a reused
//! scratch buffer and multiplied by gemm. Generation steps (few rows): each weight row is
//! dequantized once into a cache-resident buffer and dotted with every input row
//! ([`rowdot`]), so the blocks are read once and no f32 copy of the matrix exists.
//! [`Matrix::Fast`] is candle's quantized matmul, which rounds the activations to 8 bits:
//! faster, inexact, only on request (`--weights fast-quantized`).

use super::cpu_tensor::contiguous_f32;
use super::rowdot::{self, RowDequantizer, Rows};
use super::transpose::{self, GROUP};
use crate::Result;
use candle_core::quantized::k_quants::{self, GgmlType};
use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// One weight matrix, (n, k): n outputs, k inputs.
pub enum Matrix {
    /// Dense, in the activations' dtype.
    Dense(Tensor),
    /// As stored; products in f32 on exactly dequantized values (see the module doc).
    Stored(Arc<QTensor>),
    /// candle's quantized matmul: 8-bit activations, not exact.
    Fast(QMatMul),
}

/// f32 elements of weight rows dequantized at once for a gemm (16 MiB): big enough that
/// gemm runs at full speed on each tile, small enough to stay in the last-level cache
/// between being written and being packed.
const TILE_ELEMS: usize = 4 << 20;

thread_local! {
    /// The dequantization tile of products run from this thread, kept between calls.
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    /// A group of weight rows as dequantized, before [`transpose`] writes them into a tile.
    static GROUP_ROWS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn dequantize_rows<T: GgmlType>(data: &[u8], first: usize, k: usize, out: &mut [f32]) {
    let per_row = k / T::BLCK_SIZE;
    let rows = out.len() / k;
    assert_eq!(data.as_ptr() as usize % std::mem::align_of::<T>(), 0);
    // SAFETY: `data` is the CPU storage of a QTensor of T's dtype ([`row_dequantizer`]), a
    // Vec<T> viewed as bytes; the alignment is checked above.
    let blocks: &[T] = unsafe {
        std::slice::from_raw_parts(data.as_ptr().cast(), data.len() / std::mem::size_of::<T>())
    };
    T::to_float(&blocks[first * per_row..(first + rows) * per_row], out);
}

/// The exact dequantizer of a GGUF type.
pub(crate) fn row_dequantizer(dtype: GgmlDType) -> RowDequantizer {
    use k_quants::*;
    match dtype {
        GgmlDType::F32 => dequantize_rows::<f32>,
        GgmlDType::F16 => dequantize_rows::<half::f16>,
        GgmlDType::BF16 => dequantize_rows::<half::bf16>,
        GgmlDType::Q4_0 => dequantize_rows::<BlockQ4_0>,
        GgmlDType::Q4_1 => dequantize_rows::<BlockQ4_1>,
        GgmlDType::Q5_0 => dequantize_rows::<BlockQ5_0>,
        GgmlDType::Q5_1 => dequantize_rows::<BlockQ5_1>,
        GgmlDType::Q8_0 => dequantize_rows::<BlockQ8_0>,
        GgmlDType::Q8_1 => dequantize_rows::<BlockQ8_1>,
        GgmlDType::Q2K => dequantize_rows::<BlockQ2K>,
        GgmlDType::Q3K => dequantize_rows::<BlockQ3K>,
        GgmlDType::Q4K => dequantize_rows::<BlockQ4K>,
        GgmlDType::Q5K => dequantize_rows::<BlockQ5K>,
        GgmlDType::Q6K => dequantize_rows::<BlockQ6K>,
        GgmlDType::Q8K => dequantize_rows::<BlockQ8K>,
    }
}

/// The bytes of a CPU QTensor's blocks; None on other devices.
fn stored_bytes(w: &QTensor) -> Result<Option<&[u8]>> {
    if !matches!(w.device(), Device::Cpu) {
        return Ok(None);
    }
    Ok(match w.data()? {
        std::borrow::Cow::Borrowed(bytes) => Some(bytes),
        std::borrow::Cow::Owned(_) => None,
    })
}

impl Matrix {
    /// Whether products with this matrix are exact (f32 on exactly dequantized values, or
    /// dense).
    pub fn is_exact(&self) -> bool {
        !matches!(self, Matrix::Fast(_))
    }

    /// `x @ wᵀ` for x (.., k). `step`: a generation step, which goes through [`rowdot`]
    /// (dense f32 or stored weights) instead of gemm packing the whole matrix, whatever its
    /// number of rows, so that a reply does not depend on how many rows share its batch.
    pub fn forward(&self, x: &Tensor, step: bool) -> Result<Tensor> {
        match self {
            Matrix::Dense(w) => {
                if step {
                    if let Some(y) = rowdot::matmul_t(x, w)? {
                        return Ok(y);
                    }
                }
                if let Some(y) = dense_matmul_t(x, w)? {
                    return Ok(y);
                }
                Ok(x.broadcast_matmul(&w.t()?)?)
            }
            Matrix::Stored(w) => stored_matmul_t(x, w, step),
            // candle's CUDA kernels for the shapes and types its fast path skips read only
            // f32: quantized matrices get f32 input and give the input's dtype back.
            Matrix::Fast(w) if x.dtype() != DType::F32 => {
                Ok(w.forward(&x.to_dtype(DType::F32)?)?.to_dtype(x.dtype())?)
            }
            Matrix::Fast(w) => Ok(w.forward(x)?),
        }
    }
}

impl Matrix {
    /// Output rows n and input columns k.
    fn dims2(&self) -> Result<(usize, usize)> {
        Ok(match self {
            Matrix::Dense(w) => w.dims2()?,
            Matrix::Stored(w) => w.shape().dims2()?,
            Matrix::Fast(QMatMul::QTensor(w)) => w.shape().dims2()?,
            Matrix::Fast(QMatMul::Tensor(w) | QMatMul::TensorF16(w)) => w.dims2()?,
        })
    }

    /// Whether `self` and `other` can be one matrix, their rows one after the other: the
    /// same form, dtype and row length. GGUF blocks never straddle rows, so stored matrices
    /// of one block type concatenate as bytes; different types (Q4_K q with Q6_K v in a
    /// Q4_K_M file) stay apart.
    fn stacks_with(&self, other: &Matrix) -> Result<bool> {
        let same_k = self.dims2()?.1 == other.dims2()?.1;
        Ok(same_k
            && match (self, other) {
                (Matrix::Dense(a), Matrix::Dense(b)) => a.dtype() == b.dtype(),
                (Matrix::Stored(a), Matrix::Stored(b))
                | (Matrix::Fast(QMatMul::QTensor(a)), Matrix::Fast(QMatMul::QTensor(b))) => {
                    a.dtype() == b.dtype() && a.device().same_device(&b.device())
                }
                (Matrix::Fast(QMatMul::Tensor(a)), Matrix::Fast(QMatMul::Tensor(b)))
                | (Matrix::Fast(QMatMul::TensorF16(a)), Matrix::Fast(QMatMul::TensorF16(b))) => {
                    a.dtype() == b.dtype()
                }
                _ => false,
            })
    }

    /// The matrices' rows one after the other, in one matrix of their form; they must all
    /// [`Matrix::stacks_with`] the first.
    fn stack_rows(parts: &[Matrix]) -> Result<Matrix> {
        let dense = |get: fn(&Matrix) -> Option<&Tensor>| -> Result<Tensor> {
            let ts: Vec<&Tensor> = parts.iter().filter_map(get).collect();
            Ok(Tensor::cat(&ts, 0)?)
        };
        let stored = |get: fn(&Matrix) -> Option<&Arc<QTensor>>| -> Result<QTensor> {
            let qs: Vec<&Arc<QTensor>> = parts.iter().filter_map(get).collect();
            let data = qs
                .iter()
                .map(|q| q.data())
                .collect::<candle_core::Result<Vec<_>>>()?;
            let len: usize = data.iter().map(|d| d.len()).sum();
            // candle reads the bytes as blocks, which must be aligned (to 4 bytes at most).
            let mut words = vec![0u64; len.div_ceil(8)];
            // SAFETY: a view of the words' first `len` bytes, which they own.
            let bytes: &mut [u8] =
                unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), len) };
            let mut at = 0;
            for d in &data {
                bytes[at..at + d.len()].copy_from_slice(d);
                at += d.len();
            }
            let n = qs
                .iter()
                .map(|q| Ok(q.shape().dims2()?.0))
                .sum::<Result<usize>>()?;
            let (first, k) = (qs[0], qs[0].shape().dims2()?.1);
            let storage = QStorage::from_data(
                std::borrow::Cow::Borrowed(bytes),
                &first.device(),
                first.dtype(),
            )?;
            Ok(QTensor::new(storage, (n, k))?)
        };
        Ok(match &parts[0] {
            Matrix::Dense(_) => Matrix::Dense(dense(|m| match m {
                Matrix::Dense(t) => Some(t),
                _ => None,
            })?),
            Matrix::Stored(_) => Matrix::Stored(Arc::new(stored(|m| match m {
                Matrix::Stored(q) => Some(q),
                _ => None,
            })?)),
            Matrix::Fast(QMatMul::QTensor(_)) => {
                Matrix::Fast(QMatMul::from_qtensor(stored(|m| match m {
                    Matrix::Fast(QMatMul::QTensor(q)) => Some(q),
                    _ => None,
                })?)?)
            }
            Matrix::Fast(QMatMul::Tensor(_)) => {
                Matrix::Fast(QMatMul::Tensor(dense(|m| match m {
                    Matrix::Fast(QMatMul::Tensor(t)) => Some(t),
                    _ => None,
                })?))
            }
            Matrix::Fast(QMatMul::TensorF16(_)) => {
                Matrix::Fast(QMatMul::TensorF16(dense(|m| match m {
                    Matrix::Fast(QMatMul::TensorF16(t)) => Some(t),
                    _ => None,
                })?))
            }
        })
    }
}

/// Matrices applied to the same input (q, k, v; gate, up), fused at load: each run of
/// consecutive parts that stack ([`Matrix::stacks_with`]) is one matrix, so one product
/// computes them all and the input is read and packed once.
pub struct Fused {
    /// Each fused matrix with the output widths of the parts it holds, in order.
    runs: Vec<(Matrix, Vec<usize>)>,
}

impl Fused {
    pub fn new(parts: Vec<Matrix>) -> Result<Self> {
        let mut groups: Vec<Vec<Matrix>> = Vec::new();
        for m in parts {
            match groups.last_mut() {
                Some(g) if g[0].stacks_with(&m)? => g.push(m),
                _ => groups.push(vec![m]),
            }
        }
        let runs = groups
            .into_iter()
            .map(|g| {
                let widths = g
                    .iter()
                    .map(|m| Ok(m.dims2()?.0))
                    .collect::<Result<Vec<_>>>()?;
                let m = match g.len() {
                    1 => g.into_iter().next().expect("one part"),
                    _ => Matrix::stack_rows(&g)?,
                };
                Ok((m, widths))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { runs })
    }

    /// How many matrix products a forward pass runs (one per run of stacked parts).
    pub fn products(&self) -> usize {
        self.runs.len()
    }

    /// Each part's product with x (.., k), in order, as [`Matrix::forward`] computes it.
    /// `unit`: the parts' outputs as (.., n / unit, unit) (attention heads), else (.., n).
    /// Parts that share a matrix are views of its product, not contiguous.
    pub fn forward(&self, x: &Tensor, step: bool, unit: Option<usize>) -> Result<Vec<Tensor>> {
        // Products run on (m, k): a generation step's row-dot kernel takes 2-D input.
        let Some((&k, lead)) = x.dims().split_last() else {
            return Err(crate::Error::Internal(
                "a matrix product of a scalar".into(),
            ));
        };
        let x = x.reshape((x.elem_count() / k.max(1), k))?;
        let mut out = Vec::new();
        for (m, widths) in &self.runs {
            let y = m.forward(&x, step)?;
            let n = y.dim(1)?;
            let mut dims = lead.to_vec();
            let unit = match unit {
                Some(u) => {
                    dims.extend([n / u, u]);
                    u
                }
                None => {
                    dims.push(n);
                    1
                }
            };
            let axis = lead.len();
            let y = y.reshape(dims)?;
            if widths.len() == 1 {
                out.push(y);
                continue;
            }
            let mut at = 0;
            for &w in widths {
                out.push(y.narrow(axis, at / unit, w / unit)?);
                at += w;
            }
        }
        Ok(out)
    }
}

/// gemm's threads as candle's matmul sets them.
fn gemm_parallelism() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        threads if threads > 1 => gemm::Parallelism::Rayon(threads),
        _ => gemm::Parallelism::None,
    }
}

/// A (m, k) · B (k, n) into D (m, n), every operand with unit column stride but B, whose
/// strides are (row, column) = `b_strides`; D is written without being read (gemm's
/// read_dst false), so it may start uninitialised. The one gemm call the engine makes.
///
/// # Safety
/// Every element the strides reach must be in bounds of its buffer, and no other thread may
/// access D's elements during the call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_into(
    (m, n, k): (usize, usize, usize),
    d: *mut f32,
    d_row_stride: usize,
    a: *const f32,
    a_row_stride: usize,
    b: *const f32,
    b_strides: (usize, usize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            d,
            1,
            d_row_stride as isize,
            false,
            a,
            1,
            a_row_stride as isize,
            b,
            b_strides.1 as isize,
            b_strides.0 as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `x @ wᵀ` for CPU f32 `x` (.., k) and `w` (n, k), both contiguous: the gemm call candle's
/// matmul makes (same operands, strides and threads, so the same result), into an output
/// that gemm writes without reading instead of one zeroed first (a memset of every
/// activation a pass produces). None for other devices, dtypes and layouts.
fn dense_matmul_t(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    let (n, k) = w.dims2()?;
    let dims = x.dims();
    if !(matches!(x.device(), Device::Cpu)
        && x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && x.is_contiguous()
        && w.is_contiguous()
        && dims.last() == Some(&k)
        && k > 0)
    {
        return Ok(None);
    }
    let m = x.elem_count() / k;
    let (xs, xl) = x.storage_and_layout();
    let (ws, wl) = w.storage_and_layout();
    let xd = contiguous_f32(&xs, xl, "a product's input")?;
    let wd = contiguous_f32(&ws, wl, "a dense weight matrix")?;
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let parallelism = gemm_parallelism();
    // SAFETY: out has room for (m, n) row major; xd is (m, k) row major and wd (n, k) row
    // major, read as wᵀ (k, n) with column stride k. With read_dst false gemm writes every
    // element of out and reads none, so the length can be set after it.
    unsafe {
        gemm_into(
            (m, n, k),
            out.as_mut_ptr(),
            n,
            xd.as_ptr(),
            k,
            wd.as_ptr(),
            (1, k),
            parallelism,
        );
        out.set_len(m * n);
    }
    let mut out_dims = dims.to_vec();
    *out_dims.last_mut().expect("checked above") = n;
    Ok(Some(Tensor::from_vec(out, out_dims, &Device::Cpu)?))
}

/// `x @ wᵀ` on the stored form of `w` (n, k), exact in f32 (see the module doc): a generation
/// step dequantizes each weight row once for the fused row-dot kernel, a prefill pass a tile
/// of rows at a time for gemm. On a GPU the matrix is dequantized to the activations' dtype
/// and multiplied by cuBLAS.
fn stored_matmul_t(x: &Tensor, w: &QTensor, step: bool) -> Result<Tensor> {
    let (n, k) = w.shape().dims2()?;
    let bytes = match stored_bytes(w)? {
        Some(b) if matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 => b,
        _ => {
            let dense = w.dequantize(x.device())?.to_dtype(x.dtype())?;
            return Ok(x.broadcast_matmul(&dense.t()?)?);
        }
    };
    let mut out_dims = x.dims().to_vec();
    let Some(last) = out_dims.last_mut() else {
        return Err(crate::Error::Internal(
            "a matrix product of a scalar".into(),
        ));
    };
    if *last != k {
        return Err(crate::Error::Internal(format!(
            "a product of ({}) with a ({n}, {k}) matrix",
            x.dims()
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    *last = n;
    let m = x.elem_count() / k;
    let x = x.contiguous()?;
    let (x_storage, x_layout) = x.storage_and_layout();
    let xs = contiguous_f32(&x_storage, x_layout, "a product's input")?;
    let dequantize = row_dequantizer(w.dtype());
    let out = if step {
        let out_t = rowdot::products_t(xs, m, k, n, Rows::Stored { bytes, dequantize });
        Tensor::from_vec(out_t, (n, m), &Device::Cpu)?
            .t()?
            .contiguous()?
    } else {
        Tensor::from_vec(
            tiled_gemm(xs, m, k, n, bytes, dequantize),
            (m, n),
            &Device::Cpu,
        )?
    };
    Ok(out.reshape(out_dims)?)
}

/// (m, n) = x (m, k) · wᵀ, w dequantized a tile of rows at a time into the thread's scratch.
/// The tile holds its rows transposed, (k, rows) row major, so that gemm packs it with
/// contiguous copies ([`transpose`]); each task dequantizes a group of rows into its own
/// buffer and transposes them from there.
fn tiled_gemm(
    xs: &[f32],
    m: usize,
    k: usize,
    n: usize,
    bytes: &[u8],
    dequantize: RowDequantizer,
) -> Vec<f32> {
    // Whole groups per tile, so that every tile row but the last tile's starts a cache line.
    let tile_rows = ((TILE_ELEMS / k) / GROUP * GROUP).clamp(GROUP, n.next_multiple_of(GROUP));
    // Taken, not borrowed: a rayon worker that steals another product while this one waits
    // finds an empty buffer and makes its own instead of aliasing this one.
    let mut scratch = SCRATCH.take();
    // One cache line more than the tile, to start it on a line boundary.
    if scratch.len() < tile_rows * k + 16 {
        scratch = vec![0f32; tile_rows * k + 16];
    }
    let align = scratch.as_ptr().align_offset(64).min(16);
    // Unset until gemm writes it: the tiles' column blocks cover every output column once.
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let parallelism = gemm_parallelism();
    for first in (0..n).step_by(tile_rows) {
        let rows = tile_rows.min(n - first);
        let tile = &mut scratch[align..align + rows * k];
        let tile_ptr = SendPtr(tile.as_mut_ptr());
        (0..rows.div_ceil(GROUP)).into_par_iter().for_each(|g| {
            let r0 = g * GROUP;
            let group = GROUP.min(rows - r0);
            // Nothing inside runs rayon work, so this thread never re-enters the borrow.
            GROUP_ROWS.with_borrow_mut(|buf| {
                buf.resize(GROUP * k, 0.0);
                let buf = &mut buf[..group * k];
                dequantize(bytes, first + r0, k, buf);
                // SAFETY: the tile is (k, rows); this group writes its columns r0..r0 + group
                // of every row, which no other group touches, while the tile is borrowed.
                unsafe { transpose::rows_into_columns(buf, group, k, tile_ptr.at(r0), rows) };
            });
        });
        // SAFETY: dst is out's columns first..first + rows (row stride n) within its capacity,
        // lhs xs (m, k) row major, rhs the tile as (k, rows) row major; all in bounds. gemm
        // writes those columns without reading them (read_dst false).
        unsafe {
            gemm_into(
                (m, rows, k),
                out.as_mut_ptr().add(first),
                n,
                xs.as_ptr(),
                k,
                tile.as_ptr(),
                (rows, 1),
                parallelism,
            );
        }
    }
    SCRATCH.set(scratch);
    // SAFETY: every column block, so every element, was written above.
    unsafe { out.set_len(m * n) };
    out
}

/// A buffer's pointer shared by the tasks that fill disjoint parts of it.
#[derive(Clone, Copy)]
pub(super) struct SendPtr(pub(super) *mut f32);
// SAFETY: each task writes only its own elements (see tiled_gemm and the attention kernel).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The element `offset` from the start; a method so that closures capture the whole
    /// (Sync) wrapper, not its raw pointer field.
    pub(super) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// A token embedding table: dense, or as stored with the looked-up rows dequantized exactly.
pub enum Embedding {
    Dense(Tensor),
    Stored(Arc<QTensor>),
}

impl Embedding {
    /// The rows of `ids` (flat), (ids, hidden), in `dtype`.
    pub fn lookup(&self, ids: &Tensor, dtype: DType) -> Result<Tensor> {
        Ok(match self {
            Embedding::Dense(t) => t.index_select(ids, 0)?,
            Embedding::Stored(q) => q.embedding(ids)?.to_dtype(dtype)?,
        })
    }

    pub fn dims2(&self) -> Result<(usize, usize)> {
        Ok(match self {
            Embedding::Dense(t) => t.dims2()?,
            Embedding::Stored(q) => q.shape().dims2()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn stored_products_equal_dense_ones_on_the_dequantized_matrix() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (300, 512), &dev).unwrap();
        for dtype in [
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
            GgmlDType::Q8_0,
            GgmlDType::Q2K,
            GgmlDType::Q3K,
            GgmlDType::Q4K,
            GgmlDType::Q5K,
            GgmlDType::Q6K,
            GgmlDType::F16,
            GgmlDType::BF16,
            GgmlDType::F32,
        ] {
            let q = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let dense = q.dequantize(&dev).unwrap();
            let stored = Matrix::Stored(q);
            // Generation steps (the fused kernel) and prefill passes (tiled gemm), few rows and
            // many, 2-D and batched input.
            for rows in [1, 3, 16, 17, 70] {
                let x = Tensor::randn(0f32, 1.0, (rows, 512), &dev).unwrap();
                let want = x.matmul(&dense.t().unwrap()).unwrap();
                for step in [true, false] {
                    let got = stored.forward(&x, step).unwrap();
                    let d = max_diff(&got, &want);
                    assert!(d < 1e-3, "{dtype:?}, {rows} rows, step {step}: {d}");
                }
            }
            let x = Tensor::randn(0f32, 1.0, (2, 20, 512), &dev).unwrap();
            let got = stored.forward(&x, false).unwrap();
            assert_eq!(got.dims(), &[2, 20, 300]);
            let want = x.broadcast_matmul(&dense.t().unwrap()).unwrap();
            assert!(max_diff(&got, &want) < 1e-3);
        }
    }

    #[test]
    fn fused_parts_equal_the_separate_products() {
        let dev = Device::Cpu;
        let k = 256;
        let dense: Vec<Tensor> = [128, 64, 64]
            .iter()
            .map(|&n| Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap())
            .collect();
        let stored = |types: [GgmlDType; 3]| -> Vec<Matrix> {
            dense
                .iter()
                .zip(types)
                .map(|(w, t)| Matrix::Stored(Arc::new(QTensor::quantize(w, t).unwrap())))
                .collect()
        };
        let fast = |t: GgmlDType| -> Vec<Matrix> {
            dense
                .iter()
                .map(|w| {
                    Matrix::Fast(QMatMul::from_qtensor(QTensor::quantize(w, t).unwrap()).unwrap())
                })
                .collect()
        };
        use GgmlDType::*;
        // (parts, products once fused): same forms stack, a Q6_K v stays apart from Q4_K q/k.
        let cases: Vec<(Vec<Matrix>, Vec<Matrix>, usize)> = vec![
            (
                dense.iter().cloned().map(Matrix::Dense).collect(),
                dense.iter().cloned().map(Matrix::Dense).collect(),
                1,
            ),
            (stored([Q4_1; 3]), stored([Q4_1; 3]), 1),
            (stored([Q4K, Q4K, Q6K]), stored([Q4K, Q4K, Q6K]), 2),
            (stored([Q5_0, Q8_0, Q5_0]), stored([Q5_0, Q8_0, Q5_0]), 3),
            (fast(Q8_0), fast(Q8_0), 1),
        ];
        for (i, (parts, separate, products)) in cases.into_iter().enumerate() {
            let fused = Fused::new(parts).unwrap();
            assert_eq!(fused.products(), products, "case {i}");
            for (rows, step) in [(1, true), (3, true), (20, false)] {
                let x = Tensor::randn(0f32, 1.0, (rows, 2, k), &dev).unwrap();
                let heads = fused.forward(&x, step, Some(32)).unwrap();
                let flat = fused.forward(&x, step, None).unwrap();
                for ((h, f), m) in heads.iter().zip(&flat).zip(&separate) {
                    let want = m
                        .forward(&x.reshape((rows * 2, k)).unwrap(), step)
                        .unwrap()
                        .reshape(f.dims())
                        .unwrap();
                    assert_eq!(h.dims()[..3], [rows, 2, f.dim(2).unwrap() / 32]);
                    assert_eq!(max_diff(f, &want), 0.0, "case {i}, {rows} rows");
                    let h = h.reshape(f.dims()).unwrap();
                    assert_eq!(max_diff(&h, &want), 0.0, "case {i}, {rows} rows");
                }
            }
        }
    }

    #[test]
    fn tiles_cover_every_output_column() {
        // More rows than one tile holds: the tile boundary must neither drop nor repeat rows.
        let dev = Device::Cpu;
        let k = 1024;
        let n = TILE_ELEMS / k * 2 + 37;
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        let dense = q.dequantize(&dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (20, k), &dev).unwrap();
        let got = Matrix::Stored(q).forward(&x, false).unwrap();
        let want = x.matmul(&dense.t().unwrap()).unwrap();
        assert!(max_diff(&got, &want) < 1e-3);
    }

    #[test]
    fn stored_embedding_rows_are_the_dequantized_rows() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (50, 256), &dev).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q4K).unwrap());
        let dense = Embedding::Dense(q.dequantize(&dev).unwrap());
        let ids = Tensor::new(&[3u32, 49, 0, 3], &dev).unwrap();
        let a = Embedding::Stored(q).lookup(&ids, DType::F32).unwrap();
        let b = dense.lookup(&ids, DType::F32).unwrap();
        assert_eq!(max_diff(&a, &b), 0.0);
    }
}
