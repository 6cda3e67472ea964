//! NLLB / M2M100 port against Hugging Face transformers on a tiny random model
//! (tests/fixtures/nllb/gen_nllb.py): encoder states, teacher-forced logits, greedy and
//! beam-search ids; and config parsing plus shapes for the real NLLB-200 configs.

use candle_core::{Device, Tensor};
use hofbench::engine::models::nllb::{
    self, Config, GenerateOptions, MaxLength, NllbModel, NllbTokenizer, Translator,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nllb")
}

#[derive(Deserialize)]
struct Fixture {
    max_length: usize,
    vocab_size: usize,
    lang_ids: std::collections::BTreeMap<String, u32>,
    batches: Vec<Batch>,
}

#[derive(Deserialize)]
struct Batch {
    src_lang: String,
    tgt_lang: String,
    texts: Vec<String>,
    source_ids: Vec<Vec<u32>>,
    encoder_states: Vec<f32>,
    encoder_shape: Vec<usize>,
    decoder_input_ids: Vec<Vec<u32>>,
    logits: Vec<f32>,
    logits_shape: Vec<usize>,
    greedy: Vec<Vec<u32>>,
    beam4: Vec<Vec<u32>>,
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(fixtures().join("tiny_parity.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn tiny() -> Translator {
    Translator::load(&fixtures().join("tiny"), &Device::Cpu).unwrap()
}

#[test]
fn tokenizer_and_language_codes_match_the_reference() {
    let fx = fixture();
    let t = tiny();
    assert_eq!(t.tokenizer.lang_ids, fx.lang_ids);
    assert_eq!(t.model.vocab_size(), fx.vocab_size);
    for b in &fx.batches {
        let texts: Vec<&str> = b.texts.iter().map(String::as_str).collect();
        assert_eq!(t.encode_sources(&texts, &b.src_lang).unwrap(), b.source_ids);
    }
}

#[test]
fn encoder_states_and_teacher_forced_logits_match() {
    let fx = fixture();
    let t = tiny();
    for b in &fx.batches {
        let (enc, mut cache) = t.model.encode(&b.source_ids).unwrap();
        assert_eq!(enc.dims(), &b.encoder_shape[..]);
        let got: Vec<f32> = enc.flatten_all().unwrap().to_vec1().unwrap();
        let d = max_abs_diff(&got, &b.encoder_states);
        assert!(d < 1e-4, "encoder states differ by {d}");
        let logits = t.model.decode(&b.decoder_input_ids, &mut cache).unwrap();
        assert_eq!(logits.dims(), &b.logits_shape[..]);
        let got: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        let d = max_abs_diff(&got, &b.logits);
        assert!(d < 1e-4, "logits differ by {d}");
    }
}

#[test]
fn decoding_step_by_step_with_the_cache_matches_one_pass() {
    let fx = fixture();
    let t = tiny();
    let b = &fx.batches[0];
    let (_, cache) = t.model.encode(&b.source_ids).unwrap();
    let mut full_cache = cache.clone();
    let full = t
        .model
        .decode(&b.decoder_input_ids, &mut full_cache)
        .unwrap();
    let mut step_cache = cache;
    let n = b.decoder_input_ids[0].len();
    for i in 0..n {
        let col: Vec<Vec<u32>> = b.decoder_input_ids.iter().map(|r| vec![r[i]]).collect();
        let step = t.model.decode_last(&col, &mut step_cache).unwrap();
        let want = full.narrow(1, i, 1).unwrap().squeeze(1).unwrap();
        let d = (step - want)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-4, "step {i}: {d}");
    }
}

fn generate(t: &Translator, b: &Batch, beams: usize, max_length: usize) -> Vec<Vec<u32>> {
    let opts = GenerateOptions {
        beams,
        max_length: MaxLength::Fixed(max_length),
        length_penalty: 1.0,
    };
    t.model
        .generate(
            &b.source_ids,
            t.tokenizer.lang_id(&b.tgt_lang).unwrap(),
            &opts,
        )
        .unwrap()
}

#[test]
fn greedy_ids_match_per_row_stopping() {
    let fx = fixture();
    let t = tiny();
    let mut stopped_early = 0;
    for b in &fx.batches {
        assert_eq!(generate(&t, b, 1, fx.max_length), b.greedy, "{:?}", b.texts);
        stopped_early += b
            .greedy
            .iter()
            .filter(|r| r.len() > 2 && r.len() < fx.max_length - 1)
            .count();
    }
    assert!(
        stopped_early > 0,
        "the fixture should stop some rows at </s>"
    );
}

#[test]
fn beam_search_ids_match() {
    let fx = fixture();
    let t = tiny();
    for b in &fx.batches {
        assert_eq!(generate(&t, b, 4, fx.max_length), b.beam4, "{:?}", b.texts);
    }
}

#[test]
fn a_row_translates_the_same_alone_and_in_a_batch() {
    let fx = fixture();
    let t = tiny();
    let b = &fx.batches[0];
    let tgt = t.tokenizer.lang_id(&b.tgt_lang).unwrap();
    let opts = GenerateOptions {
        beams: 4,
        max_length: MaxLength::Fixed(fx.max_length),
        length_penalty: 1.0,
    };
    for (i, row) in b.source_ids.iter().enumerate() {
        let alone = t
            .model
            .generate(std::slice::from_ref(row), tgt, &opts)
            .unwrap();
        assert_eq!(alone[0], b.beam4[i]);
    }
}

/// Re-save the tiny weights as two shards with an index, the embedding under another of
/// the names checkpoints use, and check the model loads to the same logits.
#[test]
fn sharded_weights_and_embedding_aliases_load() {
    let src = fixtures().join("tiny");
    let tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    for alias in [
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut names: Vec<&String> = tensors.keys().collect();
        names.sort();
        let (a, b) = names.split_at(names.len() / 2);
        let mut map = serde_json::Map::new();
        for (file, part) in [
            ("model-00001-of-00002.safetensors", a),
            ("model-00002-of-00002.safetensors", b),
        ] {
            let shard: std::collections::HashMap<String, Tensor> = part
                .iter()
                .map(|n| {
                    let name = if n.as_str() == "model.shared.weight" {
                        alias.to_string()
                    } else {
                        n.to_string()
                    };
                    map.insert(name.clone(), file.into());
                    (name, tensors[n.as_str()].clone())
                })
                .collect();
            candle_core::safetensors::save(&shard, dir.path().join(file)).unwrap();
        }
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            serde_json::json!({"metadata": {}, "weight_map": map}).to_string(),
        )
        .unwrap();
        for f in ["config.json", "tokenizer.json"] {
            std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        }
        let sharded = Translator::load(dir.path(), &Device::Cpu).unwrap();
        let fx = fixture();
        let b = &fx.batches[1];
        assert_eq!(generate(&sharded, b, 4, fx.max_length), b.beam4, "{alias}");
    }
}

