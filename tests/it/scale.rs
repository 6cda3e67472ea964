//! Runs beyond one device and their reproducibility, on the tiny random Gemma 3 checkpoint of
//! tests/fixtures/families (HF folder with tokenizer and chat template; milliseconds per item):
//! data-parallel replicas, shards and `merge`, `verify`, the Slurm scripts without Slurm, and
//! kill -9 at random points with resume.

use crate::harness::{bin, fails_with, hofbench, manifest, ok, s};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/families/gemma3"
);

/// Short prompts (a few dozen tokens each) so that a grid of hundreds of items runs in seconds.
fn short_prompts(dir: &Path, per_dimension: usize) -> PathBuf {
    let path = dir.join("short.jsonl");
    let mut text = String::new();
    for d in ["idv", "mas", "uai", "pdi", "lto"] {
        for i in 1..=per_dimension {
            let item = serde_json::json!({
                "id": format!("{d}-{i:03}"),
                "dimension": d,
                "request": format!("Case {i} of {d}: should I go or stay{}?", "!".repeat(i % 7)),
                "high_action": "Go",
                "low_action": "Stay",
            });
            text.push_str(&format!("{item}\n"));
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Rows by key (country / prompt), as JSON values: every field must match, P bit for bit.
fn rows_by_key(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = format!("{}/{}", row["country"], row["prompt_id"]);
        assert!(rows.insert(key.clone(), row).is_none(), "{key} twice");
    }
    rows
}

fn grid_args<'a>(prompts: &'a Path, countries: &'a str, limit: &'a str) -> Vec<&'a str> {
    vec![
        "--quiet",
        "run",
        "--model",
        MODEL,
        "--prompts",
        s(prompts),
        "--countries",
        countries,
        "--limit",
        limit,
    ]
}

fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

#[test]
fn cpu_replicas_change_no_result() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = short_prompts(tmp.path(), 3);
    let base = grid_args(&prompts, "Japan,Albania,India,Sweden,Greece", "3");
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    ok(&hofbench(&with(
        &base,
        &["--batch-size", "4", "--out", s(&one)],
    )));
    ok(&hofbench(&with(
        &base,
        &[
            "--batch-size",
            "4",
            "--devices",
            "cpu,cpu",
            "--out",
            s(&two),
        ],
    )));
    let (a, b) = (rows_by_key(&one), rows_by_key(&two));
    assert_eq!(a.len(), 5 * 5 * 3);
    assert_eq!(a, b, "two replicas must give the very same rows");
    let m = manifest(&two);
    assert_eq!(m["settings"]["device"], "cpu,cpu");
    assert_eq!(m["settings"]["backend"], "cpu");
    let used = m["devices"].as_array().unwrap();
    assert_eq!(used.len(), 2);
    let items: u64 = used.iter().map(|d| d["items"].as_u64().unwrap()).sum();
    assert_eq!(items, 75);
    fails_with(
        &hofbench(&with(&base, &["--devices", "0,cpu", "--out", s(&one)])),
        &["--devices", "not both"],
    );
}

/// The whole grid of `base` in `dir/whole`, and its three shards in `dir/shard{i}`, at one
/// batch size.
fn whole_and_shards(base: &[&str], dir: &Path, batch: &str) -> (PathBuf, Vec<PathBuf>) {
    let whole = dir.join("whole");
    ok(&hofbench(&with(
        base,
        &["--batch-size", batch, "--out", s(&whole)],
    )));
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| {
            let d = dir.join(format!("shard{i}"));
            let shard = format!("{i}/3");
            ok(&hofbench(&with(
                base,
                &["--batch-size", batch, "--shard", &shard, "--out", s(&d)],
            )));
            d
        })
        .collect();
    (whole, shards)
}

fn merge(shards: &[PathBuf], out: &Path) -> Output {
    let mut args = vec!["--quiet", "merge"];
    args.extend(shards.iter().map(|d| s(d)));
    args.extend(["--out", s(out)]);
    hofbench(&args)
}

