//! Helpers shared by the integration tests that compare hofbench's logits with reference
//! fixtures (tests/it and tests/cuda_kernels.rs each use only some of them).
#![allow(dead_code)]

use hofbench::fetch;
use hofbench::models::WeightFormat;
use hofbench::scorer::{score_row, Scorer};
use serde_json::Value;

/// A JSON array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

/// The `rows` of a fixture: one array of token ids per row.
pub fn rows(fx: &Value) -> Vec<Vec<u32>> {
    fx["rows"].as_array().unwrap().iter().map(ids).collect()
}

/// `tests/fixtures/parity/<file>`, made by tests/fixtures/parity/gen_logits_fixture.py.
pub fn parity_fixture(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parity")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("parity fixture")).unwrap()
}

/// The scorer of a model card's fetched weights (tests/run.sh fetches them first).
pub fn card_scorer(card: &str, format: WeightFormat) -> Scorer {
    let path = fetch::find_card(card).unwrap().local_path();
    assert!(
        path.is_file(),
        "{} is missing: run `hofbench fetch {card}` (tests/run.sh does)",
        path.display()
    );
    Scorer::load(&path, &candle_core::Device::Cpu, format).unwrap()
}

/// (p_a, label_mass, argmax) of each row, run in batches of `batch` rows.
pub fn score_all(scorer: &Scorer, rows: &[Vec<u32>], batch: usize) -> Vec<(f64, f64, usize)> {
    let mut out = Vec::new();
    for chunk in rows.chunks(batch) {
        let refs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        let logits = scorer
            .model
            .next_token_logits(&refs)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for row in logits {
            let s = score_row(&row, &scorer.labels).unwrap();
            let argmax = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            out.push((s.p_a, s.label_mass, argmax));
        }
    }
    out
}

/// `--weights quantized` (blocks kept, dequantized exactly before each f32 product) against
/// `--weights f32` on the same card and against HF on a parity fixture's items: P(option)
/// within 1e-5 of f32 and 2e-3 of HF, label mass within 2e-3, HF's top-1 token.
/// Returns the largest |ΔP| against f32 and against HF.
pub fn quantized_storage_matches_f32(card: &str, fx: &Value) -> (f64, f64) {
    let (q, f) = (
        card_scorer(card, WeightFormat::Quantized),
        card_scorer(card, WeightFormat::F32),
    );
    let items = fx["items"].as_array().unwrap();
    let rows: Vec<Vec<u32>> = items.iter().map(|it| ids(&it["input_ids"])).collect();
    let (mut worst_f32, mut worst_hf) = (0.0f64, 0.0f64);
    for (it, ((p_q, mass_q, top_q), (p_f, _, _))) in items.iter().zip(
        score_all(&q, &rows, 4)
            .into_iter()
            .zip(score_all(&f, &rows, 4)),
    ) {
        let hf = &it["hf"];
        let p_hf = hf["p_a"].as_f64().unwrap();
        worst_f32 = worst_f32.max((p_q - p_f).abs());
        worst_hf = worst_hf.max((p_q - p_hf).abs());
        assert!(
            (p_q - p_f).abs() <= 1e-5,
            "{}: quantized {p_q} vs f32 {p_f}",
            it["id"]
        );
        assert!(
            (p_q - p_hf).abs() <= 2e-3,
            "{}: quantized {p_q} vs HF {p_hf}",
            it["id"]
        );
        let mass_hf = hf["label_mass"].as_f64().unwrap();
        assert!((mass_q - mass_hf).abs() <= 2e-3, "{}: label mass", it["id"]);
        assert_eq!(top_q as u64, hf["argmax"].as_u64().unwrap(), "{}", it["id"]);
    }
    eprintln!(
        "{card} quantized storage: max |p_a - f32| = {worst_f32:.1e}, |p_a - HF| = {worst_hf:.1e}"
    );
    (worst_f32, worst_hf)
}
