//! `hofbench stats` over a folder holding a logits run and a generate run of one model:
//! agreement.csv against scikit-learn (tests/fixtures/judge/gen_agreement_fixture.py), and
//! the two modes kept apart in every other table.

use hofbench::results::ResultRow;
use hofbench::stats::{self, Options};
use serde_json::Value;
use std::path::Path;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/judge/agreement.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_run(dir: &Path, rows: &Value) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for r in rows.as_array().unwrap() {
        // Through ResultRow, as a run writes them.
        let row: ResultRow = serde_json::from_value(r.clone()).unwrap();
        text.push_str(&serde_json::to_string(&row).unwrap());
        text.push('\n');
    }
    std::fs::write(dir.join("results.jsonl"), text).unwrap();
}

fn close(a: Option<f64>, b: &Value) -> bool {
    match (a, b.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-12,
        (None, None) => true,
        _ => false,
    }
}

#[test]
fn agreement_matches_sklearn_and_modes_stay_apart() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    write_run(&dir.path().join("logits"), &fx["logits"]);
    write_run(&dir.path().join("generate"), &fx["generate"]);
    let (a, md) = stats::run_with(dir.path(), Options::default()).unwrap();

    let expected = fx["agreement"].as_array().unwrap();
    assert_eq!(a.agreement.len(), expected.len());
    for e in expected {
        let dim = e["dimension"].as_str().unwrap();
        let row = a
            .agreement
            .iter()
            .find(|g| g.dimension.map_or("all", |d| d.code()) == dim)
            .unwrap_or_else(|| panic!("no agreement row for {dim}"));
        assert_eq!((row.model.as_str(), row.mode.as_str()), ("m", "generate"));
        assert_eq!(row.n_pairs as u64, e["n_pairs"].as_u64().unwrap(), "{dim}");
        assert_eq!(
            row.n_inconclusive as u64,
            e["n_inconclusive"].as_u64().unwrap()
        );
        assert_eq!(row.n_agree as u64, e["n_agree"].as_u64().unwrap());
        assert!(close(row.agreement, &e["agreement"]), "{dim}: {row:?}");
        assert!(close(row.kappa, &e["kappa"]), "{dim}: {row:?} vs {e}");
    }

    // The two modes are two models in the other tables, with the tables' own columns.
    let models = a.models();
    assert_eq!(models, vec!["m", "m/generate"]);
    let header = |name: &str| {
        std::fs::read_to_string(dir.path().join("stats").join(name))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        header("correlations.csv"),
        "model,approach,dimension,tier,level,n,pearson_r,pearson_p,pearson_p_paper,\
         pearson_ci_low,pearson_ci_high,spearman_rho,spearman_p,p_bh,kendall_tau,kendall_p"
    );
    let by_country = std::fs::read_to_string(dir.path().join("stats/by_country.csv")).unwrap();
    // 3 dimensions × 6 countries per mode; generate counts both rounds.
    let generate: Vec<&str> = by_country
        .lines()
        .filter(|l| l.starts_with("m/generate,"))
        .collect();
    assert_eq!(generate.len(), 18);
    assert!(generate.iter().all(|l| l.contains(",10,")), "{generate:?}");
    assert_eq!(
        by_country.lines().filter(|l| l.starts_with("m,")).count(),
        18
    );
    for name in ["agreement.csv", "language_fidelity.csv", "persona_use.csv"] {
        assert!(dir.path().join("stats").join(name).is_file(), "{name}");
    }
    assert!(
        md.contains("## Generate + judge vs the logit scorer"),
        "{md}"
    );
    assert!(md.contains("## Persona use"));

    // A row present in two runs of one mode is still an error.
    write_run(&dir.path().join("logits_again"), &fx["logits"]);
    let err = stats::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("is also in"), "{err}");
}
