//! The translation cache for the multilingual approach: `DIR/<nllb_code>.jsonl`, one row per
//! translated text (a request, one of its two actions, or an instruction sentence), plus
//! `DIR/manifest.json` naming the models and imported files the rows came from (both schemas:
//! `manifest::translations`; the files are read and appended through `files`).
//!
//! `hofbench translate` fills it with NLLB-200 (`pipeline`), `hofbench import-translations`
//! from the paper's released CSVs (`import`), and `hofbench run --approach multilingual`
//! reads it (`Translations::load`).

pub mod import;
pub mod pipeline;
pub mod split;

pub use crate::manifest::translations::{
    CacheManifest, Field, ImportRecord, LanguageSummary, ModelRecord, TranslationRow,
    CACHE_MANIFEST_FILE as MANIFEST_FILE,
};

use crate::files;
use crate::manifest::translations::{read_cache_manifest, write_cache_manifest};
use crate::prompts::PromptItem;
use crate::template::TranslatedItem;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where `translate`, `import-translations` and `run --approach multilingual` look by default.
pub const DEFAULT_DIR: &str = "prompts/translations";
/// The source language of every prompt.
pub const ENGLISH: &str = "eng_Latn";
/// Round-trip BLEU (0–1) below which a translation is flagged, as in the paper's files.
pub const DEFAULT_BLEU_THRESHOLD: f64 = 0.2;

/// The instruction sentences the templates add after the request, translated like prompts.
/// `prompt_id` of their rows; the English text must match `prompts/templates/personas.jinja`.
pub const INSTRUCTIONS: [(&str, &str); 2] = [
    ("instruction-choose", "Choose one side."),
    (
        "instruction-answer",
        "Answer with the letter of the option you choose: A or B.",
    ),
];

impl TranslationRow {
    /// An English row: the text itself, not translated.
    pub fn english(prompt_id: &str, field: Field, source: &str) -> Self {
        Self {
            prompt_id: prompt_id.to_string(),
            field,
            lang: ENGLISH.to_string(),
            source: source.to_string(),
            translation: source.to_string(),
            back_translation: None,
            bleu: None,
            chrf: None,
            kept_in_english: false,
        }
    }
}

/// The texts of a prompt set to translate: every item's request and actions, then the
/// instructions.
pub fn texts_of(items: &[PromptItem]) -> Vec<(String, Field, String)> {
    let mut out = Vec::with_capacity(items.len() * 3 + INSTRUCTIONS.len());
    for it in items {
        out.push((it.id.clone(), Field::Request, it.request.clone()));
        out.push((it.id.clone(), Field::HighAction, it.high_action.clone()));
        out.push((it.id.clone(), Field::LowAction, it.low_action.clone()));
    }
    for (id, text) in INSTRUCTIONS {
        out.push((id.to_string(), Field::Instruction, text.to_string()));
    }
    out
}

pub fn lang_file(dir: &Path, lang: &str) -> PathBuf {
    dir.join(format!("{lang}.jsonl"))
}

/// The rows of one language file, keyed by (prompt_id, field); a later row replaces an
/// earlier one (a retranslation after the English text changed).
#[derive(Debug, Default)]
pub struct LangCache {
    pub rows: BTreeMap<(String, Field), TranslationRow>,
}

impl LangCache {
    /// Read `DIR/<lang>.jsonl`. A last line without its newline (a killed writer, or one
    /// writing now) is left out and left alone: only the writer cuts it
    /// ([`LangCache::open_for_append`]).
    pub fn open(dir: &Path, lang: &str) -> Result<Self> {
        Self::read(dir, lang, false)
    }

    /// For the folder's one writer (which holds its lock): read the file and cut off a torn
    /// last line, so that the rows it appends start on a line of their own.
    pub fn open_for_append(dir: &Path, lang: &str) -> Result<Self> {
        Self::read(dir, lang, true)
    }

    fn read(dir: &Path, lang: &str, cut_torn_tail: bool) -> Result<Self> {
        let path = lang_file(dir, lang);
        let mut cache = LangCache::default();
        if !path.exists() {
            return Ok(cache);
        }
        let what = "translation row";
        let rows: files::Rows<TranslationRow> = match cut_torn_tail {
            true => files::read_rows_for_append(&path, what)?,
            false => files::read_rows(&path, what)?,
        };
        for (line_no, row) in rows.rows {
            if row.lang != lang {
                return Err(Error::bad_input(
                    &path,
                    line_no,
                    format!("row of language {:?} in the file of {lang}", row.lang),
                ));
            }
            cache.rows.insert((row.prompt_id.clone(), row.field), row);
        }
        Ok(cache)
    }

    /// The cached row for this text, if its English source is the same.
    pub fn get(&self, prompt_id: &str, field: Field, source: &str) -> Option<&TranslationRow> {
        self.rows
            .get(&(prompt_id.to_string(), field))
            .filter(|r| r.source == source)
    }

    /// The cached translation of this text: as `get`, less rows kept in English.
    pub fn translated(
        &self,
        prompt_id: &str,
        field: Field,
        source: &str,
    ) -> Option<&TranslationRow> {
        self.get(prompt_id, field, source)
            .filter(|r| !r.kept_in_english)
    }
}

