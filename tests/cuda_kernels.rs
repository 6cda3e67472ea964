//! The engine on a CUDA GPU against its CPU reference: the fused label-softmax kernel
//! (kernels/label_softmax.cu) against `readout::label_distribution`, over two labels and three, and the decoder on the GPU against
//! the same Hugging Face fixtures the CPU tests use (tests/fixtures/families, quant).
//!
//! Needs `--features cuda` and a GPU. bench/build-cuda.sh builds this binary with `--no-run`
//! and bench/gpu.sh runs it from the repository root on the GPU machine (no cargo there).
#![cfg(feature = "cuda")]

#[path = "it/common.rs"]
mod common;
use candle_core::{DType, Device, Tensor};
use hofbench::engine::gguf::GgufFile;
use hofbench::engine::kernels::{label_readings, LabelSoftmax};
use hofbench::engine::models::{self, CausalLm, PrefixGroup, WeightFormat};
use hofbench::engine::readout::Unreadable;
use serde_json::Value;
use std::path::PathBuf;

fn gpu() -> Device {
    Device::new_cuda(0).expect("CUDA GPU 0")
}

/// tests/fixtures, from the working directory (the GPU machine runs this binary from a copy
/// of the repository) or from where it was built.
fn fixtures() -> PathBuf {
    let here = PathBuf::from("tests/fixtures");
    if here.is_dir() {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// Seeded logits: rows of growing spread (0.1 to 30, so some rows put nearly all mass on one
/// token), a few -inf entries ("never"), and in the last row the labels as the top tokens.
fn seeded_logits(rows: usize, vocab: usize, labels: &[&[u32]], seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (state ^ (state >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        ((z ^ (z >> 29)) >> 11) as f32 / (1u64 << 53) as f32
    };
    let mut out = Vec::with_capacity(rows * vocab);
    for r in 0..rows {
        let spread = 0.1 * 300f32.powf(r as f32 / rows.max(2) as f32);
        for i in 0..vocab {
            let u = uniform();
            out.push(if u < 0.001 && i > 7 {
                f32::NEG_INFINITY
            } else {
                (uniform() - 0.5) * 2.0 * spread
            });
        }
    }
    let last = (rows - 1) * vocab;
    for (k, &id) in labels.iter().flat_map(|l| l.iter()).enumerate() {
        out[last + id as usize] = 40.0 - k as f32;
    }
    out
}

fn readings(logits: &Tensor, rows: &[u32], labels: &[&[u32]]) -> Vec<Vec<f32>> {
    logits
        .apply_op1_no_bwd(&LabelSoftmax { rows, labels })
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
}

/// GPU readings against the CPU reference (N labels, then the mass, then the first bad token):
/// the same first bad token, each P within 1e-5, the label mass within 1e-5 relative.
fn assert_close(what: &str, gpu: &[Vec<f32>], cpu: &[Vec<f32>]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}");
    for (r, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        assert_eq!(g.len(), c.len(), "{what} row {r}: width");
        let n = c.len() - 2;
        assert_eq!(g[n + 1], c[n + 1], "{what} row {r}: first non-finite token");
        if c[n + 1] >= 0.0 {
            continue;
        }
        if c[n] == 0.0 {
            assert_eq!(g[n], 0.0, "{what} row {r}: zero label mass");
            continue;
        }
        for l in 0..n {
            assert!(
                (g[l] - c[l]).abs() <= 1e-5,
                "{what} row {r}: P(label {l}) {g:?} vs {c:?}"
            );
        }
        assert!(
            (g[n] - c[n]).abs() <= 1e-5 * c[n].abs().max(1e-30),
            "{what} row {r}: label mass {g:?} vs {c:?}"
        );
    }
}

#[test]
fn label_softmax_matches_the_cpu_scorer() {
    let gpu = gpu();
    // Vocabularies of the supported families (SmolLM2, Llama 3, Gemma 3) and an odd one.
    for (vocab, seed) in [(1003, 1), (49_152, 2), (128_256, 3), (262_144, 4)] {
        let (a, b, neither) = (vec![1, vocab as u32 - 1], vec![2], vec![5, 6]);
        // The scorer's A and B, and the judge's A, B and Neither.
        let two: [&[u32]; 2] = [&a, &b];
        let three: [&[u32]; 3] = [&a, &b, &neither];
        for labels in [&two[..], &three[..]] {
            let rows = 9;
            let data = seeded_logits(rows, vocab, labels, seed);
            let cpu_logits = Tensor::from_vec(data, (rows, vocab), &Device::Cpu).unwrap();
            let gpu_logits = cpu_logits.to_device(&gpu).unwrap();
            // A gather that repeats and reorders rows.
            let gather = [8u32, 0, 3, 3, 7, 1, 2, 4, 5, 6];
            for dtype in [DType::F32, DType::BF16] {
                let c = readings(&cpu_logits.to_dtype(dtype).unwrap(), &gather, labels);
                let g = readings(&gpu_logits.to_dtype(dtype).unwrap(), &gather, labels);
                let what = format!("vocab {vocab} {} labels {dtype:?}", labels.len());
                assert_close(&what, &g, &c);
                // The labels top the last row: nearly all the mass, on label 0 most.
                let n = labels.len();
                assert!(c[0][n] > 0.99 && c[0][0] > 0.6, "{c:?}");
            }
        }
    }
}

#[test]
fn label_softmax_flags_the_first_non_finite_logit_like_the_cpu_scorer() {
    let (a, b, neither) = (vec![10u32], vec![20u32], vec![30u32]);
    let vocab = 5000;
    let mut data = vec![0.5f32; 4 * vocab];
    data[700] = f32::INFINITY;
    data[500] = f32::NAN;
    data[vocab + 3] = f32::INFINITY;
    // Row 2: A and B never, the rest finite.
    data[2 * vocab + 10] = f32::NEG_INFINITY;
    data[2 * vocab + 20] = f32::NEG_INFINITY;
    let cpu_logits = Tensor::from_vec(data, (4, vocab), &Device::Cpu).unwrap();
    let gpu_logits = cpu_logits.to_device(&gpu()).unwrap();
    let all = [0u32, 1, 2, 3];
    let two: [&[u32]; 2] = [&a, &b];
    let three: [&[u32]; 3] = [&a, &b, &neither];
    for labels in [&two[..], &three[..]] {
        let n = labels.len();
        let (c, g) = (
            readings(&cpu_logits, &all, labels),
            readings(&gpu_logits, &all, labels),
        );
        assert_close("non-finite", &g, &c);
        assert_eq!(
            (c[0][n + 1], c[1][n + 1], c[2][n + 1], c[3][n + 1]),
            (500.0, 3.0, -1.0, -1.0)
        );
        // The scorer's readings are the same on both devices.
        let cpu_scores = label_readings(&cpu_logits, labels).unwrap();
        let gpu_scores = label_readings(&gpu_logits, labels).unwrap();
        for (c, g) in cpu_scores.iter().zip(&gpu_scores) {
            match (c, g) {
                (Err(c), Err(g)) => assert_eq!(c.to_string(), g.to_string()),
                (Ok(c), Ok(g)) => {
                    for (pc, pg) in c.p.iter().zip(&g.p) {
                        assert!((pc - pg).abs() <= 1e-6, "{c:?} vs {g:?}");
                    }
                }
                _ => panic!("CPU {c:?} vs GPU {g:?}"),
            }
        }
        assert_eq!(
            gpu_scores[0].as_ref().unwrap_err().to_string(),
            "logit of token 500 is NaN"
        );
        // Two labels: both never is unreadable; with Neither finite it is readable.
        if n == 2 {
            assert_eq!(gpu_scores[2], Err(Unreadable::NoLabelMass));
        } else {
            let d = gpu_scores[2].as_ref().unwrap();
            assert!(d.p[2] > 0.999 && d.p[0] == 0.0, "{d:?}");
        }
    }
}

fn last_logits(model: &dyn CausalLm, rows: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    model.next_token_logits(&refs).unwrap().to_vec2().unwrap()
}

fn max_diff(ours: &[Vec<f32>], reference: &Value) -> f32 {
    let reference = reference.as_array().unwrap();
    assert_eq!(ours.len(), reference.len());
    let mut worst = 0.0f32;
    for (o, r) in ours.iter().zip(reference) {
        let r = r.as_array().unwrap();
        assert_eq!(o.len(), r.len());
        for (a, b) in o.iter().zip(r) {
            worst = worst.max((a - b.as_f64().unwrap() as f32).abs());
        }
    }
    worst
}

#[test]
fn every_family_on_the_gpu_matches_transformers() {
    let dir = fixtures().join("families");
    let fx: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let rows = common::rows(&fx);
    let gpu = gpu();
    for family in ["llama", "llama3", "gemma", "gemma2", "gemma3"] {
        let reference = &fx["families"][family]["last_logits"];
        // f32 on the GPU: the CPU test's bound.
        let model = models::load_hf(&dir.join(family), &gpu, WeightFormat::F32).unwrap();
        let d32 = max_diff(&last_logits(model.as_ref(), &rows), reference);
        // The prefix-shared path (rows 0 and 2 share 12 tokens, beyond the sliding windows).
        let group = PrefixGroup::split(&[&rows[0], &rows[2]]);
        let grouped: Vec<Vec<f32>> = model
            .next_token_logits_grouped(&[group])
            .unwrap()
            .to_vec2()
            .unwrap();
        let pair = Value::Array(vec![reference[0].clone(), reference[2].clone()]);
        let dg = max_diff(&grouped, &pair);
        // bf16 on the GPU: no worse than 4x what bf16 rounding costs on the CPU.
        let bf16_gpu = models::load_hf(&dir.join(family), &gpu, WeightFormat::Bf16).unwrap();
        let bf16_cpu =
            models::load_hf(&dir.join(family), &Device::Cpu, WeightFormat::Bf16).unwrap();
        let d16 = max_diff(&last_logits(bf16_gpu.as_ref(), &rows), reference);
        let d16_cpu = max_diff(&last_logits(bf16_cpu.as_ref(), &rows), reference);
        eprintln!(
            "{family}: max |logit - transformers| f32 {d32:.2e}, prefix-shared {dg:.2e}, \
             bf16 {d16:.2e} (CPU bf16 {d16_cpu:.2e})"
        );
        assert!(d32 <= 1e-4 && dg <= 1e-4, "{family}: f32 on the GPU");
        assert!(d16 <= 4.0 * d16_cpu.max(1e-3), "{family}: bf16 on the GPU");
    }
}

#[test]
fn quantized_gguf_on_the_gpu_matches_transformers() {
    let dir = fixtures().join("quant");
    let fx: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let rows = common::rows(&fx);
    let gpu = gpu();
    for name in [
        "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k",
    ] {
        let model_fx = &fx["models"][name];
        let path = dir.join(model_fx["file"].as_str().unwrap());
        let reference = &model_fx["hf_last_logits"];
        let mut g = GgufFile::open(&path).unwrap();
        let dense = models::load_gguf(&mut g, &gpu, WeightFormat::F32).unwrap();
        let d32 = max_diff(&last_logits(dense.as_ref(), &rows), reference);
        let mut g = GgufFile::open(&path).unwrap();
        let quantized = models::load_gguf(&mut g, &gpu, WeightFormat::Quantized).unwrap();
        let dq = max_diff(&last_logits(quantized.as_ref(), &rows), reference);
        let mut g = GgufFile::open(&path).unwrap();
        let fast = models::load_gguf(&mut g, &gpu, WeightFormat::FastQuantized).unwrap();
        let dfast = max_diff(&last_logits(fast.as_ref(), &rows), reference);
        // What bf16 activations alone cost, measured on the CPU.
        let mut g = GgufFile::open(&path).unwrap();
        let bf16_cpu = models::load_gguf(&mut g, &Device::Cpu, WeightFormat::Bf16).unwrap();
        let d16_cpu = max_diff(&last_logits(bf16_cpu.as_ref(), &rows), reference);
        eprintln!(
            "{name:5}: max |logit - HF| f32 {d32:.2e}, quantized (exact dequantization, bf16 \
             cuBLAS) {dq:.2e}, fast quantized (MMQ) {dfast:.2e} (CPU bf16 {d16_cpu:.2e})"
        );
        assert!(d32 <= 1e-4, "{name}: f32 weights on the GPU");
        // Exactly dequantized weights: only the bf16 activations (and the weights rounded to
        // bf16 for cuBLAS) separate it from HF.
        assert!(
            dq <= 1e-4 + 2.0 * d16_cpu,
            "{name}: quantized storage on the GPU"
        );
        // The CPU test's bound for quantized matmuls (activations rounded to 8 bits inside
        // them), plus what the bf16 activations between the matmuls cost.
        assert!(
            dfast <= 0.1 + 4.0 * d16_cpu,
            "{name}: quantized matmul on the GPU"
        );
    }
}
