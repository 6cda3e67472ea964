//! The CLI end to end on the real default model (SmolLM2-135M-Instruct, fetched into the
//! cache by tests/run.sh), plus bad input and resuming.

use crate::harness::{bin, fails_with, hofbench, ok, result_rows, s};
use std::path::{Path, PathBuf};

#[test]
fn run_scores_real_model_and_writes_results_manifest_and_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let out = hofbench(&[
        "--quiet",
        "run",
        "--countries",
        "Japan,Albania,Sweden",
        "--dimensions",
        "idv,lto",
        "--limit",
        "2",
        "--keep-text",
        "--batch-size",
        "3",
        "--out",
        s(&out_dir),
    ]);
    ok(&out);
    let rows = result_rows(&out_dir);
    assert_eq!(rows.len(), 3 * 2 * 2);
    for r in &rows {
        for key in [
            "model",
            "approach",
            "dimension",
            "country",
            "language",
            "tier",
            "prompt_id",
            "p_high",
            "p_high_by_order",
            "label_mass",
            "hofstede_score",
            "high_side",
            "rendered",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert_eq!(r["model"], "smollm2-135m-instruct");
        let p = r["p_high"].as_f64().unwrap();
        let by = r["p_high_by_order"].as_array().unwrap();
        let mean = (by[0].as_f64().unwrap() + by[1].as_f64().unwrap()) / 2.0;
        assert!((p - mean).abs() < 1e-12 && (0.0..=1.0).contains(&p));
        for m in r["label_mass"].as_array().unwrap() {
            let m = m.as_f64().unwrap();
            assert!(m > 0.0 && m <= 1.0, "{m}");
        }
        let rendered = r["rendered"].as_array().unwrap();
        let country = r["country"].as_str().unwrap();
        assert!(rendered[0]
            .as_str()
            .unwrap()
            .contains(&format!("from the country of {country}")));
        assert!(rendered[0].as_str().unwrap().starts_with("<|im_start|>"));
        let score = r["hofstede_score"].as_f64().unwrap();
        assert_eq!(r["high_side"].as_bool().unwrap(), score > 50.0);
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["model"]["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    assert!(manifest["finished"].is_string());
    assert!(!manifest["labels"]["a"].as_array().unwrap().is_empty());
    assert_eq!(manifest["items_total"], 12);
    let corr = std::fs::read_to_string(out_dir.join("stats/correlations.csv")).unwrap();
    let mut lines = corr.lines();
    assert_eq!(
        lines.next().unwrap(),
        "model,approach,dimension,tier,level,n,pearson_r,pearson_p,pearson_p_paper,\
         pearson_ci_low,pearson_ci_high,spearman_rho,spearman_p,p_bh,kendall_tau,kendall_p"
    );
    // 2 dimensions × 4 tiers × 2 levels
    assert_eq!(lines.count(), 16);
    assert!(corr.contains("smollm2-135m-instruct,personas,idv,all,country,3,"));
    assert!(corr.contains("smollm2-135m-instruct,personas,lto,all,response,6,"));
    let by_country = std::fs::read_to_string(out_dir.join("stats/by_country.csv")).unwrap();
    assert_eq!(by_country.lines().count(), 1 + 3 * 2);

    // `stats` recomputes the same tables from results.jsonl.
    std::fs::remove_dir_all(out_dir.join("stats")).unwrap();
    ok(&hofbench(&["--quiet", "stats", s(&out_dir)]));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("stats/correlations.csv")).unwrap(),
        corr
    );
}

