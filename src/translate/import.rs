//! `hofbench import-translations`: the translation CSVs released with the paper into a
//! translation cache, so that a user without a GPU can reuse published translations.
//!
//! Columns used: `English_Prompt, Forward_Translation, Back_Translation, Back_BLEU_Score,
//! Target_Language` (the NLLB code; English rows carry the English text). Others
//! (`Forward_BLEU_Score`, `Expected_*`, `Language`, `Resource_Level`, `Target_Nationality`,
//! `Target_Language_Code`, a pandas index…) are ignored. Rows are matched to the prompt set by
//! their English text, whitespace and quote styles normalised.

use super::pipeline::{run_pipeline, PipelineOptions};
use super::{
    append_rows, texts_of, CacheManifest, Field, ImportRecord, LangCache, TranslationRow, ENGLISH,
    INSTRUCTIONS,
};
use crate::engine::gguf::sha256_file;
use crate::engine::models::nllb::{self, Translator};
use crate::prompts::{PromptItem, PromptSet};
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Whitespace runs → one space, curly quotes → straight, trimmed: how two copies of one
/// English prompt may differ after a trip through spreadsheets.
pub fn normalize_text(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| match c {
            '“' | '”' | '„' | '‟' | '″' | '«' | '»' => '"',
            '‘' | '’' | '‚' | '‛' | '′' | '`' => '\'',
            '\u{a0}' => ' ',
            c => c,
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Rows read from one CSV, grouped by language.
struct ParsedFile {
    rows: Vec<(String, TranslationRow)>,
    unmatched: Vec<usize>,
}

fn parse_file(path: &Path, by_text: &HashMap<String, &PromptItem>) -> Result<ParsedFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let text = text.trim_start_matches('\u{feff}');
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| Error::bad_input_from(path, 1, "unreadable CSV header", e))?
        .clone();
    let col = |name: &str| -> Result<usize> {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| Error::bad_input(path, 1, format!("missing column {name:?}")))
    };
    let english = col("English_Prompt")?;
    let forward = col("Forward_Translation")?;
    let back = col("Back_Translation")?;
    let bleu = col("Back_BLEU_Score")?;
    let lang_col = col("Target_Language")?;
    let mut out = ParsedFile {
        rows: Vec::new(),
        unmatched: Vec::new(),
    };
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::bad_input_from(path, line, "malformed CSV row", e)
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let cell = |c: usize| rec.get(c).unwrap_or("").trim();
        let lang = cell(lang_col);
        if !nllb::looks_like_lang_code(lang) {
            return Err(Error::bad_input(
                path,
                line,
                format!("Target_Language {lang:?} is not an NLLB code like kor_Hang"),
            ));
        }
        let Some(item) = by_text.get(&normalize_text(cell(english))) else {
            out.unmatched.push(line);
            continue;
        };
        if lang == ENGLISH {
            out.rows.push((
                lang.to_string(),
                TranslationRow::english(&item.id, Field::Request, &item.request),
            ));
            continue;
        }
        let translation = cell(forward);
        if translation.is_empty() {
            return Err(Error::bad_input(path, line, "empty Forward_Translation"));
        }
        let score = match cell(bleu) {
            "" => None,
            s => Some(
                s.parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| {
                        Error::bad_input(
                            path,
                            line,
                            format!("Back_BLEU_Score {s:?} is not a number between 0 and 1"),
                        )
                    })?,
            ),
        };
        let back_text = Some(cell(back).to_string()).filter(|b| !b.is_empty());
        let chrf = back_text
            .as_deref()
            .map(|b| crate::bleu::sentence_chrf(b, &item.request));
        out.rows.push((
            lang.to_string(),
            TranslationRow {
                prompt_id: item.id.clone(),
                field: Field::Request,
                lang: lang.to_string(),
                source: item.request.clone(),
                translation: translation.to_string(),
                back_translation: back_text,
                bleu: score,
                chrf,
                kept_in_english: false,
            },
        ));
    }
    Ok(out)
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportReport {
    pub imported: BTreeMap<String, usize>,
    pub unmatched: usize,
    /// Languages whose actions and instructions were kept in English (no model given).
    pub kept_in_english: Vec<String>,
}

