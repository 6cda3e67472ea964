//! The one CLI harness: runs the `hofbench` binary cargo built for these tests and checks
//! how it exited. Every module that runs the CLI uses these instead of its own copy.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// The built binary, for a command that needs more than arguments (env, stdin, spawn).
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hofbench"))
}

/// Run `hofbench ARGS` to completion, stdout and stderr captured.
pub fn hofbench<S: AsRef<OsStr>>(args: &[S]) -> Output {
    bin().args(args).output().expect("run hofbench")
}

/// Asserts that the command succeeded (showing both streams if not); returns its stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "hofbench failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`ok`], returning the command's stderr (where progress and notes go).
pub fn ok_stderr(out: &Output) -> String {
    ok(out);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that the command failed with a stderr that mentions every one of `needles`.
pub fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}:\n{err}");
    }
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The rows of a run folder's results.jsonl, in file order.
pub fn result_rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A run folder's manifest.json.
pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A CSV table that hofbench wrote: one map of column → cell per row.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
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
