//! The persona effect (`stats/persona_effect.csv`, `persona_effect_by_dimension.csv`) and
//! `hofbench compare` (`comparison.csv`) against numpy/scipy on synthetic runs (fixture and
//! generator in tests/fixtures/persona_compare/): shifts and their seeded bootstrap over
//! items, the shift's Pearson/Spearman/Kendall correlation with the score, items changed by
//! any persona, and the paired bootstrap over countries of r, high-side share and accuracy.

use crate::harness::read_csv;
use hofbench::config::CompareConfig;
use hofbench::stats::{self, Options};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

type Row = HashMap<String, String>;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/persona_compare")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn options(e: &Value) -> Options {
    Options {
        seed: e["seed"].as_u64().unwrap(),
        resamples: e["resamples"].as_u64().unwrap() as usize,
    }
}

/// A folder holding copies of the named fixture runs, one subfolder each.
fn runs(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::copy(
            fixture_dir().join(name).join("results.jsonl"),
            sub.join("results.jsonl"),
        )
        .unwrap();
    }
    dir
}

const VALUE: f64 = 1e-9;

fn check(row: &Row, col: &str, want: &Value, what: &str) {
    let ours: f64 = row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {col} = {:?}", row[col]));
    match want {
        Value::Null => assert!(ours.is_nan(), "{what}: {col} {ours}, reference null"),
        _ => {
            let w = want.as_f64().unwrap();
            let err = (ours - w).abs();
            assert!(
                err <= VALUE || err <= VALUE * w.abs(),
                "{what}: {col} {ours} vs reference {w} (|Δ| {err:e})"
            );
        }
    }
}

