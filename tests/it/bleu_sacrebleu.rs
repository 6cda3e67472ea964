//! BLEU and chrF against the sacrebleu package (tests/fixtures/bleu/gen_bleu.py).

use hofbench::bleu;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    pairs: Vec<Pair>,
    corpus_bleu: f64,
    corpus_chrf: f64,
}

#[derive(Deserialize)]
struct Pair {
    hyp: String,
    #[serde(rename = "ref")]
    reference: String,
    hyp_13a: String,
    ref_13a: String,
    sentence_bleu: f64,
    sentence_chrf: f64,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bleu/sacrebleu.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn tokenisation_13a_matches() {
    for p in fixture().pairs {
        assert_eq!(bleu::tokenize_13a(&p.hyp), p.hyp_13a, "{:?}", p.hyp);
        assert_eq!(
            bleu::tokenize_13a(&p.reference),
            p.ref_13a,
            "{:?}",
            p.reference
        );
    }
}

#[test]
fn sentence_scores_match() {
    for p in fixture().pairs {
        let b = bleu::sentence_bleu(&p.hyp, &p.reference);
        assert!(
            (b - p.sentence_bleu / 100.0).abs() < 1e-9,
            "{:?}: {b} vs {}",
            p.hyp,
            p.sentence_bleu
        );
        let c = bleu::sentence_chrf(&p.hyp, &p.reference);
        assert!(
            (c - p.sentence_chrf / 100.0).abs() < 1e-9,
            "{:?}: {c} vs {}",
            p.hyp,
            p.sentence_chrf
        );
    }
}

#[test]
fn corpus_scores_match() {
    let fx = fixture();
    let pairs = || {
        fx.pairs
            .iter()
            .map(|p| (p.hyp.as_str(), p.reference.as_str()))
    };
    let b = bleu::corpus_bleu(pairs());
    assert!(
        (b - fx.corpus_bleu / 100.0).abs() < 1e-9,
        "{b} vs {}",
        fx.corpus_bleu
    );
    let c = bleu::corpus_chrf(pairs());
    assert!(
        (c - fx.corpus_chrf / 100.0).abs() < 1e-9,
        "{c} vs {}",
        fx.corpus_chrf
    );
}
