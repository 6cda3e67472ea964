//! Every supported family against Hugging Face transformers on tiny random checkpoints
//! (tests/fixtures/families/, made by gen_families.py): last-position logits of a right-padded
//! batch equal transformers' (each row run alone) within 8e-5, from safetensors and, for
//! Gemma 3, from a GGUF of the same weights.

use crate::common::rows;
use candle_core::Device;
use hofbench::engine::gguf::GgufFile;
use hofbench::engine::models::{self, CausalLm, PrefixGroup, WeightFormat};
use serde_json::Value;
use std::path::PathBuf;

/// About 10x the largest error measured: 7.6e-6 (llama3; gemma3 GGUF 4.2e-6, the other
/// families 2.5e-6 to 3.8e-6) on an AVX-512 CPU.
const TOLERANCE: f32 = 8e-5;

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/families"
    ))
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).unwrap()
}

/// Largest |ours - reference| over every row and token.
fn max_diff(ours: &[Vec<f32>], reference: &Value) -> f32 {
    let reference = reference.as_array().unwrap();
    assert_eq!(ours.len(), reference.len());
    ours.iter()
        .zip(reference)
        .flat_map(|(o, r)| {
            let r = r.as_array().unwrap();
            assert_eq!(o.len(), r.len());
            o.iter()
                .zip(r)
                .map(|(a, b)| (a - b.as_f64().unwrap() as f32).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f32::max)
}

fn logits(model: &dyn CausalLm, rows: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    model.next_token_logits(&refs).unwrap().to_vec2().unwrap()
}

fn check_family(name: &str) {
    let fx = expected();
    let rows = rows(&fx);
    let model = models::load_hf(&dir().join(name), &Device::Cpu, WeightFormat::F32).unwrap();
    let reference = &fx["families"][name]["last_logits"];
    let batched = logits(model.as_ref(), &rows);
    let d = max_diff(&batched, reference);
    eprintln!(
        "{name}: {} max |logit - transformers| = {d:.2e}",
        model.describe()
    );
    assert!(d <= TOLERANCE, "{name}: padded batch differs by {d}");
    // One row at a time gives the same.
    let single: Vec<Vec<f32>> = rows
        .iter()
        .flat_map(|r| logits(model.as_ref(), std::slice::from_ref(r)))
        .collect();
    assert!(
        max_diff(&single, reference) <= TOLERANCE,
        "{name}: single rows"
    );
    // Rows 0 and 2 share a 13-token prefix (longer than the sliding windows): run as a
    // prefix group, the cached prefix must give the same logits.
    let group = PrefixGroup::split(&[&rows[0], &rows[2]]);
    assert_eq!(group.prefix.len(), 12);
    let grouped: Vec<Vec<f32>> = model
        .next_token_logits_grouped(&[group])
        .unwrap()
        .to_vec2()
        .unwrap();
    let pair = [reference[0].clone(), reference[2].clone()];
    assert!(
        max_diff(&grouped, &Value::Array(pair.to_vec())) <= TOLERANCE,
        "{name}: shared prefix"
    );
}

#[test]
fn llama_untied_matches_transformers() {
    check_family("llama");
}

#[test]
fn llama3_rope_scaling_tied_matches_transformers() {
    check_family("llama3");
}

#[test]
fn gemma_matches_transformers() {
    check_family("gemma");
}

#[test]
fn gemma2_softcaps_and_sliding_window_match_transformers() {
    check_family("gemma2");
}

#[test]
fn gemma3_matches_transformers() {
    check_family("gemma3");
}

/// The GGUF stores its matrices as Q4_0, Q4_1, Q5_0, Q8_0, F16, BF16 and F32 (embedding
/// Q8_0); transformers ran the same bytes dequantized by gguf-py.
#[test]
fn gemma3_gguf_matches_the_same_weights_in_transformers() {
    let fx = expected();
    let rows = rows(&fx);
    let mut g = GgufFile::open(&dir().join("gemma3/model.gguf")).unwrap();
    let model = models::load_gguf(&mut g, &Device::Cpu, WeightFormat::F32).unwrap();
    let d = max_diff(
        &logits(model.as_ref(), &rows),
        &fx["families"]["gemma3"]["gguf_last_logits"],
    );
    eprintln!("gemma3 GGUF: max |logit - transformers| = {d:.2e}");
    assert!(d <= TOLERANCE, "gemma3 GGUF differs by {d}");
}

#[test]
fn gemma_batches_do_not_change_a_row() {
    // The same rows in batches of 1, 3 and 8 with different neighbours.
    let fx = expected();
    let base = rows(&fx);
    let model = models::load_hf(&dir().join("gemma2"), &Device::Cpu, WeightFormat::F32).unwrap();
    let alone = logits(model.as_ref(), &base[..1]);
    for neighbours in [
        vec![base[0].clone(), base[1].clone(), base[2].clone()],
        vec![
            base[3].clone(),
            base[2].clone(),
            base[0].clone(),
            base[1].clone(),
            base[2].clone(),
            base[3].clone(),
            base[1].clone(),
            base[2].clone(),
        ],
    ] {
        let at = neighbours.iter().position(|r| *r == base[0]).unwrap();
        let got = &logits(model.as_ref(), &neighbours)[at];
        let d = got
            .iter()
            .zip(&alone[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d <= 1e-5, "batch of {}: {d}", neighbours.len());
    }
}

#[test]
fn folders_without_weights_or_config_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = models::load_hf(tmp.path(), &Device::Cpu, WeightFormat::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
    std::fs::copy(
        dir().join("gemma3/config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    let err = models::load_hf(tmp.path(), &Device::Cpu, WeightFormat::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

/// The gemma3 folder's tokenizer and chat template: the prompt carries one BOS (the template
/// writes it, the tokenizer would add another) and scores like transformers.
#[test]
fn hf_folder_prompt_has_one_bos_and_scores_like_transformers() {
    let fx = expected();
    let chat = &fx["chat"];
    let scorer = hofbench::engine::loaded_model::LoadedModel::load(
        &dir().join("gemma3"),
        &Device::Cpu,
        WeightFormat::F32,
    )
    .unwrap();
    assert!(scorer.chat.from_model);
    let mut encoded = Vec::new();
    for order in chat["orders"].as_array().unwrap() {
        let content = order["content"].as_str().unwrap();
        let (text, ids) = scorer.encode_user_turn(content).unwrap();
        assert_eq!(text, order["text"].as_str().unwrap());
        let want: Vec<u32> = order["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, want);
        assert_eq!(
            ids.iter()
                .filter(|&&i| Some(i) == scorer.tokenizer.bos_id)
                .count(),
            1
        );
        encoded.push(ids);
    }
    // The two orders (high action first, then low) as `run` scores them: order 0's P(high) is
    // its P(A), order 1's is 1 - P(A).
    let item = hofbench::item_scorer::EncodedItem {
        orders: [&encoded[0][..], &encoded[1][..]],
        name: "Japan/idv".into(),
    };
    let s = hofbench::item_scorer::ItemScorer::new(&scorer)
        .score(&[item])
        .unwrap()
        .remove(0);
    let p_a = |k: usize| chat["orders"][k]["p_a"].as_f64().unwrap();
    let want = [p_a(0), 1.0 - p_a(1)];
    for (got, want) in s.p_high_by_order.iter().zip(want) {
        assert!((got - want).abs() <= 1e-4, "{got} vs {want}");
    }
    assert!((s.p_high - (want[0] + want[1]) / 2.0).abs() <= 1e-4);
}

/// `--model owner/name` finds a snapshot in an offline hub cache ($HF_HUB_CACHE) and runs
/// end to end; a missing id is an error naming where it looked.
#[test]
fn hub_id_runs_from_an_offline_cache() {
    let fx = expected();
    let chat = &fx["chat"];
    let tmp = tempfile::tempdir().unwrap();
    let hub = tmp.path().join("hub");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = hub.join("models--tiny--gemma3");
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(dir().join("gemma3").join(f), snap.join(f)).unwrap();
    }
    let out = tmp.path().join("run");
    let run = |model: &str| {
        crate::harness::bin()
            .env("HF_HUB_CACHE", &hub)
            .args(["--quiet", "run", "--model", model])
            .args([
                "--countries",
                "Japan",
                "--dimensions",
                "idv",
                "--limit",
                "1",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let ok = run("tiny/gemma3");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let row: Value = serde_json::from_str(
        std::fs::read_to_string(out.join("results.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(row["prompt_id"], chat["prompt_id"]);
    let orders = chat["orders"].as_array().unwrap();
    let want = [
        orders[0]["p_a"].as_f64().unwrap(),
        1.0 - orders[1]["p_a"].as_f64().unwrap(),
    ];
    for (got, want) in row["p_high_by_order"].as_array().unwrap().iter().zip(want) {
        let got = got.as_f64().unwrap();
        assert!((got - want).abs() <= 1e-4, "{got} vs {want}");
    }
    let missing = run("tiny/absent");
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("models--tiny--absent") && err.contains("huggingface-cli download"),
        "{err}"
    );
}

/// Metadata that disagrees with the tensors (a huge head size, too many layers) is an error
/// naming the key or tensor, found before anything is allocated from it.
#[test]
fn gguf_metadata_that_contradicts_the_tensors_is_an_error() {
    use candle_core::quantized::gguf_file::{self, Value};
    let src = dir().join("gemma3/model.gguf");
    let mut f = std::fs::File::open(&src).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let tensors: Vec<(String, candle_core::quantized::QTensor)> = content
        .tensor_infos
        .keys()
        .map(|n| (n.clone(), content.tensor(&mut f, n, &Device::Cpu).unwrap()))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    for (key, value, needle) in [
        (
            "gemma3.attention.key_length",
            Value::U32(1 << 28),
            "blk.0.attn_q.weight",
        ),
        // Refused by GgufFile::open already: more blocks than the tensors provide.
        ("gemma3.block_count", Value::U32(4096), "block_count = 4096"),
        ("gemma3.embedding_length", Value::U32(33), "token_embd"),
    ] {
        let mut metadata = content.metadata.clone();
        metadata.insert(key.to_string(), value);
        let path = tmp.path().join("bad.gguf");
        let mut out = std::fs::File::create(&path).unwrap();
        let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let ts: Vec<(&str, &candle_core::quantized::QTensor)> =
            tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        gguf_file::write(&mut out, &md, &ts).unwrap();
        drop(out);
        let err = match GgufFile::open(&path) {
            Err(e) => e.to_string(),
            Ok(mut g) => models::load_gguf(&mut g, &Device::Cpu, WeightFormat::F32)
                .err()
                .unwrap()
                .to_string(),
        };
        assert!(err.contains(needle), "{key}: {err}");
    }
}

/// tokenizer_config.json's shapes seen in released checkpoints: tokens as strings or
/// objects, the template as a string, a list of named templates, or a separate file.
#[test]
fn tokenizer_config_variants_are_read() {
    use hofbench::engine::tokenizer::HfPromptConfig;
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(tmp.path().join(name), text).unwrap();
    write(
        "tokenizer_config.json",
        r#"{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
            "add_bos_token": false,
            "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}"#,
    );
    let c = HfPromptConfig::read(tmp.path()).unwrap();
    assert_eq!(c.bos_token.as_deref(), Some("<s>"));
    assert_eq!(c.eos_token.as_deref(), Some("</s>"));
    assert_eq!(c.add_bos_token, Some(false));
    assert_eq!(c.chat_template.as_deref(), Some("D"));
    write("tokenizer_config.json", r#"{"bos_token": "<bos>"}"#);
    write("chat_template.json", r#"{"chat_template": "J"}"#);
    assert_eq!(
        HfPromptConfig::read(tmp.path())
            .unwrap()
            .chat_template
            .as_deref(),
        Some("J")
    );
    write("chat_template.jinja", "F");
    assert_eq!(
        HfPromptConfig::read(tmp.path())
            .unwrap()
            .chat_template
            .as_deref(),
        Some("F")
    );
    write("tokenizer_config.json", "{ broken");
    let err = HfPromptConfig::read(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("tokenizer_config.json:1"), "{err}");
}
