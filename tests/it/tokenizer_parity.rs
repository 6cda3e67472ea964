//! Token ids from `hofbench::engine::tokenizer::ModelTokenizer` must equal llama.cpp's on the real models.
//!
//! Fixtures: `tests/fixtures/tokenizer/<model>.json` = `{"cases": [{"text", "llama_cpp": [ids],
//! "hf": [ids]}]}`, made with llama.cpp (`parse_special = true`). The GGUF files live in the model
//! cache (`$HOFBENCH_CACHE`, default `~/.cache/hofbench`), `models/<name>/<file>.gguf`; CI fetches
//! them first. A missing model file or fixture is a failure, not a skip.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use hofbench::engine::tokenizer::ModelTokenizer;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(name)
}

/// The model card's GGUF in the cache.
fn model_file(model: &str) -> PathBuf {
    let card = hofbench::fetch::find_card(model).unwrap_or_else(|| panic!("no model card {model}"));
    let path = card.local_path();
    assert!(
        path.is_file(),
        "model file {} is missing: run the model fetch step first: `cargo build --release && \
         ./target/release/hofbench fetch {model}` (tests/run.sh does it)",
        path.display()
    );
    path
}

fn load(path: &Path) -> ModelTokenizer {
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let content = gguf_file::Content::read(&mut file)
        .unwrap_or_else(|e| panic!("{}: reading GGUF: {e}", path.display()));
    let start = Instant::now();
    let tok = ModelTokenizer::from_gguf(&content, path)
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
    /// llama.cpp's ids.
    ids: Vec<u32>,
    /// The Hugging Face tokenizer's ids, where the fixture has them.
    hf: Option<Vec<u32>>,
}

fn id_list(v: &serde_json::Value, what: &str) -> Option<Vec<u32>> {
    let ids = v.as_array()?;
    Some(
        ids.iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .unwrap_or_else(|| panic!("{what}: bad id {v}"))
            })
            .collect(),
    )
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
            let what = format!("{}: case {i}", path.display());
            let ids = id_list(&c["llama_cpp"], &what)
                .unwrap_or_else(|| panic!("{what}: no llama_cpp ids"));
            let hf = id_list(&c["hf"], &what);
            Case { text, ids, hf }
        })
        .collect()
}

/// Compare every fixture case with llama.cpp's ids and the reference tokenizer's.
fn check(fixture: &str, model: &str) {
    let fixture = fixture_path(fixture);
    let cases = read_cases(&fixture);
    assert!(
        cases.len() >= 200,
        "{}: only {} cases",
        fixture.display(),
        cases.len()
    );
    let tok = load(&model_file(model));
    let mut failures = Vec::new();
    let mut hf_checked = 0;
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
        if let Some(hf) = &case.hf {
            hf_checked += 1;
            if &ours != hf {
                failures.push(format!(
                    "text {:?}\n    HF:   {hf:?}\n    ours: {ours:?}",
                    case.text
                ));
            }
        }
    }
    eprintln!(
        "{model}: {} cases, {hf_checked} also checked against HF, {} mismatches",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{model}: {} mismatches; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn smollm2_matches_llama_cpp() {
    check("smollm2.json", "smollm2-135m-instruct");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check("gemma3-270m.json", "gemma3-270m");
}

#[test]
fn exactly_one_bos_whether_or_not_the_template_writes_it() {
    use hofbench::engine::loaded_model::encode_with_bos;
    // Gemma wants a BOS (add_bos_token = true).
    let gemma = load(&model_file("gemma3-270m"));
    let bos = gemma.bos_id.expect("gemma has a BOS token");
    assert!(gemma.add_bos);
    for text in ["User: hi\n\nAssistant:", "<bos>User: hi\n\nAssistant:"] {
        let ids = encode_with_bos(&gemma, text).unwrap();
        assert_eq!(ids[0], bos, "{text:?}");
        assert_eq!(
            ids.iter().filter(|&&i| i == bos).count(),
            1,
            "{text:?}: {ids:?}"
        );
    }
    // SmolLM2 wants none (add_bos_token = false) and its ChatML template writes none.
    let smol = load(&model_file("smollm2-135m-instruct"));
    assert!(!smol.add_bos);
    let ids = encode_with_bos(&smol, "<|im_start|>user\nhi<|im_end|>\n").unwrap();
    assert_eq!(
        ids,
        smol.encode("<|im_start|>user\nhi<|im_end|>\n").unwrap()
    );
}
