//! Fused against separate weight matrices (issue 13): the q/k/v and gate/up projections of
//! the Llama-3.2-3B shape as one matrix each ([`Fused`], what the decoders load) against one
//! product per part ([`Matrix::forward`] on each), on the same input, in a prefill pass
//! (BENCH_ROWS rows, default 512) and in a generation step (4 rows), with the weights dense
//! f32 and as stored in Q4_K (exact compute). The two variants alternate, BENCH_REPS times
//! each (default 5); the medians and their ratio (separate / fused: > 1 means fusing is
//! faster) are printed. Random weights; every product is checked to give the same values
//! both ways.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo bench --bench matmul
//! ```

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use hofbench::engine::models::matrix::{Fused, Matrix};
use std::sync::Arc;
use std::time::Instant;

#[path = "common.rs"]
mod common;
use common::env_usize;

const HIDDEN: usize = 3072;
const KV: usize = 1024;
const FFN: usize = 8192;

/// One random weight matrix (n, k) in the named form.
fn matrix(n: usize, k: usize, stored: bool, seed: u64) -> Matrix {
    let dev = Device::Cpu;
    // Deterministic, cheap values in [-0.05, 0.05).
    let values: Vec<f32> = (0..n * k)
        .map(|i| {
            let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            (h as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect();
    let w = Tensor::from_vec(values, (n, k), &dev).expect("weights");
    if stored {
        Matrix::Stored(Arc::new(
            QTensor::quantize(&w, GgmlDType::Q4K).expect("Q4_K"),
        ))
    } else {
        Matrix::Dense(w)
    }
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// Times separate vs fused products of `shapes` (output widths, all with k = HIDDEN).
fn compare(name: &str, shapes: &[usize], stored: bool, rows: usize, reps: usize) {
    let parts = || -> Vec<Matrix> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, &n)| matrix(n, HIDDEN, stored, i as u64 + 1))
            .collect()
    };
    let separate = parts();
    let fused = Fused::new(parts()).expect("fuse");
    let x = Tensor::randn(0f32, 1.0, (rows, HIDDEN), &Device::Cpu).expect("input");
    let step = rows <= 4;
    let run_separate = || -> Vec<Tensor> {
        separate
            .iter()
            .map(|m| m.forward(&x, step).expect("product"))
            .collect()
    };
    let run_fused = || fused.forward(&x, step, None).expect("fused product");
    // The same values both ways (and a warm-up of each).
    for (a, b) in run_separate().iter().zip(run_fused()) {
        let d = (a - &b).and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>());
        assert_eq!(d.expect("difference"), 0.0, "{name}: fused differs");
    }
    let (mut ts, mut tf) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(run_separate());
        ts.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(run_fused());
        tf.push(t.elapsed().as_secs_f64());
    }
    let (s, f) = (median(ts), median(tf));
    let form = if stored { "Q4_K stored" } else { "f32 dense" };
    println!(
        "{name:<7} {form:<12} rows {rows:>4}  separate {:>9.2} ms  fused {:>9.2} ms  separate/fused {:.2}x ({} -> {} products)",
        s * 1e3,
        f * 1e3,
        s / f,
        shapes.len(),
        fused.products()
    );
}

fn main() {
    // The binary's allocator policy, so that the bench times what `hofbench` runs.
    hofbench::engine::allocator::keep_freed_memory();
    // `cargo bench` passes --bench; nothing else is read from the command line.
    let rows = env_usize("BENCH_ROWS", 512);
    let reps = env_usize("BENCH_REPS", 5);
    for stored in [false, true] {
        for r in [rows, 4] {
            compare("q/k/v", &[HIDDEN, KV, KV], stored, r, reps);
            compare("gate/up", &[FFN, FFN], stored, r, reps);
        }
    }
}