#[test]
fn missing_and_malformed_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = Translator::load(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no config.json"), "{err}");
    std::fs::copy(
        fixtures().join("tiny/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let err = Translator::load(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no *.safetensors"), "{err}");
    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors").unwrap();
    let err = Translator::load(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors") || err.contains("safetensors"),
        "{err}"
    );
    std::fs::write(dir.path().join("config.json"), "{\"d_model\": 32}").unwrap();
    let err = Translator::load(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("config.json:"), "{err}");
}

#[test]
fn bad_translation_inputs_are_errors_naming_the_problem() {
    let t = tiny();
    let opts = GenerateOptions::default();
    let err = t
        .translate(&["Hello."], "eng_Latn", "xyz_Abcd", &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("xyz_Abcd"), "{err}");
    let err = t
        .translate(&["  "], "eng_Latn", "fra_Latn", &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty"), "{err}");
    let long = "word ".repeat(400);
    let err = t
        .translate(&[&long], "eng_Latn", "fra_Latn", &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exceeds the model's 256 positions"), "{err}");
}

/// The real checkpoints' configs parse, and a model with their widths (a few layers, small
/// vocabulary, random weights) runs the encoder and one decode step with the right shapes.
#[test]
fn real_nllb_configs_parse_and_run_with_their_shapes() {
    for (file, d, layers, ffn) in [
        ("nllb-200-distilled-600M.json", 1024, 12, 4096),
        ("nllb-200-1.3B.json", 1024, 24, 8192),
        ("nllb-200-3.3B.json", 2048, 24, 8192),
    ] {
        let cfg = Config::from_file(&fixtures().join("configs").join(file)).unwrap();
        assert_eq!(
            (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers),
            (d, layers, layers)
        );
        assert_eq!((cfg.encoder_ffn_dim, cfg.decoder_ffn_dim), (ffn, ffn));
        assert_eq!((cfg.encoder_attention_heads, cfg.vocab_size), (16, 256206));
        assert_eq!(
            (
                cfg.pad_token_id,
                cfg.eos_token_id,
                cfg.decoder_start_token_id
            ),
            (1, 2, 2)
        );
        assert_eq!(cfg.max_position_embeddings, 1024);
        assert!(cfg.scale_embedding);
        let small = Config {
            encoder_layers: 1,
            decoder_layers: 1,
            vocab_size: 512,
            ..cfg.clone()
        };
        let model: NllbModel = nllb::random_model(small, &Device::Cpu, 7).unwrap();
        let (enc, mut cache) = model
            .encode(&[vec![256, 5, 6, 2], vec![256, 9, 2]])
            .unwrap();
        assert_eq!(enc.dims(), &[2, 4, d]);
        let logits = model
            .decode_last(&[vec![2, 300], vec![2, 300]], &mut cache)
            .unwrap();
        assert_eq!(logits.dims(), &[2, 512]);
        let out = model
            .generate(
                &[vec![256, 5, 6, 2]],
                300,
                &GenerateOptions {
                    beams: 2,
                    max_length: MaxLength::Fixed(5),
                    length_penalty: 1.0,
                },
            )
            .unwrap();
        assert_eq!(out[0][0], 300);
        assert!(out[0].len() <= 4);
    }
}

#[test]
fn tokenizer_requires_language_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    let text = std::fs::read_to_string(fixtures().join("tiny/tokenizer.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["added_tokens"] = serde_json::Value::Array(
        v["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| !nllb::looks_like_lang_code(t["content"].as_str().unwrap()))
            .cloned()
            .collect(),
    );
    std::fs::write(&path, v.to_string()).unwrap();
    let err = NllbTokenizer::load(&path, 2).err().unwrap().to_string();
    assert!(err.contains("no language codes"), "{err}");
}

/// A Hugging Face hub-cache entry (`models--org--name/refs/main` → `snapshots/<rev>/`) loads,
/// by its entry folder or its snapshot folder, and reports its name and revision.
#[test]
fn hub_cache_entries_resolve_to_their_snapshot_and_revision() {
    let cache = tempfile::tempdir().unwrap();
    let entry = cache.path().join("models--facebook--nllb-tiny");
    let snap = entry.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(entry.join("refs")).unwrap();
    std::fs::write(entry.join("refs/main"), "0123abcd\n").unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("tiny").join(f), snap.join(f)).unwrap();
    }
    for path in [&entry, &snap] {
        let t = Translator::load(path, &Device::Cpu).unwrap();
        assert_eq!(t.checkpoint.name, "facebook/nllb-tiny");
        assert_eq!(t.checkpoint.revision.as_deref(), Some("0123abcd"));
        assert_eq!(t.checkpoint.dir, snap);
    }
}