#[test]
fn merged_shards_equal_an_unsharded_run_and_mixtures_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    let prompts = short_prompts(tmp.path(), 4);
    let base = grid_args(&prompts, "Japan,Albania,India,Sweden,Greece,Iceland", "4");
    // Batch size 1 here (and 8 in the next test): merged shards equal the whole run bit for bit.
    let (whole, shards) = whole_and_shards(&base, tmp.path(), "1");
    for (i, d) in shards.iter().enumerate() {
        let m = manifest(d);
        assert_eq!(m["shard"], serde_json::json!({"index": i, "count": 3}));
        assert_eq!(m["items_total"], 40);
        assert_eq!(m["grid_items"], 120);
    }
    let merged = dir("merged");
    ok(&merge(&shards, &merged));
    assert_eq!(rows_by_key(&merged), rows_by_key(&whole));
    let m = manifest(&merged);
    assert!(m.get("shard").is_none());
    assert_eq!(m["items_total"], 120);
    assert_eq!(m["merge"]["merged_from"].as_array().unwrap().len(), 3);
    // The same stats, row order aside (a table lists countries in the order rows come, and
    // sums over rows in that order round differently in the last bit).
    for table in ["by_country.csv", "correlations.csv", "diagnostics.csv"] {
        let lines = |dir: &Path| {
            let text = std::fs::read_to_string(dir.join("stats").join(table)).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        let (a, b) = (lines(&merged), lines(&whole));
        assert_eq!(a.len(), b.len(), "{table}");
        for (x, y) in a.iter().zip(&b) {
            for (u, v) in x.split(',').zip(y.split(',')) {
                let close = match (u.parse::<f64>(), v.parse::<f64>()) {
                    (Ok(u), Ok(v)) => (u - v).abs() <= 1e-12 * u.abs().max(1.0),
                    _ => u == v,
                };
                assert!(close || u == v, "{table}: {x} vs {y}");
            }
        }
    }
    // verify rebuilds each shard's batches: bit-identical on the same backend.
    let out = ok(&hofbench(&["verify", s(&merged), "--sample", "200"]));
    assert!(out.contains("re-scored 120 rows"), "{out}");
    assert!(
        out.contains("(bit-identical)") && out.contains("OK"),
        "{out}"
    );

    // A missing shard, a shard given twice, and shards of another grid are refused.
    fails_with(
        &hofbench(&[
            "merge",
            s(&shards[0]),
            s(&shards[2]),
            "--out",
            s(&dir("m1")),
        ]),
        &["missing shard(s) 1/3", "--allow-incomplete"],
    );
    fails_with(
        &hofbench(&[
            "merge",
            s(&shards[0]),
            s(&shards[0]),
            "--out",
            s(&dir("m2")),
        ]),
        &["are both shard 0/3"],
    );
    let other = dir("other");
    ok(&hofbench(&with(
        &grid_args(&prompts, "Japan,Albania,India,Sweden,Greece,Iceland", "3"),
        &["--shard", "1/3", "--out", s(&other)],
    )));
    fails_with(
        &hofbench(&[
            "merge",
            s(&shards[0]),
            s(&other),
            s(&shards[2]),
            "--out",
            s(&dir("m3")),
        ]),
        &[s(&other), "settings.limit is 3 there but 4"],
    );
    // Rows in two shards: copy one of shard 0's rows into shard 1.
    let first_row = std::fs::read_to_string(shards[0].join("results.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let mut text = std::fs::read_to_string(shards[1].join("results.jsonl")).unwrap();
    text.push_str(&first_row);
    text.push('\n');
    std::fs::write(shards[1].join("results.jsonl"), text).unwrap();
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|d| s(d)));
    let m4 = dir("m4");
    args.extend(["--out", s(&m4)]);
    fails_with(&hofbench(&args), &["the shards overlap"]);
    // Resuming a shard's folder as another shard is refused.
    fails_with(
        &hofbench(&with(
            &base,
            &[
                "--batch-size",
                "1",
                "--shard",
                "2/3",
                "--out",
                s(&shards[0]),
            ],
        )),
        &["holds shard 0/3 but this run is shard 2/3"],
    );
}