/// Append rows to `DIR/<lang>.jsonl` and make them durable before returning.
pub fn append_rows(dir: &Path, lang: &str, rows: &[TranslationRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    files::Appender::open(&lang_file(dir, lang))?.append(rows)
}

impl CacheManifest {
    pub fn load_or_new(dir: &Path) -> Result<Self> {
        if !dir.join(MANIFEST_FILE).exists() {
            return Ok(Self {
                tool: "hofbench".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                bleu_threshold: DEFAULT_BLEU_THRESHOLD,
                ..Default::default()
            });
        }
        read_cache_manifest(dir)
    }

    /// Recompute the per-language summaries from the files and write the manifest.
    pub fn save(&mut self, dir: &Path, langs: &[String]) -> Result<()> {
        for lang in langs {
            let cache = LangCache::open(dir, lang)?;
            self.languages
                .insert(lang.clone(), summarize(&cache, self.bleu_threshold));
        }
        write_cache_manifest(dir, self)
    }
}

fn summarize(cache: &LangCache, threshold: f64) -> LanguageSummary {
    let scored: Vec<&TranslationRow> = cache
        .rows
        .values()
        .filter(|r| r.back_translation.is_some())
        .collect();
    let pairs = || {
        scored.iter().map(|r| {
            (
                r.back_translation.as_deref().unwrap_or(""),
                r.source.as_str(),
            )
        })
    };
    let bleus: Vec<f64> = cache.rows.values().filter_map(|r| r.bleu).collect();
    LanguageSummary {
        rows: cache.rows.len(),
        corpus_bleu: (!scored.is_empty()).then(|| crate::bleu::corpus_bleu(pairs())),
        corpus_chrf: (!scored.is_empty()).then(|| crate::bleu::corpus_chrf(pairs())),
        mean_sentence_bleu: (!bleus.is_empty())
            .then(|| bleus.iter().sum::<f64>() / bleus.len() as f64),
        low_bleu_rows: bleus.iter().filter(|&&b| b < threshold).count(),
    }
}

/// Everything the multilingual approach asks in one language.
#[derive(Debug, Clone)]
pub struct LanguageTexts {
    pub lang: String,
    /// prompt_id → (request, high action, low action) rows.
    pub items: HashMap<String, [TranslationRow; 3]>,
    /// The two instruction sentences, in `INSTRUCTIONS` order.
    pub instructions: [String; 2],
}

impl LanguageTexts {
    /// `item` as asked in this language: its translated request and actions and the
    /// translated instructions, for the multilingual templates.
    pub fn translated_item<'a>(&'a self, item: &PromptItem) -> TranslatedItem<'a> {
        let rows = &self.items[&item.id];
        TranslatedItem {
            request: &rows[0].translation,
            high_action: &rows[1].translation,
            low_action: &rows[2].translation,
            choose: &self.instructions[0],
            answer: &self.instructions[1],
            request_has_choice: item.request_has_choice,
        }
    }
}

/// The cached translations of `items` in `langs`, or an error naming every missing text.
pub fn load_for_run(
    dir: &Path,
    langs: &[String],
    items: &[PromptItem],
) -> Result<Vec<LanguageTexts>> {
    let mut out = Vec::new();
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for lang in langs {
        let cache = LangCache::open(dir, lang)?;
        let mut texts = LanguageTexts {
            lang: lang.clone(),
            items: HashMap::new(),
            instructions: Default::default(),
        };
        for item in items {
            let fields = [
                (Field::Request, &item.request),
                (Field::HighAction, &item.high_action),
                (Field::LowAction, &item.low_action),
            ];
            // English needs no translation: the prompt's own text serves when not cached.
            let rows: Vec<TranslationRow> = fields
                .iter()
                .filter_map(|(f, src)| match cache.get(&item.id, *f, src) {
                    Some(r) => Some(r.clone()),
                    None if lang == ENGLISH => Some(TranslationRow::english(&item.id, *f, src)),
                    None => None,
                })
                .collect();
            match <[TranslationRow; 3]>::try_from(rows) {
                Ok(rows) => {
                    texts.items.insert(item.id.clone(), rows);
                }
                Err(_) => missing
                    .entry(lang.clone())
                    .or_default()
                    .push(item.id.clone()),
            }
        }
        for (k, (id, src)) in INSTRUCTIONS.iter().enumerate() {
            match cache.get(id, Field::Instruction, src) {
                Some(r) => texts.instructions[k] = r.translation.clone(),
                None if lang == ENGLISH => texts.instructions[k] = src.to_string(),
                None => missing
                    .entry(lang.clone())
                    .or_default()
                    .push(id.to_string()),
            }
        }
        out.push(texts);
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|(lang, ids)| {
                let shown: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
                let more = if ids.len() > 5 {
                    format!(" and {} more", ids.len() - 5)
                } else {
                    String::new()
                };
                format!("{lang}: {}{more}", shown.join(", "))
            })
            .collect();
        let langs: Vec<&str> = missing.keys().map(String::as_str).collect();
        return Err(Error::Incompatible(format!(
            "{} lacks translations for {} language(s): {}. Make them with \
             `hofbench translate --model NLLB_PATH --languages {} --out {}` (add the same \
             --prompts), or import published ones with `hofbench import-translations FILE... --out {}`",
            dir.display(),
            missing.len(),
            list.join("; "),
            langs.join(","),
            dir.display(),
            dir.display()
        )));
    }
    Ok(out)
}

/// sha256 of everything a run reads from the cache (per language: every item's three texts
/// with their round-trip BLEU, and the instructions): equal hashes, equal prompts and flags.
pub fn texts_sha256(langs: &[LanguageTexts]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for lang in langs {
        let mut ids: Vec<&String> = lang.items.keys().collect();
        ids.sort();
        // (prompt id, its three texts with their BLEU)
        type Item<'a> = (&'a String, Vec<(&'a str, Option<f64>)>);
        let items: Vec<Item> = ids
            .into_iter()
            .map(|id| {
                let rows = lang.items[id]
                    .iter()
                    .map(|r| (r.translation.as_str(), r.bleu))
                    .collect();
                (id, rows)
            })
            .collect();
        let record = (&lang.lang, items, &lang.instructions);
        hasher.update(serde_json::to_vec(&record).expect("texts serialize"));
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}
