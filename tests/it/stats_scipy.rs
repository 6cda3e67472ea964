//! `hofbench stats` against scipy/numpy on a synthetic results file (fixture and generator in
//! tests/fixtures/stats/): every column of correlations.csv, by_country.csv, bootstrap.csv,
//! classification.csv, diagnostics.csv, translation_quality.csv and correlations_bleu_ok.csv,
//! for personas and multilingual rows, inconclusive answers, a tier with fewer than 3
//! countries, tied shares and low-BLEU translations.

use crate::harness::read_csv;
use hofbench::stats::{self, Options};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

type Row = HashMap<String, String>;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stats")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Analyse the fixture into a temporary folder with the generator's bootstrap settings.
fn analysed(expected: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("results.jsonl"), fixture("results.jsonl")).unwrap();
    let options = Options {
        seed: expected["seed"].as_u64().unwrap(),
        resamples: expected["resamples"].as_u64().unwrap() as usize,
    };
    stats::run_with(dir.path(), options).unwrap();
    dir
}

fn find<'a>(rows: &'a [Row], want: &Value, keys: &[&str]) -> &'a Row {
    let matches: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            keys.iter()
                .all(|k| r[*k] == want[*k].as_str().unwrap_or_else(|| panic!("{k} in {want}")))
        })
        .collect();
    assert_eq!(matches.len(), 1, "rows matching {want}");
    matches[0]
}

/// Compare a CSV cell with the reference: null ↔ NaN; otherwise within `abs` or `rel`.
fn check(row: &Row, col: &str, want: &Value, abs: f64, rel: f64, what: &str) {
    let ours: f64 = row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {col} = {:?}", row[col]));
    match want {
        Value::Null => assert!(ours.is_nan(), "{what}: {col} {ours}, reference null"),
        Value::String(s) if s == "inf" => assert_eq!(ours, f64::INFINITY, "{what}: {col}"),
        Value::Bool(b) => assert_eq!(ours, f64::from(u8::from(*b)), "{what}: {col}"),
        _ => {
            let w = want.as_f64().unwrap();
            let err = (ours - w).abs();
            assert!(
                err <= abs || err <= rel * w.abs(),
                "{what}: {col} {ours} vs reference {w} (|Δ| {err:e})"
            );
        }
    }
}

/// Check a correlations table against the reference rows; returns how many are defined.
fn check_correlations(path: &Path, want: &Value) -> usize {
    let corr = read_csv(path);
    let want = want.as_array().unwrap();
    assert_eq!(corr.len(), want.len());
    let mut defined = 0;
    for w in want {
        let row = find(
            &corr,
            w,
            &["model", "approach", "dimension", "tier", "level"],
        );
        let what = format!(
            "{}/{}/{}/{}/{}",
            row["model"], row["approach"], row["dimension"], row["tier"], row["level"]
        );
        assert_eq!(row["n"], w["n"].to_string(), "{what}");
        check(row, "pearson_r", &w["pearson_r"], VALUE, 0.0, &what);
        check(row, "spearman_rho", &w["spearman_rho"], VALUE, 0.0, &what);
        check(row, "kendall_tau", &w["kendall_tau"], VALUE, 0.0, &what);
        for col in [
            "pearson_p",
            "pearson_p_paper",
            "spearman_p",
            "p_bh",
            "kendall_p",
        ] {
            check(row, col, &w[col], P.0, P.1, &what);
        }
        check(
            row,
            "pearson_ci_low",
            &w["pearson_ci"][0],
            VALUE,
            0.0,
            &what,
        );
        check(
            row,
            "pearson_ci_high",
            &w["pearson_ci"][1],
            VALUE,
            0.0,
            &what,
        );
        defined += usize::from(!w["pearson_r"].is_null());
    }
    defined
}

const EXACT: f64 = 1e-12;
const VALUE: f64 = 1e-9;
/// p-values: within 1e-9 relative (or 1e-300 absolute, for underflow to 0).
const P: (f64, f64) = (1e-300, 1e-9);

