//! The translation cache's schemas (`crate::translate` fills and reads the cache):
//! `DIR/<nllb_code>.jsonl`, one `TranslationRow` per translated text, and `DIR/manifest.json`
//! (`CacheManifest`), naming the models and imported files the rows came from.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The cache folder's manifest, beside its `<lang>.jsonl` files.
pub const CACHE_MANIFEST_FILE: &str = "manifest.json";

/// Read the manifest of the translation cache `dir`; an error names the file and line.
pub fn read_cache_manifest(dir: &Path) -> crate::Result<CacheManifest> {
    super::read_json(&dir.join(CACHE_MANIFEST_FILE))
}

/// Write the manifest of the translation cache `dir`, atomically and durably.
pub fn write_cache_manifest(dir: &Path, manifest: &CacheManifest) -> crate::Result<()> {
    super::write_json(&dir.join(CACHE_MANIFEST_FILE), manifest)
}

/// Which text of a prompt a row translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Request,
    HighAction,
    LowAction,
    Instruction,
}

/// One translated text: a row of `DIR/<lang>.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslationRow {
    pub prompt_id: String,
    pub field: Field,
    pub lang: String,
    /// The English text.
    pub source: String,
    pub translation: String,
    /// The translation translated back to English (absent with --no-back-translation and for
    /// English rows).
    pub back_translation: Option<String>,
    /// Sentence BLEU of the back-translation against the source, 0–1 (sacreBLEU, 13a).
    pub bleu: Option<f64>,
    /// Sentence chrF of the back-translation against the source, 0–1.
    pub chrf: Option<f64>,
    /// The English text stands in for a translation nobody made (`import-translations`
    /// without `--model`): a later `translate` translates it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kept_in_english: bool,
}

/// What made the rows of a translation folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheManifest {
    pub tool: String,
    pub version: String,
    /// NLLB models that translated rows here.
    #[serde(default)]
    pub models: Vec<ModelRecord>,
    /// Imported CSV files.
    #[serde(default)]
    pub imports: Vec<ImportRecord>,
    /// Per language: rows, corpus round-trip BLEU/chrF (0–1) and rows below the threshold.
    #[serde(default)]
    pub languages: BTreeMap<String, LanguageSummary>,
    /// Texts kept in English because no translation was available (import without a model).
    #[serde(default)]
    pub kept_in_english: BTreeMap<String, Vec<String>>,
    pub bleu_threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    pub revision: Option<String>,
    pub path: String,
    /// sha256 of config.json, tokenizer.json and every weight file, by file name.
    pub sha256: BTreeMap<String, String>,
    pub beams: usize,
    pub max_length: String,
    pub back_translation: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub file: String,
    pub sha256: String,
    pub rows_imported: usize,
    pub rows_unmatched: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LanguageSummary {
    pub rows: usize,
    pub corpus_bleu: Option<f64>,
    pub corpus_chrf: Option<f64>,
    pub mean_sentence_bleu: Option<f64>,
    pub low_bleu_rows: usize,
}