#[test]
fn verify_reproduces_a_run_and_catches_changed_rows_and_models() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = short_prompts(tmp.path(), 3);
    let run = tmp.path().join("run");
    ok(&hofbench(&with(
        &grid_args(&prompts, "Japan,Albania,India", "3"),
        &["--out", s(&run)],
    )));
    let out = ok(&hofbench(&[
        "verify",
        s(&run),
        "--sample",
        "5",
        "--seed",
        "3",
    ]));
    assert!(out.contains("5 sampled"), "{out}");
    assert!(out.contains("largest |ΔP| = 0e0 (bit-identical)"), "{out}");
    // The same with two replicas.
    let out = ok(&hofbench(&[
        "verify",
        s(&run),
        "--sample",
        "100",
        "--devices",
        "cpu,cpu",
    ]));
    assert!(out.contains("re-scored 45 rows"), "{out}");

    // A row changed after the run is found and named; the exit status says so.
    let results = run.join("results.jsonl");
    let original = std::fs::read_to_string(&results).unwrap();
    let mut lines: Vec<serde_json::Value> = original
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let p = lines[7]["p_high"].as_f64().unwrap();
    lines[7]["p_high"] = serde_json::json!(p + 0.01);
    let changed = format!(
        "{} / {}",
        lines[7]["country"].as_str().unwrap(),
        lines[7]["prompt_id"].as_str().unwrap()
    );
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&results, text).unwrap();
    let out = hofbench(&["verify", s(&run), "--sample", "100"]);
    fails_with(&out, &["over the tolerance"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("at {changed}")), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    std::fs::write(&results, original).unwrap();

    // Another model file with the run's path is a clear error, not a comparison.
    let other_model = format!("{}/../llama", MODEL);
    fails_with(
        &hofbench(&["verify", s(&run), "--model", &other_model]),
        &["sha256", "is not the run's model gemma3"],
    );
}