/// Import `files` into `dir`; texts the files lack (actions, instructions) are translated
/// with `translator` when given, else kept in English and recorded in the manifest.
pub fn import_files(
    files: &[PathBuf],
    prompt_set: &PromptSet,
    dir: &Path,
    translator: Option<&Translator>,
    opts: &PipelineOptions,
    quiet: bool,
) -> Result<ImportReport> {
    let by_text: HashMap<String, &PromptItem> = prompt_set
        .items
        .iter()
        .map(|i| (normalize_text(&i.request), i))
        .collect();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut manifest = CacheManifest::load_or_new(dir)?;
    let mut report = ImportReport::default();
    let mut matched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let parsed_files: Vec<(&PathBuf, ParsedFile)> = files
        .iter()
        .map(|f| Ok((f, parse_file(f, &by_text)?)))
        .collect::<Result<_>>()?;
    // Nothing to import is a mistake (another prompt set, a wrong file), not an empty cache
    // that a run finds wanting later.
    if parsed_files.iter().all(|(_, p)| p.rows.is_empty()) {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let unmatched: usize = parsed_files.iter().map(|(_, p)| p.unmatched.len()).sum();
        return Err(Error::Incompatible(format!(
            "{}: none of the {unmatched} rows matches a request of the prompt set {}; \
             pass the --prompts the translations were made from",
            names.join(", "),
            prompt_set.source
        )));
    }
    for (file, parsed) in parsed_files {
        let mut per_lang: BTreeMap<String, Vec<TranslationRow>> = BTreeMap::new();
        for (lang, row) in parsed.rows.iter().cloned() {
            matched
                .entry(lang.clone())
                .or_default()
                .insert(row.prompt_id.clone());
            per_lang.entry(lang).or_default().push(row);
        }
        let mut n_rows = 0;
        for (lang, rows) in per_lang {
            let cache = LangCache::open_for_append(dir, &lang)?;
            let new: Vec<TranslationRow> = rows
                .into_iter()
                .filter(|r| cache.rows.get(&(r.prompt_id.clone(), r.field)) != Some(r))
                .collect();
            append_rows(dir, &lang, &new)?;
            n_rows += new.len();
            *report.imported.entry(lang).or_default() += new.len();
        }
        if !quiet && !parsed.unmatched.is_empty() {
            let lines: Vec<String> = parsed
                .unmatched
                .iter()
                .take(5)
                .map(|l| l.to_string())
                .collect();
            eprintln!(
                "{}: {} rows match no prompt of {} (lines {}{})",
                file.display(),
                parsed.unmatched.len(),
                prompt_set.source,
                lines.join(", "),
                if parsed.unmatched.len() > 5 {
                    ", …"
                } else {
                    ""
                }
            );
        }
        report.unmatched += parsed.unmatched.len();
        let record = ImportRecord {
            file: file.display().to_string(),
            sha256: sha256_file(file)?,
            rows_imported: n_rows,
            rows_unmatched: parsed.unmatched.len(),
        };
        if !manifest.imports.contains(&record) {
            manifest.imports.push(record);
        }
    }
    // The actions and instructions of every imported prompt, in every imported language.
    let langs: Vec<String> = matched.keys().cloned().collect();
    for (lang, ids) in &matched {
        let items: Vec<PromptItem> = prompt_set
            .items
            .iter()
            .filter(|i| ids.contains(&i.id))
            .cloned()
            .collect();
        let texts: Vec<(String, Field, String)> = texts_of(&items)
            .into_iter()
            .filter(|(_, f, _)| *f != Field::Request)
            .collect();
        match translator {
            Some(t) => {
                run_pipeline(
                    Some(t),
                    &texts,
                    std::slice::from_ref(lang),
                    opts,
                    dir,
                    quiet,
                )?;
            }
            None if lang == ENGLISH => {
                run_pipeline(None, &texts, std::slice::from_ref(lang), opts, dir, quiet)?;
            }
            None => {
                let cache = LangCache::open_for_append(dir, lang)?;
                let rows: Vec<TranslationRow> = texts
                    .iter()
                    .filter(|(id, f, src)| cache.get(id, *f, src).is_none())
                    .map(|(id, f, src)| TranslationRow {
                        lang: lang.clone(),
                        kept_in_english: true,
                        ..TranslationRow::english(id, *f, src)
                    })
                    .collect();
                append_rows(dir, lang, &rows)?;
                let kept = manifest.kept_in_english.entry(lang.clone()).or_default();
                for f in ["high_action", "low_action", "instruction"] {
                    if !kept.iter().any(|k| k == f) {
                        kept.push(f.to_string());
                    }
                }
                report.kept_in_english.push(lang.clone());
            }
        }
    }
    if let Some(t) = translator {
        let record = super::pipeline::model_record(t, opts)?;
        if !manifest.models.contains(&record) {
            manifest.models.push(record);
        }
    }
    manifest.save(dir, &langs)?;
    debug_assert!(INSTRUCTIONS.len() == 2);
    Ok(report)
}

/// `hofbench import-translations`.
pub fn import_command(args: &crate::config::ImportTranslationsConfig, quiet: bool) -> Result<()> {
    let prompt_set = PromptSet::from_option(args.prompts.as_deref())?;
    let translator = args
        .model
        .as_deref()
        .map(|m| Translator::load(m, &candle_core::Device::Cpu))
        .transpose()?;
    let opts = PipelineOptions {
        generate: nllb::GenerateOptions::default(),
        batch_size: 16,
        back_translation: true,
    };
    let _lock = crate::lock::DirLock::acquire(&args.out)?;
    let report = import_files(
        &args.files,
        &prompt_set,
        &args.out,
        translator.as_ref(),
        &opts,
        quiet,
    )?;
    if !quiet {
        for (lang, n) in &report.imported {
            println!("{lang}\t{n} rows imported");
        }
        if !report.kept_in_english.is_empty() {
            eprintln!(
                "actions and instructions kept in English for {} (no --model given); see {}",
                report.kept_in_english.join(", "),
                args.out.join(super::MANIFEST_FILE).display()
            );
        }
    }
    Ok(())
}