#[test]
fn every_statistic_matches_scipy() {
    let expected: Value = serde_json::from_str(&fixture("expected.json")).unwrap();
    let dir = analysed(&expected);
    let out = dir.path().join("stats");

    let text = std::fs::read_to_string(out.join("correlations.csv")).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "model,approach,dimension,tier,level,n,pearson_r,pearson_p,pearson_p_paper,\
         pearson_ci_low,pearson_ci_high,spearman_rho,spearman_p,p_bh,kendall_tau,kendall_p"
    );
    let defined = check_correlations(&out.join("correlations.csv"), &expected["correlations"]);
    // The fixture must exercise both defined and undefined correlations.
    assert!(
        defined > 20 && defined < expected["correlations"].as_array().unwrap().len(),
        "{defined}"
    );

    // The multilingual groups again without their low-BLEU answers: same columns.
    let text = std::fs::read_to_string(out.join("correlations_bleu_ok.csv")).unwrap();
    assert_eq!(
        text.lines().next(),
        std::fs::read_to_string(out.join("correlations.csv"))
            .unwrap()
            .lines()
            .next()
    );
    let defined = check_correlations(
        &out.join("correlations_bleu_ok.csv"),
        &expected["correlations_bleu_ok"],
    );
    assert!(defined > 4, "{defined}");
    // The answers whose two option orders agree, on their own: same columns.
    let defined = check_correlations(
        &out.join("correlations_orders_agree.csv"),
        &expected["correlations_orders_agree"],
    );
    assert!(defined > 10, "{defined}");
    let quality = read_csv(&out.join("translation_quality.csv"));
    let want = expected["translation_quality"].as_array().unwrap();
    assert_eq!(quality.len(), want.len());
    for w in want {
        let row = find(
            &quality,
            w,
            &["model", "approach", "lang", "country", "tier"],
        );
        for col in ["rows", "rows_with_bleu", "low_bleu_rows"] {
            assert_eq!(row[col], w[col].to_string(), "{w}: {col}");
        }
        for col in ["mean_bleu", "low_bleu_share"] {
            check(row, col, &w[col], VALUE, 0.0, &format!("{w}"));
        }
    }
    // English rows carry no BLEU; some translations fall below the threshold.
    assert!(quality.iter().any(|r| r["mean_bleu"] == "NaN"));
    assert!(quality
        .iter()
        .any(|r| r["low_bleu_rows"] != "0" && r["country"] != "all"));
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("## Personas vs multilingual"), "{summary}");
    assert!(summary.contains("## Translation quality"), "{summary}");

    let boot = read_csv(&out.join("bootstrap.csv"));
    let want = expected["bootstrap"].as_array().unwrap();
    assert_eq!(boot.len(), want.len());
    for w in want {
        let row = find(&boot, w, &["model", "approach", "dimension", "tier"]);
        let what = format!("bootstrap {w}");
        for col in ["n", "resamples", "valid_pearson", "valid_spearman"] {
            assert_eq!(row[col], w[col].to_string(), "{what}: {col}");
        }
        check(
            row,
            "pearson_ci_low",
            &w["pearson_ci"][0],
            VALUE,
            0.0,
            &what,
        );
        check(
            row,
            "pearson_ci_high",
            &w["pearson_ci"][1],
            VALUE,
            0.0,
            &what,
        );
        check(
            row,
            "spearman_ci_low",
            &w["spearman_ci"][0],
            VALUE,
            0.0,
            &what,
        );
        check(
            row,
            "spearman_ci_high",
            &w["spearman_ci"][1],
            VALUE,
            0.0,
            &what,
        );
    }

    let shares = read_csv(&out.join("by_country.csv"));
    let want = expected["by_country"].as_array().unwrap();
    assert_eq!(shares.len(), want.len());
    for w in want {
        let row = find(&shares, w, &["model", "approach", "dimension", "country"]);
        for col in ["n", "n_high", "n_low", "n_inconclusive"] {
            assert_eq!(row[col], w[col].to_string(), "{w}: {col}");
        }
        for col in [
            "share_high",
            "share_high_decided",
            "mean_p_high",
            "mean_label_mass",
        ] {
            check(row, col, &w[col], EXACT, 0.0, &format!("{w}"));
        }
    }
    assert!(shares.iter().any(|r| r["n_inconclusive"] != "0"));

    let classes = read_csv(&out.join("classification.csv"));
    let want = expected["classification"].as_array().unwrap();
    assert_eq!(classes.len(), want.len());
    for w in want {
        let row = find(&classes, w, &["model", "approach", "dimension"]);
        for col in ["n", "n_high_side"] {
            assert_eq!(row[col], w[col].to_string(), "{w}: {col}");
        }
        for col in [
            "accuracy_at_half",
            "best_threshold",
            "best_accuracy",
            "roc_auc",
        ] {
            check(row, col, &w[col], EXACT, 0.0, &format!("{w}"));
        }
    }

    let diag = read_csv(&out.join("diagnostics.csv"));
    let want = expected["diagnostics"].as_array().unwrap();
    assert_eq!(diag.len(), want.len());
    for w in want {
        let row = find(&diag, w, &["model", "approach", "dimension"]);
        for col in ["n", "n_inconclusive"] {
            assert_eq!(row[col], w[col].to_string(), "{w}: {col}");
        }
        for col in [
            "mean_label_mass",
            "position_bias",
            "share_first_option",
            "order_flip_share",
            "share_high",
            "share_high_decided",
            "mean_p_high",
        ] {
            check(row, col, &w[col], EXACT, 0.0, &format!("{w}"));
        }
    }
}

#[test]
fn bootstrap_is_reproducible_and_depends_on_the_seed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stats/results.jsonl");
    let rows = hofbench::results::read(&path).unwrap().rows;
    let options = Options {
        seed: 7,
        resamples: 300,
    };
    let a = stats::analyze(&rows, options);
    let b = stats::analyze(&rows, options);
    assert_eq!(a.bootstrap, b.bootstrap);
    let c = stats::analyze(&rows, Options { seed: 8, ..options });
    assert_ne!(a.bootstrap, c.bootstrap);
    for (boot, corr) in a.bootstrap.iter().zip(
        a.correlations
            .iter()
            .filter(|c| c.level == stats::Level::Country),
    ) {
        // Sanity: a defined interval is ordered, inside [-1, 1], and holds the point estimate
        // or lies near it (a percentile interval need not contain it, but not by far).
        if let (Some((lo, hi)), Some(p)) = (boot.ci.pearson, corr.pearson) {
            assert!(-1.0 <= lo && lo <= hi && hi <= 1.0, "{boot:?}");
            assert!(lo - 0.2 <= p.r && p.r <= hi + 0.2, "{boot:?} r={}", p.r);
        }
    }
}
