//! `hofbench translate`: every prompt's request and actions, and the instruction sentences,
//! into each language with NLLB-200, sentence by sentence in length-sorted batches; then back
//! to English for the round-trip BLEU/chrF. Rows are appended per chunk of texts, so a killed
//! run keeps everything it finished and a rerun translates only what is missing.

use super::split::{join_segments, split_sentences};
use super::{
    append_rows, texts_of, CacheManifest, Field, LangCache, ModelRecord, TranslationRow, ENGLISH,
};
use crate::countries;
use crate::engine::gguf::sha256_file;
use crate::engine::models::nllb::{self, GenerateOptions, MaxLength, Translator};
use crate::prompts::PromptItem;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Texts translated and written together: the most a killed run can lose.
const CHUNK: usize = 24;

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub generate: GenerateOptions,
    /// Sentences per forward pass.
    pub batch_size: usize,
    pub back_translation: bool,
}

/// What a pipeline run did, per language: rows written this run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PipelineReport {
    pub written: BTreeMap<String, usize>,
    pub already_cached: BTreeMap<String, usize>,
}

/// `all` (every country's language, table order) or a comma-separated list of NLLB codes.
/// Codes must look like NLLB codes and, when a tokenizer is given, be among its languages.
pub fn resolve_languages(spec: &str, known: Option<&BTreeMap<String, u32>>) -> Result<Vec<String>> {
    let spec = spec.trim();
    let mut out: Vec<String> = Vec::new();
    if spec.is_empty() || spec.eq_ignore_ascii_case("all") {
        for c in countries::builtin() {
            if !out.contains(&c.nllb_code) {
                out.push(c.nllb_code);
            }
        }
    } else {
        for code in spec.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !nllb::looks_like_lang_code(code) {
                return Err(Error::Usage(format!(
                    "unknown language code {code:?}: expected an NLLB-200 code like kor_Hang or fra_Latn"
                )));
            }
            if !out.iter().any(|c| c == code) {
                out.push(code.to_string());
            }
        }
    }
    if let Some(known) = known {
        let unknown: Vec<&str> = out
            .iter()
            .filter(|c| c.as_str() != ENGLISH && !known.contains_key(c.as_str()))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(Error::ModelLimit(format!(
                "unknown language code(s) {}: not among the model tokenizer's {} languages",
                unknown.join(", "),
                known.len()
            )));
        }
    }
    Ok(out)
}

/// Translate many texts (deduplicated, sorted by token length, in batches); returns them in
/// input order.
pub fn translate_texts(
    translator: &Translator,
    texts: &[String],
    src: &str,
    tgt: &str,
    opts: &PipelineOptions,
) -> Result<Vec<String>> {
    let mut unique: Vec<&str> = texts
        .iter()
        .map(String::as_str)
        .filter(|t| !t.trim().is_empty())
        .collect();
    unique.sort_unstable();
    unique.dedup();
    let ids = translator.encode_sources(&unique, src)?;
    let mut order: Vec<usize> = (0..unique.len()).collect();
    // Similar lengths together waste less on padding; ties keep text order, so runs repeat.
    order.sort_by_key(|&i| (ids[i].len(), i));
    let tgt_id = translator.tokenizer.lang_id(tgt)?;
    let mut done: HashMap<&str, String> = HashMap::with_capacity(unique.len());
    for batch in order.chunks(opts.batch_size.max(1)) {
        let sources: Vec<Vec<u32>> = batch.iter().map(|&i| ids[i].clone()).collect();
        let out = translator
            .model
            .generate(&sources, tgt_id, &opts.generate)?;
        for (&i, gen) in batch.iter().zip(out) {
            done.insert(unique[i], translator.tokenizer.decode(&gen)?);
        }
    }
    Ok(texts
        .iter()
        .map(|t| done.get(t.as_str()).cloned().unwrap_or_default())
        .collect())
}

/// Translate one chunk of (prompt_id, field, English text) into `lang`, with round trip.
fn translate_chunk(
    translator: &Translator,
    chunk: &[(String, Field, String)],
    lang: &str,
    opts: &PipelineOptions,
) -> Result<Vec<TranslationRow>> {
    let split: Vec<Vec<super::split::Segment>> = chunk
        .iter()
        .map(|(id, field, text)| {
            let segs = split_sentences(text);
            if segs.is_empty() {
                return Err(Error::ModelLimit(format!(
                    "prompt {id} has an empty {field:?} text: nothing to translate"
                )));
            }
            Ok(segs)
        })
        .collect::<Result<_>>()?;
    let flat: Vec<String> = split.iter().flatten().map(|s| s.text.clone()).collect();
    let forward = translate_texts(translator, &flat, ENGLISH, lang, opts)?;
    let back = if opts.back_translation {
        Some(translate_texts(translator, &forward, lang, ENGLISH, opts)?)
    } else {
        None
    };
    let mut rows = Vec::with_capacity(chunk.len());
    let mut at = 0;
    for ((id, field, source), segs) in chunk.iter().zip(&split) {
        let seps: Vec<String> = segs.iter().map(|s| s.separator.clone()).collect();
        let n = segs.len();
        let translation = join_segments(&forward[at..at + n], &seps, lang);
        let back_translation = back
            .as_ref()
            .map(|b| join_segments(&b[at..at + n], &seps, ENGLISH));
        at += n;
        let (bleu, chrf) = match &back_translation {
            Some(b) => (
                Some(crate::bleu::sentence_bleu(b, source)),
                Some(crate::bleu::sentence_chrf(b, source)),
            ),
            None => (None, None),
        };
        rows.push(TranslationRow {
            prompt_id: id.clone(),
            field: *field,
            lang: lang.to_string(),
            source: source.clone(),
            translation,
            back_translation,
            bleu,
            chrf,
            kept_in_english: false,
        });
    }
    Ok(rows)
}