#[test]
fn persona_effect_matches_numpy_and_scipy() {
    let e = expected();
    let dir = runs(&["control", "personas"]);
    let (analysis, summary) = stats::run_with(dir.path(), options(&e)).unwrap();
    let out = dir.path().join("stats");
    let text = std::fs::read_to_string(out.join("persona_effect.csv")).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "model,dimension,country,tier,n,share_high,control_share_high,shift,shift_ci_low,\
         shift_ci_high"
    );
    let rows = read_csv(&out.join("persona_effect.csv"));
    let want = e["persona_effect"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    let mut short = 0;
    for w in want {
        let what = format!("{}/{}", w["dimension"], w["country"]);
        let row = rows
            .iter()
            .find(|r| r["dimension"] == w["dimension"] && r["country"] == w["country"])
            .unwrap_or_else(|| panic!("{what} missing"));
        assert_eq!(row["tier"], w["tier"].as_str().unwrap(), "{what}");
        assert_eq!(row["n"], w["n"].to_string(), "{what}");
        short += usize::from(w["n"].as_u64().unwrap() < 7);
        for col in ["share_high", "control_share_high", "shift"] {
            check(row, col, &w[col], &what);
        }
        check(row, "shift_ci_low", &w["shift_ci"][0], &what);
        check(row, "shift_ci_high", &w["shift_ci"][1], &what);
    }
    // Countries with fewer common items exercise the pairing by item.
    assert!(short >= 3, "{short}");

    let rows = read_csv(&out.join("persona_effect_by_dimension.csv"));
    let want = e["persona_effect_by_dimension"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for w in want {
        let what = w["dimension"].to_string();
        let row = rows
            .iter()
            .find(|r| r["dimension"] == w["dimension"])
            .unwrap();
        for col in ["countries", "items", "items_changed", "countries_shifted"] {
            assert_eq!(row[col], w[col].to_string(), "{what}: {col}");
        }
        for col in [
            "share_items_changed",
            "control_share_high",
            "mean_shift",
            "mean_abs_shift",
        ] {
            check(row, col, &w[col], &what);
        }
        for (prefix, stat, key) in [
            ("shift_pearson", "r", "shift_pearson"),
            ("shift_spearman", "rho", "shift_spearman"),
            ("shift_kendall", "tau", "shift_kendall"),
        ] {
            check(row, &format!("{prefix}_{stat}"), &w[key][0], &what);
            let p = &w[key][1];
            let ours: f64 = row[&format!("{prefix}_p")].parse().unwrap();
            let want = p.as_f64().unwrap();
            assert!(
                (ours - want).abs() <= 1e-9 * want.abs().max(1e-300),
                "{what}: {prefix}_p {ours} vs {want}"
            );
        }
    }
    // The control run is not a country: no correlation or by-country row of its own.
    assert!(analysis.shares.iter().all(|s| s.approach != "control"));
    assert!(analysis
        .diagnostics
        .iter()
        .any(|d| d.approach == "control" && d.dimension.is_none()));
    // idv answers lean with the score, mas answers do not: the summary says so per dimension.
    assert!(summary.contains("## Persona effect"), "{summary}");
    assert!(
        summary.contains("- idv: personas move answers")
            && summary.contains("in the direction of the country's score"),
        "{summary}"
    );
    assert!(
        summary.contains("- mas: personas move answers"),
        "{summary}"
    );
}

#[test]
fn compare_matches_numpy_and_scipy() {
    let e = expected();
    let dir = runs(&["personas", "other"]);
    let out = dir.path().join("cmp");
    let o = options(&e);
    let md = hofbench::compare::compare_command(&CompareConfig {
        a: dir.path().join("personas"),
        b: dir.path().join("other"),
        out: out.clone(),
        stats: o,
    })
    .unwrap();
    assert!(
        md.contains("| synthetic (personas) | other (personas) | idv |"),
        "{md}"
    );
    assert!(out.join("comparison.md").is_file());
    let rows = read_csv(&out.join("comparison.csv"));
    let want = e["comparison"].as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    for w in want {
        let what = format!("compare {}", w["dimension"]);
        let row = rows
            .iter()
            .find(|r| r["dimension"] == w["dimension"])
            .unwrap();
        assert_eq!(row["n"], w["n"].to_string(), "{what}");
        assert_eq!(row["n"], "30", "{what}: the countries of both sides");
        for (prefix, key) in [
            ("r", "r"),
            ("share_high", "share_high"),
            ("accuracy", "accuracy"),
        ] {
            let s = &w[key];
            check(row, &format!("{prefix}_a"), &s["a"], &what);
            check(row, &format!("{prefix}_b"), &s["b"], &what);
            check(row, &format!("delta_{prefix}"), &s["delta"], &what);
            check(row, &format!("delta_{prefix}_ci_low"), &s["ci"][0], &what);
            check(row, &format!("delta_{prefix}_ci_high"), &s["ci"][1], &what);
            check(row, &format!("delta_{prefix}_p"), &s["p"], &what);
        }
        assert_eq!(row["valid_r"], w["r"]["valid"].to_string(), "{what}");
    }
}

#[test]
fn compare_is_seeded_and_refuses_unpairable_sides() {
    let dir = runs(&["personas", "other", "control"]);
    let load = |name: &str| stats::load(&dir.path().join(name)).unwrap();
    let (a, b) = (load("personas"), load("other"));
    let o = Options {
        seed: 3,
        resamples: 200,
    };
    let one = hofbench::compare::compare_rows(&a, &b, o).unwrap();
    assert_eq!(one, hofbench::compare::compare_rows(&a, &b, o).unwrap());
    let other_seed = hofbench::compare::compare_rows(&a, &b, Options { seed: 4, ..o }).unwrap();
    assert_ne!(one[0].r.ci, other_seed[0].r.ci);
    // Two models on one side and a third on the other: which pairs with which is unclear.
    let mut both = a.clone();
    both.extend(b.iter().cloned());
    let mut third = b.clone();
    for r in &mut third {
        r.model = "third".into();
    }
    let err = hofbench::compare::compare_rows(&both, &third, o).unwrap_err();
    assert!(err.contains("each side must hold one model"), "{err}");
    // A control run alone has no country to compare.
    let err = hofbench::compare::compare_rows(&load("control"), &b, o).unwrap_err();
    assert!(err.contains("A holds no answers with countries"), "{err}");
}
