//! The engine's own GPU kernels (kernels/*.cu, compiled to PTX by build.rs under the `cuda`
//! feature), each a candle custom op whose CPU side is the reference the GPU side is tested
//! against (tests/cuda_kernels.rs, run on a GPU machine by bench/gpu.sh).

use crate::scorer::{first_non_finite, score_row, LabelTokens, OptionScore};
use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

#[cfg(feature = "cuda")]
const LABEL_SOFTMAX_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/label_softmax.ptx"));

/// Fused gather + label softmax: for each entry of `rows`, that row of a (n, vocab) logits
/// matrix (f32 or bf16) becomes `[P(A) / (P(A) + P(B)), P(A) + P(B), first non-finite token or
/// -1]`, f32, P summed over each label's spellings and normalised over the whole vocabulary.
/// A row with a NaN or +inf logit reads `[NaN, NaN, token]`; one whose labels both have zero
/// probability `[NaN, 0, -1]`. Output shape (rows.len(), 3).
pub struct LabelSoftmax<'a> {
    pub rows: &'a [u32],
    pub labels: &'a LabelTokens,
}

impl LabelSoftmax<'_> {
    fn check(&self, layout: &Layout) -> candle_core::Result<(usize, usize, usize, usize)> {
        let (n, vocab) = layout.shape().dims2()?;
        let (start, end) =
            layout
                .contiguous_offsets()
                .ok_or(candle_core::Error::RequiresContiguous {
                    op: "label-softmax",
                })?;
        // The kernel reads these indices unchecked.
        if let Some(r) = self.rows.iter().find(|&&r| r as usize >= n) {
            candle_core::bail!("label-softmax: row {r} of {n}");
        }
        let labels = self.labels.a.iter().chain(&self.labels.b);
        if let Some(t) = labels.clone().find(|&&t| t as usize >= vocab) {
            candle_core::bail!("label-softmax: label token {t} outside the vocabulary of {vocab}");
        }
        Ok((n, vocab, start, end))
    }
}

impl CustomOp1 for LabelSoftmax<'_> {
    fn name(&self) -> &'static str {
        "label-softmax"
    }

    /// The reference: `scorer::score_row`, the CPU scorer's own code, in f64.
    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, vocab, start, end) = self.check(layout)?;
        let logits: std::borrow::Cow<[f32]> = match storage {
            CpuStorage::F32(v) => std::borrow::Cow::Borrowed(&v[start..end]),
            CpuStorage::BF16(v) => v[start..end].iter().map(|x| x.to_f32()).collect(),
            other => {
                use candle_core::backend::BackendStorage;
                candle_core::bail!("label-softmax: unsupported dtype {:?}", other.dtype())
            }
        };
        let mut out = Vec::with_capacity(self.rows.len() * 3);
        for &r in self.rows {
            let row = &logits[r as usize * vocab..(r as usize + 1) * vocab];
            out.extend(match first_non_finite(row) {
                Some(i) => [f32::NAN, f32::NAN, i as f32],
                None => match score_row(row, self.labels) {
                    Ok(s) => [s.p_a as f32, s.label_mass as f32, -1.0],
                    Err(_) => [f32::NAN, 0.0, -1.0],
                },
            });
        }
        Ok((CpuStorage::F32(out), Shape::from((self.rows.len(), 3))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::WrapErr;
        use candle_core::{CudaStorage, DType};

        let (_, vocab, start, end) = self.check(layout)?;
        let dev = storage.device().clone();
        let m = self.rows.len();
        let out = dev.alloc_zeros::<f32>(m * 3)?;
        if m > 0 {
            let rows = dev.clone_htod(self.rows)?;
            let a = dev.clone_htod(&self.labels.a[..])?;
            let b = dev.clone_htod(&self.labels.b[..])?;
            let name = match storage.dtype() {
                DType::F32 => "label_softmax_f32",
                DType::BF16 => "label_softmax_bf16",
                other => candle_core::bail!("label-softmax: unsupported dtype {other:?}"),
            };
            let func =
                dev.get_or_load_custom_func(name, "hofbench_label_softmax", LABEL_SOFTMAX_PTX)?;
            let cfg = LaunchConfig {
                grid_dim: (m as u32, 1, 1),
                // BLOCK in kernels/label_softmax.cu.
                block_dim: (512, 1, 1),
                shared_mem_bytes: 0,
            };
            let f32_logits;
            let bf16_logits;
            let mut builder = func.builder();
            match storage.dtype() {
                DType::F32 => {
                    f32_logits = storage.as_cuda_slice::<f32>()?.slice(start..end);
                    builder.arg(&f32_logits);
                }
                _ => {
                    bf16_logits = storage.as_cuda_slice::<half::bf16>()?.slice(start..end);
                    builder.arg(&bf16_logits);
                }
            }
            builder.arg(&rows);
            builder.arg(&a);
            candle_core::builder_arg!(builder, self.labels.a.len() as i32);
            builder.arg(&b);
            candle_core::builder_arg!(builder, self.labels.b.len() as i32, vocab as i32);
            builder.arg(&out);
            // SAFETY: the kernel reads rows.len() rows of `vocab` values, each index checked
            // against the logits' shape above, and writes 3 floats per row into `out`.
            unsafe { builder.launch(cfg) }.w()?;
        }
        Ok((CudaStorage::wrap_cuda_slice(out, dev), Shape::from((m, 3))))
    }
}

/// The scorer's reading of every row of `logits` (rows, vocab): on the CPU `score_row` over
/// each row, in f64 (the results CPU runs have always written); elsewhere the fused kernel,
/// which sends 3 floats per row back instead of the whole vocabulary.
pub fn score_rows(
    logits: &Tensor,
    labels: &LabelTokens,
) -> Result<Vec<std::result::Result<OptionScore, String>>> {
    if logits.device().is_cpu() {
        return Ok(logits
            .to_vec2::<f32>()?
            .iter()
            .map(|row| score_row(row, labels))
            .collect());
    }
    let rows: Vec<u32> = (0..logits.dim(0)? as u32).collect();
    let readings = logits
        .contiguous()?
        .apply_op1_no_bwd(&LabelSoftmax {
            rows: &rows,
            labels,
        })?
        .to_vec2::<f32>()?;
    readings
        .iter()
        .enumerate()
        .map(|(r, reading)| {
            let (p_a, mass, bad) = (reading[0], reading[1], reading[2]);
            if bad >= 0.0 {
                let token = bad as usize;
                let value = logits
                    .get(r)?
                    .get(token)?
                    .to_dtype(candle_core::DType::F32)?;
                return Ok(Err(format!(
                    "logit of token {token} is {}",
                    value.to_scalar::<f32>()?
                )));
            }
            if mass.is_nan() || mass <= 0.0 {
                return Ok(Err("both labels have zero probability".into()));
            }
            Ok(Ok(OptionScore {
                p_a: p_a as f64,
                label_mass: mass as f64,
            }))
        })
        .collect()
}