/// Fill `dir` with the translations of `texts` (see `texts_of`) in `langs`.
/// `translator` may be None only when every language is English.
pub fn run_pipeline(
    translator: Option<&Translator>,
    texts: &[(String, Field, String)],
    langs: &[String],
    opts: &PipelineOptions,
    dir: &Path,
    quiet: bool,
) -> Result<PipelineReport> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut report = PipelineReport::default();
    for lang in langs {
        let cache = LangCache::open_for_append(dir, lang)?;
        // A text kept in English by an import without a model is not translated yet.
        let todo: Vec<(String, Field, String)> = texts
            .iter()
            .filter(|(id, f, src)| match lang == ENGLISH {
                true => cache.get(id, *f, src).is_none(),
                false => cache.translated(id, *f, src).is_none(),
            })
            .cloned()
            .collect();
        report
            .already_cached
            .insert(lang.clone(), texts.len() - todo.len());
        let mut written = 0;
        if lang == ENGLISH {
            let rows: Vec<TranslationRow> = todo
                .iter()
                .map(|(id, f, src)| TranslationRow::english(id, *f, src))
                .collect();
            append_rows(dir, lang, &rows)?;
            written = rows.len();
        } else if !todo.is_empty() {
            let translator = translator.ok_or_else(|| {
                Error::Usage(format!(
                    "translating into {lang} needs an NLLB model (--model)"
                ))
            })?;
            if !quiet {
                eprintln!(
                    "{lang}: translating {} texts ({} cached)",
                    todo.len(),
                    texts.len() - todo.len()
                );
            }
            for chunk in todo.chunks(CHUNK) {
                let rows = translate_chunk(translator, chunk, lang, opts)?;
                append_rows(dir, lang, &rows)?;
                written += rows.len();
                if !quiet {
                    eprintln!("{lang}: {written}/{} texts", todo.len());
                }
            }
        }
        report.written.insert(lang.clone(), written);
    }
    Ok(report)
}

/// The manifest entry of a checkpoint: name, revision and file hashes.
pub fn model_record(translator: &Translator, opts: &PipelineOptions) -> Result<ModelRecord> {
    let dir = &translator.checkpoint.dir;
    let mut sha256 = BTreeMap::new();
    let mut files = vec![dir.join("config.json"), dir.join("tokenizer.json")];
    files.extend(nllb::weight_files(dir)?);
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sha256.insert(name, sha256_file(&f)?);
    }
    Ok(ModelRecord {
        name: translator.checkpoint.name.clone(),
        revision: translator.checkpoint.revision.clone(),
        path: dir.display().to_string(),
        sha256,
        beams: opts.generate.beams,
        max_length: match opts.generate.max_length {
            MaxLength::Fixed(n) => n.to_string(),
            MaxLength::Auto => "auto: min(200, 1.5 x source + 10)".into(),
        },
        back_translation: opts.back_translation,
    })
}

/// `hofbench translate`.
pub fn translate_command(args: &crate::config::TranslateConfig, quiet: bool) -> Result<()> {
    let prompt_set = crate::prompts::PromptSet::from_option(args.prompts.as_deref())?;
    // Check the language list before loading the model, then again against its tokenizer.
    resolve_languages(&args.languages, None)?;
    let device = candle_core::Device::Cpu;
    let translator = Translator::load(&args.model, &device)?;
    let langs = resolve_languages(&args.languages, Some(&translator.tokenizer.lang_ids))?;
    let opts = PipelineOptions {
        generate: GenerateOptions {
            beams: args.beams,
            max_length: args.max_length.map_or(MaxLength::Auto, MaxLength::Fixed),
            length_penalty: 1.0,
        },
        batch_size: args.batch_size,
        back_translation: args.back_translation,
    };
    let items: Vec<PromptItem> = prompt_set.items.clone();
    // One writer per cache folder: only it may cut a torn line or append.
    let _lock = crate::lock::DirLock::acquire(&args.out)?;
    let mut manifest = CacheManifest::load_or_new(&args.out)?;
    let record = model_record(&translator, &opts)?;
    if !manifest.models.contains(&record) {
        manifest.models.push(record);
    }
    // Record the model before translating, so rows never exist without their origin.
    manifest.save(&args.out, &[])?;
    let t0 = std::time::Instant::now();
    let report = run_pipeline(
        Some(&translator),
        &texts_of(&items),
        &langs,
        &opts,
        &args.out,
        quiet,
    )?;
    manifest.save(&args.out, &langs)?;
    if !quiet {
        let written: usize = report.written.values().sum();
        eprintln!(
            "translated {written} texts into {} languages in {:.1}s; cache in {}",
            langs.len(),
            t0.elapsed().as_secs_f64(),
            args.out.display()
        );
        // Round-trip quality per language, with the resource tier of its country.
        let table = countries::builtin();
        for lang in &langs {
            if let Some(s) = manifest.languages.get(lang) {
                let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
                let tier = table
                    .iter()
                    .find(|c| &c.nllb_code == lang)
                    .map_or("-".to_string(), |c| c.tier.to_string());
                println!(
                    "{lang}\ttier {tier}\trows {}\tBLEU {}\tchrF {}\tbelow {:.2}: {}",
                    s.rows,
                    fmt(s.corpus_bleu),
                    fmt(s.corpus_chrf),
                    manifest.bleu_threshold,
                    s.low_bleu_rows
                );
            }
        }
    }
    Ok(())
}
