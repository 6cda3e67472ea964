//! The judge on hand-written replies whose answer is known (tests/fixtures/judge/replies.jsonl):
//! English, other languages, translated prompts, persona-style replies, refusals and
//! both-sides answers, judged by the real SmolLM2-135M-Instruct (tests/run.sh fetches it).

use crate::common;

use crate::harness::{hofbench, ok};
use hofbench::engine::models::WeightFormat;
use hofbench::judge::{Judge, JudgeItem, Verdict};
use hofbench::prompts::PromptSet;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Case {
    id: String,
    prompt_id: String,
    kind: String,
    expected: String,
    reply: String,
    request: Option<String>,
    high_action: Option<String>,
    low_action: Option<String>,
}

fn cases() -> Vec<Case> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/judge/replies.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn expected(code: &str) -> Verdict {
    match code {
        "high" => Verdict::High,
        "low" => Verdict::Low,
        "neither" => Verdict::Inconclusive,
        other => panic!("unknown expected verdict {other}"),
    }
}

#[test]
fn judge_on_hand_written_replies_beats_the_floor() {
    let cases = cases();
    assert!(cases.len() >= 30);
    let prompts = PromptSet::builtin().unwrap();
    let items: Vec<JudgeItem> = cases
        .iter()
        .map(|c| {
            let p = prompts
                .items
                .iter()
                .find(|p| p.id == c.prompt_id)
                .unwrap_or_else(|| panic!("{}: no prompt {}", c.id, c.prompt_id));
            JudgeItem {
                request: c.request.as_deref().unwrap_or(&p.request),
                high_action: c.high_action.as_deref().unwrap_or(&p.high_action),
                low_action: c.low_action.as_deref().unwrap_or(&p.low_action),
                reply: &c.reply,
                name: c.id.clone(),
            }
        })
        .collect();
    let scorer = common::card_scorer("smollm2-135m-instruct", WeightFormat::F32);
    let judge = Judge::new(&scorer).unwrap();
    let readings = judge.judge(&items, 8, 4096).unwrap();

    // Confusion: expected → verdict.
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut correct = 0;
    let mut sides_correct = 0;
    let mut sides = 0;
    let mut wrong_side = 0;
    let mut neither_found = 0;
    let mut neither = 0;
    for (c, r) in cases.iter().zip(&readings) {
        let ok = r.verdict == expected(&c.expected);
        println!(
            "{} {:<14} expected {:<7} got {:<12?} via {:<13?} P(h,l,n) = {:.3} {:.3} {:.3} mass {:.3}/{:.3} overlap {:.2}/{:.2}",
            c.id, c.kind, c.expected, r.verdict, r.source, r.p_high, r.p_low, r.p_neither,
            r.label_mass[0], r.label_mass[1], r.overlap_high, r.overlap_low
        );
        correct += usize::from(ok);
        let k = by_kind.entry(&c.kind).or_default();
        k.0 += usize::from(ok);
        k.1 += 1;
        if c.expected == "neither" {
            neither += 1;
            neither_found += usize::from(ok);
        } else {
            sides += 1;
            sides_correct += usize::from(ok);
            wrong_side += usize::from(r.verdict != Verdict::Inconclusive && !ok);
        }
        *confusion
            .entry((c.expected.clone(), format!("{:?}", r.verdict)))
            .or_default() += 1;
    }
    let accuracy = correct as f64 / cases.len() as f64;
    println!("accuracy {correct}/{} = {accuracy:.3}", cases.len());
    println!("on replies that pick a side: {sides_correct}/{sides}");
    for (kind, (ok, n)) in &by_kind {
        println!("  {kind}: {ok}/{n}");
    }
    for ((e, g), n) in &confusion {
        println!("  expected {e} → {g}: {n}");
    }
    // Floors the measured judge meets with margin (measured with SmolLM2: 32/40 in all,
    // 23/31 replies that pick a side, 9/9 refusals and both-sides answers, no reply given
    // the wrong side; see tests/fixtures/README.md). A judge that always says one side gets
    // at most 17/40 of this set, one that always says Neither 9/40, and one that reads the
    // sides the wrong way round fails the wrong-side bound.
    assert!(accuracy >= 0.65, "accuracy {accuracy:.3} below 0.65");
    assert!(
        sides_correct * 100 >= 60 * sides,
        "side accuracy {sides_correct}/{sides} below 0.6"
    );
    assert!(
        neither_found * 10 >= 7 * neither,
        "only {neither_found}/{neither} refusals and both-sides answers found inconclusive"
    );
    assert!(wrong_side <= 2, "{wrong_side} replies given the wrong side");
}

