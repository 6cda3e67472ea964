//! The translation pipeline end to end on the tiny random NLLB (tests/fixtures/nllb/tiny):
//! sentence split, cache, resume, English rows, the paper's CSV import, and bad input.

use crate::harness::bin;
use candle_core::Device;
use hofbench::engine::models::nllb::{GenerateOptions, MaxLength, Translator};
use hofbench::prompts::{PromptItem, PromptSet};
use hofbench::translate::import::import_files;
use hofbench::translate::pipeline::{resolve_languages, run_pipeline, PipelineOptions};
use hofbench::translate::split::{join_segments, split_sentences};
use hofbench::translate::{
    lang_file, load_for_run, texts_of, CacheManifest, Field, LangCache, TranslationRow,
    MANIFEST_FILE,
};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tiny_path() -> PathBuf {
    root().join("tests/fixtures/nllb/tiny")
}

fn tiny() -> Translator {
    Translator::load(&tiny_path(), &Device::Cpu).unwrap()
}

fn opts() -> PipelineOptions {
    PipelineOptions {
        generate: GenerateOptions {
            beams: 2,
            max_length: MaxLength::Fixed(12),
            length_penalty: 1.0,
        },
        batch_size: 3,
        back_translation: true,
    }
}

fn items(n: usize) -> Vec<PromptItem> {
    PromptSet::builtin()
        .unwrap()
        .items
        .into_iter()
        .take(n)
        .collect()
}

fn rows(dir: &Path, lang: &str) -> Vec<TranslationRow> {
    LangCache::open(dir, lang)
        .unwrap()
        .rows
        .into_values()
        .collect()
}

#[test]
fn translates_sentence_by_sentence_and_rejoins() {
    let t = tiny();
    let dir = tempfile::tempdir().unwrap();
    let items = items(2);
    let texts = texts_of(&items);
    let langs = vec!["fra_Latn".to_string(), "eng_Latn".to_string()];
    let report = run_pipeline(Some(&t), &texts, &langs, &opts(), dir.path(), true).unwrap();
    assert_eq!(report.written["fra_Latn"], texts.len());
    let fra = LangCache::open(dir.path(), "fra_Latn").unwrap();
    assert_eq!(fra.rows.len(), 2 * 3 + 2);
    // The request is translated per sentence, in batches, and re-joined: the same as
    // translating each sentence alone.
    let request = &items[0].request;
    let segs = split_sentences(request);
    assert!(segs.len() > 3, "{segs:?}");
    let each: Vec<String> = segs
        .iter()
        .map(|s| {
            t.translate(&[&s.text], "eng_Latn", "fra_Latn", &opts().generate)
                .unwrap()
                .remove(0)
        })
        .collect();
    let seps: Vec<String> = segs.iter().map(|s| s.separator.clone()).collect();
    let row = fra.get(&items[0].id, Field::Request, request).unwrap();
    assert_eq!(row.translation, join_segments(&each, &seps, "fra_Latn"));
    // Round trip: back-translation and its scores against the English source.
    let back = row.back_translation.as_deref().unwrap();
    assert_eq!(row.bleu, Some(hofbench::bleu::sentence_bleu(back, request)));
    assert_eq!(row.chrf, Some(hofbench::bleu::sentence_chrf(back, request)));
    // English rows are copies, not translations.
    let eng = LangCache::open(dir.path(), "eng_Latn").unwrap();
    let e = eng
        .get(&items[1].id, Field::LowAction, &items[1].low_action)
        .unwrap();
    assert_eq!(e.translation, items[1].low_action);
    assert_eq!((e.back_translation.as_deref(), e.bleu), (None, None));
    // Everything the multilingual run needs is there.
    let loaded = load_for_run(dir.path(), &langs, &items).unwrap();
    assert_eq!(loaded[0].items.len(), 2);
    assert_eq!(loaded[1].instructions[0], "Choose one side.");
}

