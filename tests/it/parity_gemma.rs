//! Gemma-3-270m (GGUF, Q4_K_M) against Hugging Face transformers running the same GGUF
//! dequantized to float32 (fixture made by tests/fixtures/parity/gen_logits_fixture.py
//! gemma3-270m): the plain template, ≥20 personas prompts, P(option) within 1e-5 and the same
//! top-1 token; and batch invariance. llama.cpp's values are recorded in the fixture as a
//! sanity reference only.

use hofbench::engine::loaded_model::LoadedModel;
use hofbench::engine::models::{PrefixGroup, WeightFormat};
use hofbench::engine::readout::score_row;
use serde_json::Value;

use crate::common;
use crate::common::{score_all, top_tokens};

fn fixture() -> Value {
    common::parity_fixture("gemma3-270m_logits.json")
}

fn scorer() -> LoadedModel {
    common::card_scorer("gemma3-270m", WeightFormat::F32)
}

#[test]
fn gemma3_270m_quantized_storage_computes_the_f32_results() {
    // Q4_K/Q6_K blocks kept as stored, dequantized exactly before each f32 product, the
    // 262k-row embedding and tied output head included.
    common::quantized_storage_matches_f32("gemma3-270m", &fixture());
}

fn input_ids(item: &Value) -> Vec<u32> {
    common::ids(&item["input_ids"])
}

#[test]
fn gemma3_270m_matches_hf_float32_and_does_not_depend_on_the_batch() {
    let fx = fixture();
    let scorer = scorer();
    assert!(!scorer.chat.from_model, "a base model: the plain template");
    let label = |k: &str| fx["label_ids"][k].as_u64().unwrap() as u32;
    let mut a = vec![label("A"), label(" A")];
    let mut b = vec![label("B"), label(" B")];
    let (mut ours_a, mut ours_b) = (scorer.labels.a.clone(), scorer.labels.b.clone());
    for v in [&mut a, &mut b, &mut ours_a, &mut ours_b] {
        v.sort();
    }
    assert_eq!((ours_a, ours_b), (a, b));

    let items = fx["items"].as_array().unwrap();
    assert!(items.len() >= 20);
    // The prompt text and ids (one BOS, added by the tokenizer step) are HF's.
    for it in items {
        let content = it["messages"][0]["content"].as_str().unwrap();
        let (text, ids) = scorer.encode_user_turn(content).unwrap();
        assert_eq!(text, it["text"].as_str().unwrap(), "{}", it["id"]);
        assert_eq!(ids, input_ids(it), "{}", it["id"]);
    }

    let rows: Vec<Vec<u32>> = items.iter().map(input_ids).collect();
    let single = score_all(&scorer, &rows, 1);
    let top = top_tokens(&scorer, &rows);
    let (mut worst, mut worst_lc, mut worst_mass) = (0.0f64, 0.0f64, 0.0f64);
    for (it, ((p_a, mass), argmax)) in items.iter().zip(single.iter().zip(&top)) {
        let hf = &it["hf"];
        let d = (p_a - hf["p_a"].as_f64().unwrap()).abs();
        worst = worst.max(d);
        // Measured 7.6e-7 at worst (25 prompts, AVX-512 CPU): about 10x that.
        assert!(d <= 1e-5, "{}: p_a {p_a} vs HF {}", it["id"], hf["p_a"]);
        let dm = (mass - hf["label_mass"].as_f64().unwrap()).abs();
        worst_mass = worst_mass.max(dm);
        // Measured 5.4e-7 at worst.
        assert!(dm <= 1e-5, "{}: label mass {mass} vs HF", it["id"]);
        assert_eq!(
            *argmax as u64,
            hf["argmax"].as_u64().unwrap(),
            "{}: top-1 token",
            it["id"]
        );
        worst_lc = worst_lc.max((p_a - it["llama_cpp"]["p_a"].as_f64().unwrap()).abs());
    }
    eprintln!(
        "gemma3-270m: max |p_a - HF f32| = {worst:.2e}, label mass {worst_mass:.2e}, |p_a - llama.cpp Q4_K_M| = {worst_lc:.3} (sanity only) over {} prompts",
        items.len()
    );

    // Batch invariance: sizes 3 and 8 with different neighbours, and a reversed order.
    for batch in [3, 8] {
        for (x, y) in single.iter().zip(score_all(&scorer, &rows, batch)) {
            assert!(
                (x.0 - y.0).abs() <= 1e-5,
                "batch {batch}: {} vs {}",
                x.0,
                y.0
            );
        }
    }
    let reversed: Vec<Vec<u32>> = rows.iter().rev().take(8).cloned().collect();
    let rev = score_all(&scorer, &reversed, 4);
    for (x, y) in single.iter().rev().zip(&rev) {
        assert!((x.0 - y.0).abs() <= 1e-5, "reversed: {} vs {}", x.0, y.0);
    }

    // The two option orders of an item share their prefix: run once, the same probabilities
    // as the model's plain padded pass (`score_all`, the scorer's path, always shares it).
    let refs: Vec<&[u32]> = rows.iter().take(4).map(Vec::as_slice).collect();
    let plain = scorer
        .model
        .next_token_logits(&refs)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let groups: Vec<PrefixGroup> = refs.chunks(2).map(PrefixGroup::split).collect();
    assert!(groups.iter().all(|g| !g.prefix.is_empty()));
    let grouped = scorer
        .model
        .next_token_logits_grouped(&groups)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (g, f) in grouped.iter().zip(&plain) {
        let p = score_row(g, &scorer.labels).unwrap().p_a;
        let q = score_row(f, &scorer.labels).unwrap().p_a;
        assert!((p - q).abs() <= 1e-5, "shared prefix: {p} vs {q}");
    }
}