/// End to end on SmolLM2: a logits run and a judged generate run of the same items side by
/// side, then `stats` and `report` over the folder holding both.
#[test]
fn generate_run_is_judged_then_compared_with_the_scorer() {
    let tmp = tempfile::tempdir().unwrap();
    let (logits, generate) = (tmp.path().join("logits"), tmp.path().join("generate"));
    let common = [
        "--quiet",
        "run",
        "--model",
        "smollm2-135m-instruct",
        "--countries",
        "Japan",
        "--dimensions",
        "idv",
        "--limit",
        "2",
    ];
    let mut args = common.to_vec();
    args.extend(["--out", logits.to_str().unwrap()]);
    ok(&hofbench(&args));
    let mut args = common.to_vec();
    args.extend([
        "--mode",
        "generate",
        "--max-new-tokens",
        "24",
        "--seed",
        "3",
        "--out",
        generate.to_str().unwrap(),
    ]);
    ok(&hofbench(&args));
    let rows = hofbench::results::read(&generate.join("results.jsonl"))
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 4, "2 items × 2 rounds");
    for r in &rows {
        let reading = r
            .judge
            .expect("every generate row is judged before it is written");
        assert_eq!(r.p_high, reading.verdict.p_high());
        let sum = reading.p_high + reading.p_low + reading.p_neither;
        assert!((sum - 1.0).abs() < 1e-9, "{reading:?}");
        assert!(r.response.is_some());
    }
    let manifest = std::fs::read_to_string(generate.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"neither_band\""), "{manifest}");

    ok(&hofbench(&[
        "--quiet",
        "stats",
        tmp.path().to_str().unwrap(),
    ]));
    ok(&hofbench(&[
        "--quiet",
        "report",
        tmp.path().to_str().unwrap(),
    ]));
    let stats_dir = tmp.path().join("stats");
    let agreement = std::fs::read_to_string(stats_dir.join("agreement.csv")).unwrap();
    let lines: Vec<&str> = agreement.lines().collect();
    assert_eq!(
        lines[0],
        "model,mode,approach,dimension,n_pairs,n_inconclusive,n_agree,agreement,kappa"
    );
    assert!(
        lines[1].starts_with("smollm2-135m-instruct,generate,personas,idv,4,"),
        "{agreement}"
    );
    let correlations = std::fs::read_to_string(stats_dir.join("by_country.csv")).unwrap();
    assert!(correlations.contains("\nsmollm2-135m-instruct/generate,personas,idv,Japan,"));
    assert!(correlations.contains("\nsmollm2-135m-instruct,personas,idv,Japan,"));
    let fidelity = std::fs::read_to_string(stats_dir.join("language_fidelity.csv")).unwrap();
    assert!(fidelity.contains("smollm2-135m-instruct/generate,personas,eng_Latn,high,language,4,"));
    assert!(stats_dir.join("persona_use.csv").is_file());
    let html = std::fs::read_to_string(tmp.path().join("report/report.html")).unwrap();
    assert!(html.contains("Generate + judge vs the logit scorer"));
    assert!(html.contains("Language fidelity") && html.contains("Persona use"));
}
