//! Helpers shared by the integration tests that compare hofbench's logits with reference
//! fixtures (tests/it and tests/cuda_kernels.rs each use only some of them).
#![allow(dead_code)]

use hofbench::engine::loaded_model::LoadedModel;
use hofbench::engine::models::WeightFormat;
use hofbench::fetch;
use hofbench::item_scorer::{EncodedItem, ItemScorer};
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
pub fn card_scorer(card: &str, format: WeightFormat) -> LoadedModel {
    let path = fetch::find_card(card).unwrap().local_path();
    assert!(
        path.is_file(),
        "{} is missing: run `hofbench fetch {card}` (tests/run.sh does)",
        path.display()
    );
    LoadedModel::load(&path, &candle_core::Device::Cpu, format).unwrap()
}

/// (P(A), label mass) of each row through the production path, `ItemScorer::score`, `batch`
/// items per forward pass: consecutive rows are an item's two orders (their common prefix run
/// once), an odd last row is paired with itself. Order 0 reads P(high) as P(A), order 1 as
/// 1 - P(A), so row 2k's P(A) is its item's `p_high_by_order[0]` and row 2k + 1's is
/// 1 - `p_high_by_order[1]`.
pub fn score_all(scorer: &LoadedModel, rows: &[Vec<u32>], batch: usize) -> Vec<(f64, f64)> {
    let items: Vec<EncodedItem> = rows
        .chunks(2)
        .enumerate()
        .map(|(k, pair)| EncodedItem {
            orders: [&pair[0][..], &pair[pair.len() - 1][..]],
            name: format!("rows {} and {}", 2 * k, 2 * k + pair.len() - 1),
        })
        .collect();
    let scorer = ItemScorer::new(scorer);
    let mut out = Vec::with_capacity(rows.len());
    for chunk in items.chunks(batch) {
        for score in scorer.score(chunk).unwrap() {
            out.push((score.p_high_by_order[0], score.label_mass[0]));
            out.push((1.0 - score.p_high_by_order[1], score.label_mass[1]));
        }
    }
    out.truncate(rows.len());
    out
}

/// The most likely next token of each row (`LoadedModel::next_token_logits`, 8 rows a pass).
pub fn top_tokens(scorer: &LoadedModel, rows: &[Vec<u32>]) -> Vec<usize> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(8) {
        let refs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        let logits = scorer
            .next_token_logits(&refs, 1)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        out.extend(logits.iter().map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0
        }));
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
    let scores = score_all(&q, &rows, 4)
        .into_iter()
        .zip(top_tokens(&q, &rows))
        .zip(score_all(&f, &rows, 4));
    for (it, (((p_q, mass_q), top_q), (p_f, _))) in items.iter().zip(scores) {
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