#[test]
fn slurm_scripts_run_as_plain_bash() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = short_prompts(tmp.path(), 2);
    let out = tmp.path().join("grid");
    let script = |name: &str| format!("{}/bench/slurm/{name}", env!("CARGO_MANIFEST_DIR"));
    for task in ["4", "5"] {
        // --array=4-5: shards are counted from the first task.
        let status = Command::new("bash")
            .arg(script("hofbench-array.sbatch"))
            .args(["--model", MODEL, "--prompts", s(&prompts), "--limit", "2"])
            .args(["--countries", "Japan,Albania,India", "--batch-size", "1"])
            .env("SLURM_ARRAY_TASK_ID", task)
            .env("SLURM_ARRAY_TASK_MIN", "4")
            .env("SLURM_ARRAY_TASK_COUNT", "2")
            .env("HOFBENCH", env!("CARGO_BIN_EXE_hofbench"))
            .env("HOFBENCH_OUT", &out)
            .env_remove("CUDA_VISIBLE_DEVICES")
            .status()
            .unwrap();
        assert!(status.success());
    }
    let shard1 = manifest(&out.join("shards/1-of-2"));
    assert_eq!(shard1["shard"]["index"], 1);
    assert_eq!(shard1["settings"]["device"], "cpu");
    let merge = Command::new("bash")
        .arg(script("hofbench-merge.sbatch"))
        .env("HOFBENCH", env!("CARGO_BIN_EXE_hofbench"))
        .env("HOFBENCH_OUT", &out)
        .env("HOFBENCH_SHARDS", "2")
        .output()
        .unwrap();
    assert!(merge.status.success(), "{merge:?}");
    assert_eq!(rows_by_key(&out.join("merged")).len(), 3 * 5 * 2);

    // submit.sh against a stand-in sbatch that logs its arguments and answers job ids.
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = tmp.path().join("sbatch.log");
    let fake = bin.join("sbatch");
    std::fs::write(
        &fake,
        format!(
            "#!/usr/bin/env bash\necho \"$*\" >> {}\nn=$(wc -l < {0})\necho \"$((1000 + n));cluster\"\n",
            log.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let submit = Command::new("bash")
        .arg(script("submit.sh"))
        .args(["3", s(&tmp.path().join("queued")), "--partition=gpu", "--"])
        .args(["--preset", "paper"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(submit.status.success(), "{submit:?}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].contains("--array=0-2 --partition=gpu"),
        "{}",
        calls[0]
    );
    assert!(
        calls[0].ends_with("hofbench-array.sbatch --preset paper"),
        "{}",
        calls[0]
    );
    assert!(
        calls[1].contains("--dependency=afterok:1001 "),
        "{}",
        calls[1]
    );
    assert!(calls[1].ends_with("hofbench-merge.sbatch"), "{}", calls[1]);
}

/// A tiny generator for the kill times, so that the test repeats.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Size of a file, 0 when it does not exist yet.
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Wait until `path` grows beyond `len` or the child exits; returns whether it grew.
fn wait_for_growth(child: &mut std::process::Child, path: &Path, len: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if file_len(path) > len {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "no rows written in time");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn kill_9_at_random_points_loses_and_repeats_nothing() {
    const KILLS: usize = 24;
    let tmp = tempfile::tempdir().unwrap();
    let prompts = short_prompts(tmp.path(), 8);
    let base = grid_args(&prompts, "Japan,Albania,India,Sweden,Greece,Iceland", "8");
    let total = 6 * 5 * 8;
    let args = |dir: &Path, devices: &'static str| -> Vec<String> {
        with(&base, &["--batch-size", "3", "--devices", devices])
            .into_iter()
            .map(str::to_string)
            .chain(["--out".to_string(), s(dir).to_string()])
            .collect()
    };
    // The uninterrupted run, timed to its first row (start-up: load, encode) and to its end.
    let whole = tmp.path().join("whole");
    let t = Instant::now();
    let mut child = bin().args(args(&whole, "cpu")).spawn().unwrap();
    assert!(wait_for_growth(&mut child, &whole.join("results.jsonl"), 0));
    let startup = t.elapsed();
    assert!(child.wait().unwrap().success());
    let scoring = t.elapsed() - startup;
    let reference = rows_by_key(&whole);
    assert_eq!(reference.len(), total);

    // Kill at seeded random points: every third start during start-up, the others once the
    // run writes rows, at a random time within ~1/60 of the scoring (a batch or two), so that
    // kills land in loading, encoding, scoring and writing while the run is still going.
    // Restarts alternate between one and two replicas: the batches are the same either way.
    let killed = tmp.path().join("killed");
    let results = killed.join("results.jsonl");
    let mut rng = SplitMix64(20240614);
    let mut survivors: BTreeMap<String, String> = BTreeMap::new();
    let (mut kills, mut kills_while_writing, mut attempts) = (0, 0, 0);
    let mut rows_after_kills = Vec::new();
    while kills < KILLS {
        attempts += 1;
        assert!(
            attempts < 3 * KILLS,
            "the run keeps finishing before the kill"
        );
        let devices = if attempts % 2 == 0 { "cpu,cpu" } else { "cpu" };
        let len = file_len(&results);
        let mut child = bin().args(args(&killed, devices)).spawn().unwrap();
        let writing = if attempts % 3 == 0 {
            let window = startup.as_millis() as u64 + 1;
            std::thread::sleep(Duration::from_millis(rng.next() % window));
            false
        } else {
            let window = (scoring.as_millis() as u64 / 60).max(2);
            let grew = wait_for_growth(&mut child, &results, len);
            std::thread::sleep(Duration::from_millis(rng.next() % window));
            grew
        };
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
            kills_while_writing += usize::from(writing);
        }
        child.wait().unwrap();
        // Every complete line is a whole row; only the last may be cut.
        let text = std::fs::read_to_string(&results).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
        for line in complete.lines() {
            let row: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("half-written row {line:?}: {e}"));
            let key = format!("{}/{}", row["country"], row["prompt_id"]);
            if let Some(before) = survivors.insert(key.clone(), line.to_string()) {
                assert_eq!(before, line, "{key} changed after a kill");
            }
        }
        rows_after_kills.push(survivors.len());
        if survivors.len() == total {
            break;
        }
    }
    eprintln!("{kills} kills ({kills_while_writing} while writing); rows after each: {rows_after_kills:?}");
    assert!(
        kills >= 20,
        "only {kills} kills landed before the run finished"
    );
    assert!(
        kills_while_writing >= 10,
        "{kills_while_writing} kills while writing"
    );
    assert!(survivors.len() < total, "the run finished between kills");
    // What a power cut in the middle of a batch's write leaves: the batch's first rows, then
    // half a line. The resumed run cuts the half line and scores that batch whole again,
    // writing only its missing rows.
    let text = std::fs::read_to_string(&results).unwrap();
    let complete = &text[..=text.rfind('\n').unwrap()];
    let mut lines: Vec<&str> = complete.lines().collect();
    let last = lines.pop().unwrap();
    let row: serde_json::Value = serde_json::from_str(last).unwrap();
    survivors.remove(&format!("{}/{}", row["country"], row["prompt_id"]));
    let torn: String =
        lines.iter().map(|l| format!("{l}\n")).collect::<String>() + &last[..last.len() / 2];
    std::fs::write(&results, torn).unwrap();
    ok(&hofbench(
        &args(&killed, "cpu")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    let text = std::fs::read_to_string(&results).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), total, "a row was lost or written twice");
    for (key, line) in &survivors {
        assert!(lines.contains(&line.as_str()), "{key} did not survive");
    }
    assert_eq!(
        rows_by_key(&killed),
        reference,
        "the resumed rows equal an uninterrupted run's, bit for bit"
    );
    assert!(manifest(&killed)["finished"].is_string());
}

/// Shards are whole batches of the unsharded run's batches: merged, they equal it bit for
/// bit at a batch size where rows share their passes (batch 1 proves nothing about that).
#[test]
fn merged_shards_equal_an_unsharded_run_at_batch_size_8() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    let prompts = short_prompts(tmp.path(), 4);
    let base = grid_args(&prompts, "Japan,Albania,India,Sweden,Greece,Iceland", "4");
    let (whole, shards) = whole_and_shards(&base, tmp.path(), "8");
    let items: u64 = shards
        .iter()
        .map(|d| manifest(d)["items_total"].as_u64().unwrap())
        .sum();
    assert_eq!(items, 120);
    let merged = dir("merged");
    ok(&merge(&shards, &merged));
    assert_eq!(
        rows_by_key(&merged),
        rows_by_key(&whole),
        "merged shards equal the unsharded run bit for bit"
    );
    let out = ok(&hofbench(&["verify", s(&merged), "--sample", "200"]));
    assert!(out.contains("(bit-identical)"), "{out}");
    // Shards of other batch settings cut the grid differently: they do not merge.
    let other = dir("other");
    ok(&hofbench(&with(
        &base,
        &["--batch-size", "4", "--shard", "1/3", "--out", s(&other)],
    )));
    fails_with(
        &hofbench(&[
            "merge",
            s(&shards[0]),
            s(&other),
            s(&shards[2]),
            "--out",
            s(&dir("m")),
        ]),
        &["settings.batch_size is 4 there but 8"],
    );
}

