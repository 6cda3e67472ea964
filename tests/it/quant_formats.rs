//! Every GGUF tensor type hofbench reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K):
//! tiny random Llama GGUFs made by llama.cpp's quantizer, last-position logits of a padded batch
//! against Hugging Face transformers loading the same file dequantized to float32 (fixture made
//! by tests/fixtures/quant/gen_quant_fixtures.py).

use crate::common::rows;
use candle_core::Device;
use hofbench::engine::gguf::GgufFile;
use hofbench::engine::loaded_model::LoadedModel;
use hofbench::engine::models::{self, WeightFormat};
use serde_json::Value;
use std::path::PathBuf;

const TYPES: [&str; 9] = [
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k",
];

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quant"))
}

fn reference() -> Value {
    let path = dir().join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("quant fixture")).unwrap()
}

/// Last-position logits of the fixture's rows, run as one padded batch.
fn logits(name: &str, format: WeightFormat, fx: &Value) -> Vec<Vec<f32>> {
    let path = dir().join(fx["models"][name]["file"].as_str().unwrap());
    let mut gguf = GgufFile::open(&path).unwrap();
    let model = models::load_gguf(&mut gguf, &Device::Cpu, format).unwrap();
    let rows = rows(fx);
    let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    model
        .next_token_logits(&refs)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
}

fn logit_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len(), "vocabulary size");
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs());
        }
    }
    worst
}

/// Largest |ours - HF| over all rows and vocabulary entries, the rows run as one padded batch.
fn max_logit_diff(name: &str, format: WeightFormat, fx: &Value) -> f32 {
    let ours = logits(name, format, fx);
    let hf: Vec<Vec<f32>> = fx["models"][name]["hf_last_logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    logit_diff(&ours, &hf)
}

#[test]
fn fixtures_hold_the_tensor_type_they_are_named_after() {
    let fx = reference();
    for name in TYPES {
        let types = fx["models"][name]["tensor_types"].as_object().unwrap();
        let want = name.to_uppercase();
        let matrices = types
            .iter()
            .filter(|(k, _)| !k.contains("norm"))
            .collect::<Vec<_>>();
        assert!(!matrices.is_empty());
        for (tensor, ty) in matrices {
            assert_eq!(ty.as_str().unwrap(), want, "{name}: {tensor}");
        }
    }
}

#[test]
fn f32_dequantized_logits_match_hf_in_every_tensor_type() {
    let fx = reference();
    for name in TYPES {
        let d = max_logit_diff(name, WeightFormat::F32, &fx);
        eprintln!("{name:5} f32 weights: max |logit - HF| = {d:.2e}");
        assert!(d <= 1e-4, "{name}: max logit difference {d} vs HF float32");
    }
}

#[test]
fn quantized_storage_logits_match_hf_and_f32_in_every_tensor_type() {
    // The blocks stay as stored and are dequantized exactly before each f32 product: HF's
    // float32 logits as closely as the f32 weights, and the f32 weights' own logits.
    let fx = reference();
    for name in TYPES {
        let d = max_logit_diff(name, WeightFormat::Quantized, &fx);
        eprintln!("{name:5} quantized:   max |logit - HF| = {d:.2e}");
        assert!(d <= 1e-4, "{name}: max logit difference {d} vs HF float32");
        let vs_f32 = logit_diff(
            &logits(name, WeightFormat::Quantized, &fx),
            &logits(name, WeightFormat::F32, &fx),
        );
        assert!(
            vs_f32 <= 2e-5,
            "{name}: quantized vs f32 logits differ by {vs_f32}"
        );
    }
}

#[test]
fn fast_quantized_matmul_logits_stay_near_hf_in_every_tensor_type() {
    // candle's quantized CPU matmul rounds activations to 8 bits for the block types (as
    // llama.cpp does), so it is close, not exact; F32/F16/BF16 run as plain matmuls.
    let fx = reference();
    for name in TYPES {
        let d = max_logit_diff(name, WeightFormat::FastQuantized, &fx);
        eprintln!("{name:5} fast quantized: max |logit - HF| = {d:.2e}");
        let bound = if name.starts_with('f') || name == "bf16" {
            1e-4
        } else {
            0.1
        };
        assert!(d <= bound, "{name}: max logit difference {d} vs HF float32");
    }
}

#[test]
fn the_scorer_loads_a_fixture_with_its_tokenizer() {
    let scorer = LoadedModel::load(
        &dir().join("tiny-q4_k.gguf"),
        &Device::Cpu,
        WeightFormat::F32,
    )
    .unwrap();
    assert_eq!(scorer.labels.a, [3, 5]);
    assert_eq!(scorer.labels.b, [4, 6]);
    let ids = scorer.tokenizer.encode("A B").unwrap();
    assert_eq!(ids, [3, 6]);
}