#[test]
fn a_killed_run_resumes_without_losing_or_repeating_rows() {
    const TOTAL: usize = 4 * 5; // countries × prompts
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let args = [
        "--quiet",
        "run",
        "--countries",
        "Japan,Germany,India,Greece",
        "--dimensions",
        "mas",
        "--limit",
        "5",
        "--batch-size",
        "1",
        "--out",
        s(&out_dir),
    ];
    let mut child = bin().args(args).spawn().unwrap();
    // Kill it once it has finished a few rows but not all.
    let results = out_dir.join("results.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let n = std::fs::read_to_string(&results)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rows written in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = result_rows(&out_dir);
    assert!(
        before.len() < TOTAL,
        "the run finished before it could be killed"
    );
    // A torn last line, as a kill in the middle of a write would leave.
    let mut text = std::fs::read_to_string(&results).unwrap();
    text.push_str("{\"model\":\"smollm2-135m-instruct\",\"appro");
    std::fs::write(&results, text).unwrap();

    ok(&hofbench(&args));
    let after = result_rows(&out_dir);
    assert_eq!(after.len(), TOTAL);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "finished rows are kept as they were"
    );
    let mut keys: Vec<String> = after
        .iter()
        .map(|r| format!("{}/{}", r["country"], r["prompt_id"]))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), TOTAL, "no row scored twice");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["items_scored_this_run"].as_u64().unwrap() as usize,
        TOTAL - before.len()
    );
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = |name: &str| -> PathBuf { tmp.path().join(name) };

    fails_with(
        &hofbench(&[
            "run",
            "--countries",
            "Japan,Atlantis",
            "--out",
            s(&out("a")),
        ]),
        &["unknown country \"Atlantis\""],
    );
    fails_with(
        &hofbench(&["run", "--dimensions", "idv,foo", "--out", s(&out("b"))]),
        &["unknown dimension \"foo\""],
    );
    let csv = out("bad.csv");
    std::fs::write(
        &csv,
        "English_Prompt,Expected_Individualistic,Expected_Collectivist\n\"ok, quoted\",a,b\nonly two,fields\n",
    )
    .unwrap();
    fails_with(
        &hofbench(&["run", "--prompts", s(&csv), "--out", s(&out("c"))]),
        &["bad.csv:3:"],
    );
    fails_with(
        &hofbench(&["prompts", "--prompts", s(&csv)]),
        &["bad.csv:3:"],
    );

    let missing = out("missing.gguf");
    fails_with(
        &hofbench(&["run", "--model", s(&missing), "--out", s(&out("d"))]),
        &["missing.gguf", "not found"],
    );
    // A truncated copy of the real model.
    let real = ok(&hofbench(&["--quiet", "fetch"]));
    let bytes = std::fs::read(real.trim()).unwrap();
    let truncated = out("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(
        &hofbench(&["run", "--model", s(&truncated), "--out", s(&out("e"))]),
        &["truncated.gguf", "truncated"],
    );
    let not_gguf = out("text.gguf");
    std::fs::write(&not_gguf, "hello").unwrap();
    fails_with(
        &hofbench(&["run", "--model", s(&not_gguf), "--out", s(&out("f"))]),
        &["text.gguf", "GGUF"],
    );
    // --out below a regular file cannot be created.
    let file = out("plain-file");
    std::fs::write(&file, "x").unwrap();
    let unwritable = file.join("run");
    fails_with(
        &hofbench(&["run", "--limit", "1", "--out", s(&unwritable)]),
        &["plain-file/run"],
    );
}

#[test]
fn bad_model_does_not_touch_finished_results() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    ok(&hofbench(&[
        "--quiet",
        "run",
        "--countries",
        "Japan",
        "--dimensions",
        "pdi",
        "--limit",
        "1",
        "--out",
        s(&dir),
    ]));
    let before = std::fs::read(dir.join("results.jsonl")).unwrap();
    let fake = tmp.path().join("fake.gguf");
    std::fs::write(&fake, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    fails_with(
        &hofbench(&[
            "run",
            "--model",
            s(&fake),
            "--countries",
            "Japan",
            "--out",
            s(&dir),
        ]),
        &["fake.gguf"],
    );
    assert_eq!(std::fs::read(dir.join("results.jsonl")).unwrap(), before);
}

#[test]
fn prompts_prints_builtin_set_and_reads_paper_csv() {
    let out = ok(&hofbench(&["prompts", "--dimension", "uai"]));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 50);
    for l in &lines {
        let obj = l.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["dimension", "high_action", "id", "low_action", "request"]
        );
        assert_eq!(l["dimension"], "uai");
    }
    let all = ok(&hofbench(&["prompts"]));
    assert_eq!(all.lines().count(), 250);

    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("paper.csv");
    std::fs::write(
        &csv,
        "English_Prompt,Expected_Low_Power_Distance,Expected_High_Power_Distance\n\
         \"My boss said “no”, twice.\nWhat now? Choose one side.\",Argue with the boss,Accept the decision\n",
    )
    .unwrap();
    let out = ok(&hofbench(&["prompts", "--prompts", s(&csv)]));
    let item: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(item["dimension"], "pdi");
    assert_eq!(item["high_action"], "Accept the decision");
    assert_eq!(
        item["request"],
        "My boss said “no”, twice.\nWhat now? Choose one side."
    );
}