/// A rerun into a folder with rows must use every result-changing setting of its manifest;
/// how the work is spread (`--devices` replicas) may change.
#[test]
fn a_resumed_run_refuses_other_result_changing_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = short_prompts(tmp.path(), 2);
    let base = grid_args(&prompts, "Japan,Albania", "2");
    let out = tmp.path().join("run");
    ok(&hofbench(&with(&base, &["--out", s(&out)])));
    let before = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    for (flags, field) in [
        (
            &["--weights", "quantized"][..],
            "settings.weights is quantized now but f32",
        ),
        (
            &["--keep-text"][..],
            "settings.keep_text is true now but false",
        ),
        (
            &["--batch-size", "2"][..],
            "settings.batch_size is 2 now but 8",
        ),
        (
            &["--max-batch-tokens", "64"][..],
            "settings.max_batch_tokens",
        ),
    ] {
        let mut args = with(&base, flags);
        args.extend(["--out", s(&out)]);
        fails_with(&hofbench(&args), &[s(&out), field, "use another --out"]);
        assert_eq!(
            std::fs::read_to_string(out.join("manifest.json")).unwrap(),
            before,
            "{flags:?}: a refused run leaves the manifest alone"
        );
    }
    ok(&hofbench(&with(
        &base,
        &["--devices", "cpu,cpu", "--out", s(&out)],
    )));
}

