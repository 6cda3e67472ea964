//! Helpers shared by the integration tests that compare hofbench's logits with reference
//! fixtures (each test binary uses only some of them).
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
