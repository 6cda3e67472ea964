//! The engine's own GPU kernels (kernels/*.cu, compiled to PTX by build.rs under the `cuda`
//! feature), each a candle custom op whose CPU side is the reference the GPU side is tested
//! against (tests/cuda_kernels.rs, run on a GPU machine by bench/gpu.sh).

use crate::engine::readout::{first_non_finite, label_distribution, LabelDistribution, Unreadable};
use crate::Result;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

#[cfg(feature = "cuda")]
const LABEL_SOFTMAX_PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/label_softmax.ptx"));

/// Fused gather + label softmax over N labels: for each entry of `rows`, that row of a
/// (n, vocab) logits matrix (f32 or bf16) becomes `[P(label 0), …, P(label N-1), mass, first
/// non-finite token or -1]`, f32: each P summed over the label's spellings and renormalised over
/// the N labels, `mass` their share of the whole vocabulary's distribution. A row with a NaN or
/// +inf logit reads `[NaN, …, NaN, token]`; one whose labels all have zero probability
/// `[NaN, …, NaN, 0, -1]`. Output shape (rows.len(), N + 2).
pub struct LabelSoftmax<'a> {
    pub rows: &'a [u32],
    pub labels: &'a [&'a [u32]],
}

impl LabelSoftmax<'_> {
    /// Floats per output row.
    pub fn width(&self) -> usize {
        self.labels.len() + 2
    }

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
        if self.labels.is_empty() {
            candle_core::bail!("label-softmax: no labels");
        }
        if let Some(t) = self
            .labels
            .iter()
            .flat_map(|l| l.iter())
            .find(|&&t| t as usize >= vocab)
        {
            candle_core::bail!("label-softmax: label token {t} outside the vocabulary of {vocab}");
        }
        Ok((n, vocab, start, end))
    }
}

impl CustomOp1 for LabelSoftmax<'_> {
    fn name(&self) -> &'static str {
        "label-softmax"
    }

    /// The reference: `readout::label_distribution`, the CPU scorer's own code, in f64.
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
        let n_labels = self.labels.len();
        let mut out = Vec::with_capacity(self.rows.len() * self.width());
        for &r in self.rows {
            let row = &logits[r as usize * vocab..(r as usize + 1) * vocab];
            match first_non_finite(row) {
                Some(i) => {
                    out.extend(std::iter::repeat_n(f32::NAN, n_labels + 1));
                    out.push(i as f32);
                }
                None => match label_distribution(row, self.labels) {
                    Ok(d) => {
                        out.extend(d.p.iter().map(|&p| p as f32));
                        out.extend([d.mass as f32, -1.0]);
                    }
                    Err(_) => {
                        out.extend(std::iter::repeat_n(f32::NAN, n_labels));
                        out.extend([0.0, -1.0]);
                    }
                },
            }
        }
        Ok((
            CpuStorage::F32(out),
            Shape::from((self.rows.len(), self.width())),
        ))
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
        let width = self.width();
        let out = dev.alloc_zeros::<f32>(m * width)?;
        if m > 0 {
            // The labels' token ids one after another, and where each label's ids end.
            let ids: Vec<u32> = self.labels.iter().flat_map(|l| l.iter().copied()).collect();
            let ends: Vec<u32> = self
                .labels
                .iter()
                .scan(0u32, |end, l| {
                    *end += l.len() as u32;
                    Some(*end)
                })
                .collect();
            let rows = dev.clone_htod(self.rows)?;
            let label_ids = dev.clone_htod(&ids[..])?;
            let label_ends = dev.clone_htod(&ends[..])?;
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
            builder.arg(&label_ids);
            builder.arg(&label_ends);
            candle_core::builder_arg!(builder, self.labels.len() as i32, vocab as i32);
            builder.arg(&out);
            // SAFETY: the kernel reads rows.len() rows of `vocab` values and the label ids up
            // to the last of `label_ends`, each index checked against the logits' shape above,
            // and writes `width` floats per row into `out`.
            unsafe { builder.launch(cfg) }.w()?;
        }
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev),
            Shape::from((m, width)),
        ))
    }
}

