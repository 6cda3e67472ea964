//! Token ids from `hofbench::tokenizer::GgufTokenizer` must equal llama.cpp's on the real models.
//!
//! Fixtures: `tests/fixtures/tokenizer/<model>.json` = `{"cases": [{"text", "llama_cpp": [ids],
//! "hf": [ids]}]}`, made with llama.cpp (`parse_special = true`). The GGUF files live in the model
//! cache (`$HOFBENCH_CACHE`, default `~/.cache/hofbench`), `models/<name>/<file>.gguf`; CI fetches
//! them first. A missing model file is a failure, not a skip.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use hofbench::tokenizer::GgufTokenizer;

fn cache_dir() -> PathBuf {
    match std::env::var_os("HOFBENCH_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dirs::home_dir()
            .expect("no home directory: set HOFBENCH_CACHE")
            .join(".cache")
            .join("hofbench"),
    }
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(name)
}

/// The model's GGUF file: `file` if given, else the first `.gguf` (by name) in its folder.
fn model_file(model: &str, file: Option<&str>) -> PathBuf {
    let dir = cache_dir().join("models").join(model);
    let fetch_hint = format!(
        "run the model fetch step first: `cargo build --release && ./target/release/hofbench \
         fetch {model}` (scripts/test.sh does it), or set HOFBENCH_CACHE to a cache that has it"
    );
    if let Some(file) = file {
        let path = dir.join(file);
        assert!(
            path.is_file(),
            "model file {} is missing: {fetch_hint}",
            path.display()
        );
        return path;
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}: {fetch_hint}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no .gguf file in {}: {fetch_hint}",
        dir.display()
    );
    found.swap_remove(0)
}

fn load(path: &Path) -> GgufTokenizer {
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let content = gguf_file::Content::read(&mut file)
        .unwrap_or_else(|e| panic!("{}: reading GGUF: {e}", path.display()));
    let start = Instant::now();
    let tok = GgufTokenizer::from_gguf(&content, path)
        .unwrap_or_else(|e| panic!("{}: building the tokenizer: {e}", path.display()));
    eprintln!(
        "{}: tokenizer with {} tokens built in {:.2?}",
        path.display(),
        tok.vocab_size(),
        start.elapsed()
    );
    tok
}

struct Case {
    text: String,
    ids: Vec<u32>,
}

fn read_cases(path: &Path) -> Vec<Case> {
    let raw = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value =
        serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = json["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no \"cases\" array", path.display()));
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let text = c["text"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: case {i} has no text", path.display()))
                .to_string();
            let ids = c["llama_cpp"]
                .as_array()
                .unwrap_or_else(|| panic!("{}: case {i} has no llama_cpp ids", path.display()))
                .iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|x| u32::try_from(x).ok())
                        .unwrap_or_else(|| panic!("{}: case {i}: bad id {v}", path.display()))
                })
                .collect();
            Case { text, ids }
        })
        .collect()
}

/// Compare every fixture case; `None` when the fixture is not there yet.
fn check(fixture: &str, model: &str, file: Option<&str>) -> Option<(usize, usize)> {
    let fixture = fixture_path(fixture);
    if !fixture.is_file() {
        eprintln!("{}: no fixture, nothing to compare", fixture.display());
        return None;
    }
    let cases = read_cases(&fixture);
    assert!(!cases.is_empty(), "{}: no cases", fixture.display());
    let tok = load(&model_file(model, file));
    let mut failures = Vec::new();
    for case in &cases {
        let ours = tok
            .encode(&case.text)
            .unwrap_or_else(|e| panic!("encoding {:?}: {e}", case.text));
        if ours != case.ids {
            failures.push(format!(
                "text {:?}\n    llama.cpp: {:?}\n    ours:      {:?}",
                case.text, case.ids, ours
            ));
        }
    }
    let matched = cases.len() - failures.len();
    eprintln!("{model}: {matched}/{} cases match llama.cpp", cases.len());
    assert!(
        failures.is_empty(),
        "{model}: {} of {} cases differ from llama.cpp; first ones:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    Some((matched, cases.len()))
}

#[test]
fn smollm2_matches_llama_cpp() {
    check(
        "smollm2.json",
        "smollm2-135m-instruct",
        Some("SmolLM2-135M-Instruct.Q4_1.gguf"),
    );
}

#[test]
fn gemma3_matches_llama_cpp() {
    check("gemma3-270m.json", "gemma3-270m", None);
}