#[test]
fn a_rerun_translates_only_what_is_missing_and_resumes_after_a_torn_write() {
    let t = tiny();
    let items = items(3);
    let texts = texts_of(&items);
    let langs = vec!["deu_Latn".to_string()];
    let full = tempfile::tempdir().unwrap();
    run_pipeline(Some(&t), &texts, &langs, &opts(), full.path(), true).unwrap();
    let want = rows(full.path(), "deu_Latn");

    // A killed run: the first 4 rows complete, the fifth cut in the middle of its line.
    let part = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(lang_file(full.path(), "deu_Latn")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut torn = lines[..4].join("\n");
    torn.push('\n');
    torn.push_str(&lines[4][..lines[4].len() / 2]);
    std::fs::write(lang_file(part.path(), "deu_Latn"), torn).unwrap();
    let report = run_pipeline(Some(&t), &texts, &langs, &opts(), part.path(), true).unwrap();
    assert_eq!(report.already_cached["deu_Latn"], 4);
    assert_eq!(report.written["deu_Latn"], texts.len() - 4);
    assert_eq!(rows(part.path(), "deu_Latn"), want);
    // Nothing left to do; and a changed English text is translated again.
    let again = run_pipeline(Some(&t), &texts, &langs, &opts(), part.path(), true).unwrap();
    assert_eq!(again.written["deu_Latn"], 0);
    let mut changed = items.clone();
    changed[0].high_action = "Take the other job".into();
    let re = run_pipeline(
        Some(&t),
        &texts_of(&changed),
        &langs,
        &opts(),
        part.path(),
        true,
    )
    .unwrap();
    assert_eq!(re.written["deu_Latn"], 1);
}

#[test]
fn the_cli_writes_the_cache_and_manifest_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("p.jsonl");
    let text = std::fs::read_to_string(root().join("prompts/requests/pdi.jsonl")).unwrap();
    std::fs::write(
        &prompts,
        text.lines().take(2).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let out = dir.path().join("cache");
    let run = || {
        bin()
            .args(["--quiet", "translate", "--model"])
            .arg(tiny_path())
            .args([
                "--languages",
                "kor_Hang,eng_Latn",
                "--beams",
                "1",
                "--max-length",
                "10",
            ])
            .arg("--prompts")
            .arg(&prompts)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kor = rows(&out, "kor_Hang");
    assert_eq!(kor.len(), 8);
    assert!(kor.iter().all(|r| r.lang == "kor_Hang" && r.bleu.is_some()));
    let manifest: CacheManifest =
        serde_json::from_str(&std::fs::read_to_string(out.join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(manifest.models.len(), 1);
    assert_eq!(manifest.models[0].beams, 1);
    assert!(manifest.models[0].sha256.contains_key("model.safetensors"));
    assert_eq!(manifest.languages["kor_Hang"].rows, 8);
    // Rerun: nothing new is appended.
    let before = std::fs::read_to_string(lang_file(&out, "kor_Hang")).unwrap();
    assert!(run().status.success());
    assert_eq!(
        std::fs::read_to_string(lang_file(&out, "kor_Hang")).unwrap(),
        before
    );
}

#[test]
fn unknown_language_codes_are_refused() {
    let err = resolve_languages("kor_Hang,korean", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"korean\""), "{err}");
    let t = tiny();
    let err = resolve_languages("kor_Hang,hin_Deva", Some(&t.tokenizer.lang_ids))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hin_Deva") && !err.contains("kor_Hang,"),
        "{err}"
    );
    let all = resolve_languages("all", None).unwrap();
    assert_eq!(all.len(), 36);
    let o = bin()
        .args(["translate", "--model"])
        .arg(tiny_path())
        .args([
            "--languages",
            "xx_Latn",
            "--out",
            "/nonexistent/never-created",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("xx_Latn"), "{err}");
}

#[test]
fn empty_and_too_long_texts_are_clear_errors() {
    let t = tiny();
    let dir = tempfile::tempdir().unwrap();
    let langs = vec!["fra_Latn".to_string()];
    let empty = vec![("p-1".to_string(), Field::Request, "   ".to_string())];
    let err = run_pipeline(Some(&t), &empty, &langs, &opts(), dir.path(), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("p-1") && err.contains("empty"), "{err}");
    // One "sentence" longer than the tiny model's 256 positions cannot be split further.
    let long = vec![(
        "p-2".to_string(),
        Field::Request,
        "word, ".repeat(300) + "end.",
    )];
    let err = run_pipeline(Some(&t), &long, &langs, &opts(), dir.path(), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exceeds the model's 256 positions"), "{err}");
    // Nothing half-done was written.
    assert!(rows(dir.path(), "fra_Latn").is_empty());
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/translations").join(name)
}

#[test]
fn imports_the_papers_csv_keeping_missing_actions_in_english() {
    let prompts = PromptSet::load(&fixture("paper_prompts.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = import_files(
        &[fixture("paper_translations.csv")],
        &prompts,
        dir.path(),
        None,
        &opts(),
        true,
    )
    .unwrap();
    assert_eq!(report.unmatched, 1);
    assert_eq!(report.imported["fra_Latn"], 2);
    assert_eq!(report.imported["deu_Latn"], 1);
    let fra = LangCache::open(dir.path(), "fra_Latn").unwrap();
    // Matched despite straight vs curly quotes and a doubled space.
    let first = &prompts.items[0];
    let r = fra.get(&first.id, Field::Request, &first.request).unwrap();
    assert!(r.translation.starts_with("On m'a proposé"));
    assert_eq!(r.bleu, Some(0.38));
    assert!(r.chrf.is_some());
    // No model: actions and instructions are kept in English, and the manifest says so.
    let a = fra
        .get(&first.id, Field::HighAction, &first.high_action)
        .unwrap();
    assert_eq!(a.translation, first.high_action);
    let manifest = CacheManifest::load_or_new(dir.path()).unwrap();
    assert!(manifest.kept_in_english["fra_Latn"].contains(&"high_action".to_string()));
    assert_eq!(manifest.imports[0].rows_unmatched, 1);
    assert_eq!(manifest.languages["fra_Latn"].low_bleu_rows, 1);
    // The English row is a copy; the run finds everything for these three languages.
    let langs: Vec<String> = ["fra_Latn", "eng_Latn"].map(String::from).to_vec();
    let loaded = load_for_run(dir.path(), &langs, &prompts.items).unwrap();
    assert_eq!(loaded[0].items.len(), 2);
    // deu_Latn has only the first prompt: the error names the language and the prompt.
    let err = load_for_run(dir.path(), &["deu_Latn".to_string()], &prompts.items)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("deu_Latn") && err.contains(&prompts.items[1].id),
        "{err}"
    );
    assert!(err.contains("hofbench translate"), "{err}");
    // Importing the same file again adds nothing.
    let again = import_files(
        &[fixture("paper_translations.csv")],
        &prompts,
        dir.path(),
        None,
        &opts(),
        true,
    )
    .unwrap();
    assert_eq!(again.imported.values().sum::<usize>(), 0);
}

#[test]
fn import_with_a_model_translates_the_actions() {
    let prompts = PromptSet::load(&fixture("paper_prompts.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = tiny();
    let report = import_files(
        &[fixture("paper_translations.csv")],
        &prompts,
        dir.path(),
        Some(&t),
        &opts(),
        true,
    )
    .unwrap();
    assert!(report.kept_in_english.is_empty());
    let fra = LangCache::open(dir.path(), "fra_Latn").unwrap();
    let first = &prompts.items[0];
    let a = fra
        .get(&first.id, Field::HighAction, &first.high_action)
        .unwrap();
    assert!(a.back_translation.is_some() && a.bleu.is_some());
    let manifest = CacheManifest::load_or_new(dir.path()).unwrap();
    assert!(manifest.kept_in_english.is_empty());
    assert_eq!(manifest.models.len(), 1);
}

#[test]
fn bad_import_rows_name_file_and_line() {
    let prompts = PromptSet::load(&fixture("paper_prompts.csv")).unwrap();
    let good = std::fs::read_to_string(fixture("paper_translations.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            good.replace(",0.38,fra_Latn", ",38,fra_Latn"),
            ":2:",
            "Back_BLEU_Score",
        ),
        (
            good.replace(",deu_Latn,", ",German,"),
            ":4:",
            "Target_Language",
        ),
        (
            good.replace("Back_Translation,", "Back_Text,"),
            ":1:",
            "Back_Translation",
        ),
    ];
    for (text, line, what) in cases {
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, text).unwrap();
        let err = import_files(
            &[path],
            &prompts,
            &dir.path().join("out"),
            None,
            &opts(),
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("bad.csv{line}")) && err.contains(what),
            "{err}"
        );
    }
}

#[test]
fn every_country_language_is_a_real_nllb_200_code() {
    let codes =
        std::fs::read_to_string(root().join("tests/fixtures/nllb/nllb200_codes.txt")).unwrap();
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(codes.len(), 202);
    for c in hofbench::countries::builtin() {
        assert!(
            codes.contains(&c.nllb_code.as_str()),
            "{}: {}",
            c.name,
            c.nllb_code
        );
    }
}

/// The multilingual approach end to end: the tiny NLLB's French, SmolLM2 scoring it.
#[test]
fn multilingual_run_reads_the_cache_and_flags_low_bleu() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("p.jsonl");
    let text = std::fs::read_to_string(root().join("prompts/requests/pdi.jsonl")).unwrap();
    std::fs::write(&prompts, text.lines().next().unwrap()).unwrap();
    let cache = dir.path().join("cache");
    let o = bin()
        .args(["--quiet", "translate", "--model"])
        .arg(tiny_path())
        .args([
            "--languages",
            "fra_Latn",
            "--beams",
            "1",
            "--max-length",
            "8",
        ])
        .arg("--prompts")
        .arg(&prompts)
        .arg("--out")
        .arg(&cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = |countries: &str, out: &Path| {
        bin()
            .args([
                "--quiet",
                "run",
                "--approach",
                "multilingual",
                "--keep-text",
            ])
            .args(["--countries", countries, "--translations"])
            .arg(&cache)
            .arg("--prompts")
            .arg(&prompts)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    // Japanese is not in the cache: the error names it, the prompt and the fix.
    let o = run("France,Japan", &dir.path().join("missing"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("jpn_Jpan") && err.contains("pdi-001"), "{err}");
    assert!(
        err.contains("hofbench translate") && err.contains("import-translations"),
        "{err}"
    );
    assert!(!dir.path().join("missing").join("results.jsonl").exists());

    let out = dir.path().join("run");
    let o = run("France,United States", &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    let fra = LangCache::open(&cache, "fra_Latn").unwrap();
    for r in &rows {
        assert_eq!(r["approach"], "multilingual");
        let rendered = r["rendered"][0].as_str().unwrap();
        assert!(!rendered.contains("imagining"), "{rendered}");
        if r["country"] == "France" {
            assert_eq!(r["lang"], "fra_Latn");
            let req = fra
                .rows
                .values()
                .find(|x| x.field == Field::Request)
                .unwrap();
            assert!(rendered.contains(req.translation.trim()), "{rendered}");
            assert_eq!(r["translation_bleu"].as_f64(), req.bleu);
            assert_eq!(r["low_bleu"], serde_json::json!(req.bleu.unwrap() < 0.2));
        } else {
            assert_eq!(r["lang"], "eng_Latn");
            assert!(rendered.contains("Choose one side."), "{rendered}");
            assert!(r.get("translation_bleu").is_none());
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["settings"]["bleu_threshold"], 0.2);
    assert_eq!(manifest["settings"]["approach"], "multilingual");
}

/// Kill `hofbench translate` while it writes, rerun it: the cache ends up exactly as an
/// uninterrupted run's (nothing finished is lost or repeated).
#[test]
fn a_killed_translate_resumes_to_the_same_cache() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("p.jsonl");
    let text = std::fs::read_to_string(root().join("prompts/requests/uai.jsonl")).unwrap();
    std::fs::write(
        &prompts,
        text.lines().take(10).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let cmd = |out: &Path| {
        let mut c = bin();
        c.args(["--quiet", "translate", "--model"])
            .arg(tiny_path())
            .args(["--languages", "fra_Latn,deu_Latn", "--beams", "1"])
            .arg("--prompts")
            .arg(&prompts)
            .arg("--out")
            .arg(out);
        c
    };
    let whole = dir.path().join("whole");
    assert!(cmd(&whole).status().unwrap().success());
    let killed = dir.path().join("killed");
    let mut child = cmd(&killed).spawn().unwrap();
    let first = lang_file(&killed, "fra_Latn");
    let t0 = std::time::Instant::now();
    while !(first.exists() && std::fs::metadata(&first).unwrap().len() > 0) {
        if t0.elapsed().as_secs() > 120 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The kill must land while the child still runs and before the cache is complete, or the
    // resume below would test nothing.
    assert!(
        child.try_wait().unwrap().is_none(),
        "translate finished before the kill"
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    let lines_of = |dir: &Path| -> usize {
        ["fra_Latn", "deu_Latn"]
            .iter()
            .map(|l| {
                std::fs::read_to_string(lang_file(dir, l))
                    .map(|t| t.lines().count())
                    .unwrap_or(0)
            })
            .sum()
    };
    let (after_kill, complete) = (lines_of(&killed), lines_of(&whole));
    assert!(
        after_kill < complete,
        "the killed cache holds {after_kill} of {complete} rows: not incomplete"
    );
    assert!(cmd(&killed).status().unwrap().success());
    for lang in ["fra_Latn", "deu_Latn"] {
        assert_eq!(rows(&killed, lang), rows(&whole, lang), "{lang}");
        let lines = std::fs::read_to_string(lang_file(&killed, lang)).unwrap();
        assert_eq!(
            lines.lines().count(),
            10 * 3 + 2,
            "{lang}: no row written twice"
        );
    }
}

#[test]
fn without_back_translation_rows_have_no_round_trip_scores() {
    let t = tiny();
    let dir = tempfile::tempdir().unwrap();
    let o = PipelineOptions {
        back_translation: false,
        ..opts()
    };
    let texts = texts_of(&items(1));
    run_pipeline(
        Some(&t),
        &texts,
        &["ces_Latn".to_string()],
        &o,
        dir.path(),
        true,
    )
    .unwrap_err(); // not among the tiny tokenizer's languages
    run_pipeline(
        Some(&t),
        &texts,
        &["jpn_Jpan".to_string()],
        &o,
        dir.path(),
        true,
    )
    .unwrap();
    let jpn = rows(dir.path(), "jpn_Jpan");
    assert_eq!(jpn.len(), texts.len());
    assert!(jpn
        .iter()
        .all(|r| r.back_translation.is_none() && r.bleu.is_none() && r.chrf.is_none()));
}

/// `translate --model org/name` finds the checkpoint in an offline hub cache ($HF_HUB_CACHE),
/// the same lookup as `run --model`, and records the hub name and snapshot revision.
#[test]
fn translate_takes_a_hub_id_from_an_offline_cache() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let commit = "89abcdef0123456789abcdef0123456789abcdef";
    let repo = hub.join("models--tiny--nllb");
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(tiny_path().join(f), snap.join(f)).unwrap();
    }
    let prompts = dir.path().join("p.jsonl");
    let text = std::fs::read_to_string(root().join("prompts/requests/idv.jsonl")).unwrap();
    std::fs::write(&prompts, text.lines().next().unwrap()).unwrap();
    let out = dir.path().join("cache");
    let run = |model: &str| {
        bin()
            .env("HF_HUB_CACHE", &hub)
            .args(["--quiet", "translate", "--model", model])
            .args([
                "--languages",
                "fra_Latn",
                "--beams",
                "1",
                "--max-length",
                "8",
            ])
            .arg("--no-back-translation")
            .arg("--prompts")
            .arg(&prompts)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run("tiny/nllb");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(rows(&out, "fra_Latn").len(), 3 + 2);
    let manifest = CacheManifest::load_or_new(&out).unwrap();
    assert_eq!(manifest.models[0].name, "tiny/nllb");
    assert_eq!(manifest.models[0].revision.as_deref(), Some(commit));
    let missing = run("tiny/absent");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && err.contains("models--tiny--absent"),
        "{err}"
    );
}

/// A translation cache whose writer was killed inside a multi-byte character: readers (a run,
/// `stats`) skip the torn line and leave the file alone; only the writer cuts it, and appends.
#[test]
fn a_cache_line_torn_inside_a_multibyte_character_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let row = |id: &str, text: &str| TranslationRow {
        translation: text.to_string(),
        lang: "jpn_Jpan".into(),
        ..TranslationRow::english(id, Field::Request, "Should I stay?")
    };
    let first = serde_json::to_string(&row("a", "残るべきですか")).unwrap();
    let second = serde_json::to_string(&row("b", "行くべきですか")).unwrap();
    let cut = second.find("行").unwrap() + 1; // one byte into a three-byte character
    let bytes = [format!("{first}\n").as_bytes(), &second.as_bytes()[..cut]].concat();
    let path = lang_file(dir.path(), "jpn_Jpan");
    std::fs::write(&path, &bytes).unwrap();
    let read = LangCache::open(dir.path(), "jpn_Jpan").unwrap();
    assert_eq!(read.rows.len(), 1);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a reader truncated the cache"
    );
    let written = LangCache::open_for_append(dir.path(), "jpn_Jpan").unwrap();
    assert_eq!(written.rows.len(), 1);
    hofbench::translate::append_rows(dir.path(), "jpn_Jpan", &[row("b", "行くべきですか")])
        .unwrap();
    assert_eq!(rows(dir.path(), "jpn_Jpan").len(), 2);
}

/// Texts an import without `--model` kept in English are not translations: a later
/// `translate` (here the pipeline with the tiny NLLB) translates them.
#[test]
fn texts_kept_in_english_are_translated_by_a_later_translate() {
    let prompts = PromptSet::load(&fixture("paper_prompts.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    import_files(
        &[fixture("paper_translations.csv")],
        &prompts,
        dir.path(),
        None,
        &opts(),
        true,
    )
    .unwrap();
    let first = &prompts.items[0];
    let kept = LangCache::open(dir.path(), "fra_Latn").unwrap();
    let action = kept
        .get(&first.id, Field::HighAction, &first.high_action)
        .unwrap();
    assert!(action.kept_in_english, "{action:?}");
    let texts: Vec<(String, Field, String)> = texts_of(&prompts.items[..1])
        .into_iter()
        .filter(|(_, f, _)| *f != Field::Request)
        .collect();
    let t = tiny();
    let langs = ["fra_Latn".to_string()];
    let report = run_pipeline(Some(&t), &texts, &langs, &opts(), dir.path(), true).unwrap();
    assert_eq!(report.already_cached["fra_Latn"], 0);
    assert_eq!(report.written["fra_Latn"], texts.len());
    let now = LangCache::open(dir.path(), "fra_Latn").unwrap();
    let action = now
        .get(&first.id, Field::HighAction, &first.high_action)
        .unwrap();
    assert!(!action.kept_in_english && action.back_translation.is_some());
}

/// An import whose rows match no prompt is an error (exit status 1) that says why, and
/// leaves no cache behind.
#[test]
fn an_import_that_matches_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cache");
    let o = bin()
        .args(["--quiet", "import-translations"])
        .arg(fixture("paper_translations.csv"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    // The builtin prompt set is not the fixture's: nothing matches.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("paper_translations.csv") && err.contains("matches a request"),
        "{err}"
    );
    assert!(!lang_file(&out, "fra_Latn").exists());
}