/// The label distribution of every row of `logits` (rows, vocab) over `labels`: on the CPU
/// `readout::label_distribution` over each row, in f64 (the results CPU runs have always
/// written); elsewhere the fused kernel, which sends N + 2 floats per row back instead of the
/// whole vocabulary.
pub fn label_readings(
    logits: &Tensor,
    labels: &[&[u32]],
) -> Result<Vec<std::result::Result<LabelDistribution, Unreadable>>> {
    if logits.device().is_cpu() {
        return Ok(logits
            .to_vec2::<f32>()?
            .iter()
            .map(|row| label_distribution(row, labels))
            .collect());
    }
    let rows: Vec<u32> = (0..logits.dim(0)? as u32).collect();
    let n_labels = labels.len();
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
            let (mass, bad) = (reading[n_labels], reading[n_labels + 1]);
            if bad >= 0.0 {
                let token = bad as usize;
                let value = logits
                    .get(r)?
                    .get(token)?
                    .to_dtype(candle_core::DType::F32)?
                    .to_scalar::<f32>()?;
                return Ok(Err(Unreadable::NonFinite { token, value }));
            }
            if mass.is_nan() || mass <= 0.0 {
                return Ok(Err(Unreadable::NoLabelMass));
            }
            Ok(Ok(LabelDistribution {
                p: reading[..n_labels].iter().map(|&p| p as f64).collect(),
                mass: mass as f64,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The op's CPU side (what the GPU kernel is tested against) reads what the CPU scorer
    /// reads, for two labels and three, f32 and bf16, with gathered rows and bad rows.
    #[test]
    fn cpu_reference_is_the_readout() {
        let vocab = 7;
        let mut data: Vec<f32> = (0..4 * vocab)
            .map(|i| ((i * 37) % 11) as f32 * 0.7 - 3.0)
            .collect();
        data[vocab + 5] = f32::NAN;
        data[2 * vocab] = f32::NEG_INFINITY;
        data[2 * vocab + 1] = f32::NEG_INFINITY;
        data[2 * vocab + 4] = f32::NEG_INFINITY;
        let logits = Tensor::from_vec(data.clone(), (4, vocab), &Device::Cpu).unwrap();
        let rows = [3u32, 0, 1, 2, 0];
        let two: [&[u32]; 2] = [&[0, 4], &[1]];
        let three: [&[u32]; 3] = [&[0, 4], &[1], &[6]];
        for labels in [&two[..], &three[..]] {
            let op = LabelSoftmax {
                rows: &rows,
                labels,
            };
            for dtype in [candle_core::DType::F32, candle_core::DType::BF16] {
                let x = logits.to_dtype(dtype).unwrap();
                let got = x.apply_op1_no_bwd(&op).unwrap().to_vec2::<f32>().unwrap();
                let rounded = x
                    .to_dtype(candle_core::DType::F32)
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap();
                assert_eq!(got.len(), rows.len());
                for (reading, &r) in got.iter().zip(&rows) {
                    assert_eq!(reading.len(), labels.len() + 2);
                    let (mass, bad) = (reading[labels.len()], reading[labels.len() + 1]);
                    match label_distribution(&rounded[r as usize], labels) {
                        Ok(d) => {
                            assert_eq!(bad, -1.0);
                            assert_eq!(mass, d.mass as f32);
                            for (g, w) in reading.iter().zip(&d.p) {
                                assert_eq!(*g, *w as f32);
                            }
                        }
                        Err(Unreadable::NonFinite { token, .. }) => {
                            assert_eq!(bad, token as f32);
                            assert!(reading[..=labels.len()].iter().all(|v| v.is_nan()));
                        }
                        Err(Unreadable::NoLabelMass) => {
                            assert_eq!((mass, bad), (0.0, -1.0), "{reading:?}");
                        }
                    }
                }
            }
        }
        // Row 1's NaN and row 2's unreadable labels (A and B both never) come back as such.
        let readings = label_readings(&logits, &two).unwrap();
        assert!(
            matches!(readings[1], Err(Unreadable::NonFinite { token: 5, value }) if value.is_nan()),
            "{:?}",
            readings[1]
        );
        assert_eq!(readings[2], Err(Unreadable::NoLabelMass));
    }
}
