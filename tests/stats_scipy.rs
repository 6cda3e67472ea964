//! `hofbench stats` against scipy on a synthetic results file (fixture and generator in
//! tests/fixtures/stats/): country- and response-level Pearson r and two-sided p, per tier.

use serde_json::Value;
use std::path::Path;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stats")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .map(String::from)
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

fn close(ours: f64, want: f64, rel: f64) -> bool {
    (ours - want).abs() <= rel * want.abs().max(1e-300) || (ours - want).abs() <= 1e-12
}

#[test]
fn correlations_and_shares_match_scipy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("results.jsonl"), fixture("results.jsonl")).unwrap();
    hofbench::stats::run(dir.path()).unwrap();
    let expected: Value = serde_json::from_str(&fixture("expected.json")).unwrap();

    let corr = read_csv(&dir.path().join("stats/correlations.csv"));
    let want = expected["correlations"].as_array().unwrap();
    assert_eq!(corr.len(), want.len());
    for w in want {
        let (dim, tier, level) = (
            w["dimension"].as_str().unwrap(),
            w["tier"].as_str().unwrap(),
            w["level"].as_str().unwrap(),
        );
        let row = corr
            .iter()
            .find(|r| r["dimension"] == dim && r["tier"] == tier && r["level"] == level)
            .unwrap_or_else(|| panic!("no row for {dim}/{tier}/{level}"));
        assert_eq!(row["n"], w["n"].to_string(), "{dim}/{tier}/{level}");
        let r: f64 = row["pearson_r"].parse().unwrap();
        let p: f64 = row["pearson_p"].parse().unwrap();
        let (wr, wp) = (w["r"].as_f64().unwrap(), w["p"].as_f64().unwrap());
        assert!(
            (r - wr).abs() <= 1e-9,
            "{dim}/{tier}/{level}: r {r} vs scipy {wr}"
        );
        assert!(
            close(p, wp, 1e-9),
            "{dim}/{tier}/{level}: p {p} vs scipy {wp}"
        );
    }

    let shares = read_csv(&dir.path().join("stats/by_country.csv"));
    for w in expected["by_country"].as_array().unwrap() {
        let row = shares
            .iter()
            .find(|r| {
                r["dimension"] == w["dimension"].as_str().unwrap()
                    && r["country"] == w["country"].as_str().unwrap()
            })
            .unwrap();
        let share: f64 = row["share_high"].parse().unwrap();
        let mean: f64 = row["mean_p_high"].parse().unwrap();
        assert!((share - w["share_high"].as_f64().unwrap()).abs() <= 1e-12);
        assert!((mean - w["mean_p_high"].as_f64().unwrap()).abs() <= 1e-12);
        assert_eq!(row["n"], w["n"].to_string());
    }
}