#[test]
fn models_lists_cards() {
    let out = ok(&hofbench(&["models"]));
    assert!(out.contains("smollm2-135m-instruct (default)"), "{out}");
    assert!(out.contains("gemma3-270m"), "{out}");
}

#[test]
fn the_manifest_records_the_weight_format_and_whether_it_is_exact() {
    // `quantized` keeps the blocks and computes exactly; `fast-quantized` (candle's 8-bit
    // activations) is marked inexact. One item of the default model each.
    let tmp = tempfile::tempdir().unwrap();
    for (weights, exact) in [
        ("quantized", true),
        ("fast-quantized", false),
        ("f32", true),
    ] {
        let dir = tmp.path().join(weights);
        ok(&hofbench(&[
            "--quiet",
            "run",
            "--weights",
            weights,
            "--countries",
            "Japan",
            "--dimensions",
            "idv",
            "--limit",
            "1",
            "--out",
            s(&dir),
        ]));
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["settings"]["weights"], weights);
        assert_eq!(manifest["settings"]["exact"], exact, "{weights}");
    }
}

/// `hofbench run` on a one-item grid into `out` with `extra` flags must fail naming every one
/// of `needles`, without having created `out`.
fn refused_before_writing(out: &Path, extra: &[&str], needles: &[&str]) {
    let mut args = vec!["--quiet", "run", "--out", s(out)];
    args.extend([
        "--countries",
        "Japan",
        "--dimensions",
        "idv",
        "--limit",
        "1",
    ]);
    args.extend(extra);
    fails_with(&hofbench(&args), needles);
    assert!(!out.exists(), "{extra:?}: the run folder was created");
}

/// A flag of the other mode is an error naming it, not silently ignored, and nothing is
/// written: typing a generate flag with its default value counts as giving it.
#[test]
fn flags_of_the_other_mode_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    for (flag, extra) in [
        ("--rounds", &["--rounds", "3"][..]),
        ("--judge", &["--judge", "smollm2-135m-instruct"][..]),
        ("--seed", &["--seed", "0"][..]),
        ("--temperature", &["--temperature", "0.6"][..]),
        ("--top-p", &["--top-p", "0.9"][..]),
        ("--top-k", &["--top-k", "10"][..]),
        ("--repetition-penalty", &["--repetition-penalty", "1.5"][..]),
        ("--greedy", &["--greedy"][..]),
        ("--max-new-tokens", &["--max-new-tokens", "5"][..]),
    ] {
        refused_before_writing(&out_dir, extra, &[flag, "--mode generate"]);
    }
    refused_before_writing(
        &out_dir,
        &["--mode", "generate", "--random-weights", "llama3-8b"],
        &["--random-weights", "--mode logits"],
    );
}

/// `--shard`, `--devices` and `--system-file` are checked before the run folder is created or
/// results.jsonl opened, in either mode.
#[test]
fn bad_shard_devices_and_system_file_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let missing = tmp.path().join("no-such-system.txt");
    for mode in ["logits", "generate"] {
        for (bad, needle) in [
            (&["--shard", "2/2"][..], "--shard"),
            (&["--shard", "x"][..], "--shard"),
            (&["--devices", "gpu"][..], "--devices"),
            (&["--devices", "cpu,0"][..], "--devices"),
            (&["--system-file", s(&missing)][..], "no-such-system.txt"),
        ] {
            let mut extra = vec!["--mode", mode];
            extra.extend(bad);
            refused_before_writing(&out_dir, &extra, &[needle]);
        }
    }
    // Generate mode runs on one device: refused before the folder is made too.
    refused_before_writing(
        &out_dir,
        &["--mode", "generate", "--devices", "0,1"],
        &["one device"],
    );
}