/// The multilingual run's translations are compared by content, not by path, and its
/// --bleu-threshold counts too.
#[test]
fn a_resumed_multilingual_run_refuses_other_translations_or_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/translations");
    let prompts = format!("{fixtures}/paper_prompts.csv");
    let cache = tmp.path().join("cache");
    ok(&hofbench(&[
        "--quiet",
        "import-translations",
        &format!("{fixtures}/paper_translations.csv"),
        "--prompts",
        &prompts,
        "--out",
        s(&cache),
    ]));
    let out = tmp.path().join("run");
    let args = |cache: &Path, more: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "--quiet",
            "run",
            "--model",
            MODEL,
            "--approach",
            "multilingual",
            "--prompts",
            &prompts,
            "--countries",
            "France",
            "--translations",
            s(cache),
            "--out",
            s(&out),
        ]
        .map(String::from)
        .to_vec();
        a.extend(more.iter().map(|m| m.to_string()));
        a
    };
    let run = |a: Vec<String>| hofbench(&a.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&run(args(&cache, &[])));
    fails_with(
        &run(args(&cache, &["--bleu-threshold", "0.5"])),
        &["settings.bleu_threshold is 0.5 now but 0.2"],
    );
    // The same texts in another folder: the same run.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(&cache).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    ok(&run(args(&copy, &[])));
    // A retranslated request (a later row replaces the earlier one): other results.
    let file = copy.join("fra_Latn.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut changed = first.clone();
    changed["translation"] = serde_json::json!("Une autre traduction ?");
    std::fs::write(&file, format!("{text}{changed}\n")).unwrap();
    fails_with(&run(args(&copy, &[])), &["settings.translations_sha256"]);
}

/// One process per output folder: while one holds DIR/.lock, run, merge and
/// import-translations into DIR are refused with the holder's pid.
#[test]
fn a_second_process_on_a_folder_is_refused_with_the_holders_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = short_prompts(tmp.path(), 1);
    let dir = tmp.path().join("busy");
    let held = hofbench::lock::DirLock::acquire(&dir).unwrap();
    let pid = format!("pid {}", std::process::id());
    fails_with(
        &hofbench(&with(
            &grid_args(&prompts, "Japan", "1"),
            &["--out", s(&dir)],
        )),
        &[s(&dir), &pid, "in use by another hofbench process"],
    );
    assert!(!dir.join("results.jsonl").exists(), "nothing was written");
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/translations");
    fails_with(
        &hofbench(&[
            "import-translations",
            &format!("{fixtures}/paper_translations.csv"),
            "--prompts",
            &format!("{fixtures}/paper_prompts.csv"),
            "--out",
            s(&dir),
        ]),
        &[&pid],
    );
    let shard = tmp.path().join("shard");
    ok(&hofbench(&with(
        &grid_args(&prompts, "Japan", "1"),
        &["--shard", "0/1", "--out", s(&shard)],
    )));
    fails_with(&hofbench(&["merge", s(&shard), "--out", s(&dir)]), &[&pid]);
    drop(held);
    ok(&hofbench(&[
        "--quiet",
        "merge",
        s(&shard),
        "--out",
        s(&dir),
    ]));
}

/// The same row twice in one results.jsonl would be counted twice: stats refuses it.
#[test]
fn stats_refuses_a_row_twice_in_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = short_prompts(tmp.path(), 1);
    let out = tmp.path().join("run");
    ok(&hofbench(&with(
        &grid_args(&prompts, "Japan,Albania", "1"),
        &["--out", s(&out)],
    )));
    let file = out.join("results.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let first = text.lines().next().unwrap();
    std::fs::write(&file, format!("{text}{first}\n")).unwrap();
    fails_with(
        &hofbench(&["stats", s(&out)]),
        &["results.jsonl", "twice in this file"],
    );
}
