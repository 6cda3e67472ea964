//! `hofbench run`: the item grid, scored or answered where not done yet, batch by batch, then
//! stats. `session` is the skeleton both modes share (folder, model, manifest, progress,
//! finish); `logits` and `generate` make the rows; `load` holds the model on its
//! devices. This file keeps the manifest's schema and the logits mode's item (`Work`).

pub mod generate;
mod load;
mod logits;
mod session;

pub(crate) use load::{labels_info, load_replicas, weight_format};
pub(crate) use session::{load_translations, Session};

use crate::config::{ModeConfig, RunConfig};
use crate::countries::{self, Country};
use crate::dimension::Dimension;
use crate::prompts::PromptItem;
use crate::results::{self, ResultRow};
use crate::scorer::{token_budget_batches, OptionScore, Scorer};
use crate::shard::Shard;
use crate::template::{multilingual_user_turn, personas_user_turn, Order, TranslatedItem};
use crate::translate::LanguageTexts;
use crate::{stats, Error, Result};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::Path;
use std::time::SystemTime;

/// `hofbench run`, in the mode the configuration chose.
pub fn run(config: &RunConfig, quiet: bool) -> Result<()> {
    match &config.mode {
        ModeConfig::Logits { random_weights } => {
            logits::run(config, random_weights.as_deref(), quiet)
        }
        ModeConfig::Generate(settings) => generate::run(config, settings, quiet),
    }
}

pub const MANIFEST_FILE: &str = "manifest.json";

/// Everything a run was made with; a resumed run must match on the parts that change results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub model: ModelInfo,
    pub prompts: PromptsInfo,
    pub settings: Settings,
    pub labels: LabelsInfo,
    pub started: String,
    pub finished: Option<String>,
    /// Items of this run's grid (of its shard, with `--shard`).
    pub items_total: usize,
    /// `--shard i/n`: which slice of the grid this folder holds (`hofbench merge` combines them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Items of the whole grid, all shards together.
    #[serde(default)]
    pub grid_items: usize,
    pub items_scored_this_run: usize,
    pub tokens_this_run: usize,
    pub seconds: f64,
    pub tokens_per_second: f64,
    pub items_per_second: f64,
    /// Where this run's time went, in seconds.
    #[serde(default)]
    pub timing: Timing,
    /// How informative the model's answers are, over every row in results.jsonl.
    #[serde(default)]
    pub diagnostics: Option<Diagnostics>,
    /// Warnings printed during the run.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What each replica of `--devices` did in this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceUse>,
    /// Set by `hofbench merge`: the shard folders this run was combined from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<crate::merge::MergeInfo>,
}

/// One replica's share of a data-parallel run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceUse {
    pub device: String,
    pub batches: usize,
    pub items: usize,
    /// Seconds in forward passes.
    pub score_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    pub load: f64,
    /// Rendering the chat template and tokenizing.
    pub encode: f64,
    /// Forward passes and reading the label probabilities.
    pub score: f64,
    /// Writing results.jsonl.
    pub write: f64,
    pub forward_passes: usize,
    /// Tokens the passes computed (shared prefixes once, padding included) over the prompt
    /// tokens: below 1 when prefix sharing saves more than padding costs.
    pub computed_token_ratio: f64,
}

pub use crate::stats::position::LOW_LABEL_MASS;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Diagnostics {
    pub rows: usize,
    /// Mean over rows and both orders of P(A) + P(B) in the whole next-token distribution.
    pub mean_label_mass: f64,
    /// Mean over rows and both orders of P(A) / (P(A) + P(B)), whatever A says: 0.5 is
    /// unbiased, above prefers the first option shown.
    pub position_bias_p_a: f64,
    /// Share of items whose choice changes side when the options swap places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_flip_share: Option<f64>,
    /// Share of choices (both orders) that pick the first option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_first_option: Option<f64>,
}

impl Diagnostics {
    pub fn from_rows(rows: &[ResultRow]) -> Option<Self> {
        let rows: Vec<&ResultRow> = rows.iter().collect();
        // The same definitions as stats/diagnostics.csv (which reports the bias minus 0.5).
        let d = stats::diagnostics::diagnostics(&rows);
        Some(Self {
            rows: d.n,
            mean_label_mass: d.mean_label_mass?,
            position_bias_p_a: d.position_bias? + 0.5,
            order_flip_share: d.order_flip_share,
            share_first_option: d.share_first_option,
        })
    }

    /// The warnings to print: the model rarely answers with an option letter, or its answers
    /// follow the options' position rather than their content (`stats::position`).
    pub fn warnings(&self, model: &str) -> Vec<String> {
        let d = stats::Diagnostics {
            n: self.rows,
            mean_label_mass: Some(self.mean_label_mass),
            order_flip_share: self.order_flip_share,
            share_first_option: self.share_first_option,
            ..stats::Diagnostics::default()
        };
        [
            stats::position::label_mass_warning(model, &d),
            stats::position::position_warning(model, &d),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub description: String,
    pub chat_template: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PromptsInfo {
    pub source: String,
    pub sha256: String,
    pub items: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub approach: String,
    pub preset: String,
    pub countries: Vec<String>,
    pub dimensions: Vec<Dimension>,
    pub limit: Option<usize>,
    pub batch_size: usize,
    #[serde(default)]
    pub max_batch_tokens: usize,
    pub weights: String,
    /// Whether every product ran in f32 on the weights exactly as stored (false for
    /// `fast-quantized`'s 8-bit activations and for bf16); absent in runs recorded before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<bool>,
    pub keep_text: bool,
    /// The `--devices` list, e.g. `cpu` or `cuda:0,cuda:1`.
    pub device: String,
    /// `cpu` or `cuda`: results of different backends differ by float rounding (within 2e-3),
    /// those of more or fewer replicas of one backend do not at all.
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Translation cache of a multilingual run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translations: Option<String>,
    /// sha256 of the cached texts the run asks (`translate::texts_sha256`): what a resumed
    /// or merged run compares instead of the cache's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translations_sha256: Option<String>,
    /// Round-trip BLEU below which multilingual rows are flagged `low_bleu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bleu_threshold: Option<f64>,
    /// Sampling settings of a generate run (`--mode generate`); absent for a logits run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<generate::GenerationSettings>,
    /// `--system`: the system turn before every prompt; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// Runs recorded before the backend was: every one of them ran on the CPU.
fn default_backend() -> String {
    "cpu".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelsInfo {
    pub a: Vec<u32>,
    pub b: Vec<u32>,
    pub a_text: Vec<String>,
    pub b_text: Vec<String>,
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Write through a temporary file, synced before the rename, so that neither a kill nor a
/// power cut leaves a half-written or empty manifest.
pub(crate) fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(value)?)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => crate::results::sync_dir(dir),
        _ => Ok(()),
    }
}

/// Read a run's manifest.json.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::bad_input(&path, e.line(), e.to_string()))
}

/// One (country, prompt) pair with its two tokenized prompts.
pub(crate) struct Work<'a> {
    country: &'a Country,
    item: &'a PromptItem,
    texts: [String; 2],
    ids: [Vec<u32>; 2],
    /// Multilingual approach: the prompt's NLLB language and its request's round-trip BLEU.
    lang: Option<String>,
    bleu: Option<f64>,
}

impl Work<'_> {
    /// The key of this item's row in results.jsonl.
    pub(crate) fn key(&self, model: &str, approach: &str) -> results::RowKey {
        results::row_key(
            model,
            approach,
            self.item.dimension,
            &self.country.name,
            &self.item.id,
            results::MODE_LOGITS,
            0,
        )
    }

    /// `scores` are the two orders' readings: order 0 shows the high action as A, order 1 as B.
    pub(crate) fn result_row(
        &self,
        model: &str,
        approach: &str,
        scores: &[OptionScore],
        keep_text: bool,
        bleu_threshold: f64,
    ) -> ResultRow {
        let by_order = [scores[0].p_a, 1.0 - scores[1].p_a];
        let dim = self.item.dimension;
        ResultRow {
            model: model.to_string(),
            approach: approach.to_string(),
            dimension: dim,
            country: self.country.name.clone(),
            language: self.country.language.clone(),
            tier: self.country.tier,
            prompt_id: self.item.id.clone(),
            mode: results::MODE_LOGITS.to_string(),
            p_high: Some((by_order[0] + by_order[1]) / 2.0),
            p_high_by_order: Some(by_order),
            label_mass: Some([scores[0].label_mass, scores[1].label_mass]),
            hofstede_score: self.country.score(dim),
            high_side: self.country.high_side(dim),
            rendered: keep_text.then(|| self.texts.clone()),
            lang: self.lang.clone(),
            translation_bleu: self.bleu,
            low_bleu: self.bleu.is_some_and(|b| b < bleu_threshold),
            response: None,
            round: None,
            tokens_generated: None,
            judge: None,
        }
    }
}

/// The item grid in its canonical order: dimensions in their fixed order, prompts in
/// prompt-set order, countries in the built-in table's order, whatever order the command line
/// listed them in. Shards (`--shard`) are cut from this order.
pub(crate) fn grid<'a>(
    items: &'a [PromptItem],
    countries: &'a [Country],
) -> Vec<(&'a PromptItem, &'a Country)> {
    let table = countries::builtin();
    let table_position = |c: &Country| {
        table
            .iter()
            .position(|t| t.name == c.name)
            .unwrap_or(usize::MAX)
    };
    let mut items: Vec<&PromptItem> = items.iter().collect();
    items.sort_by_key(|i| i.dimension); // stable: prompt-set order within a dimension
    let mut countries: Vec<&Country> = countries.iter().collect();
    countries.sort_by_key(|c| table_position(c));
    items
        .iter()
        .flat_map(|&item| countries.iter().map(move |&country| (item, country)))
        .collect()
}

/// Render and tokenize both option orders of one (country, prompt) pair.
pub(crate) fn encode_work<'a>(
    scorer: &Scorer,
    item: &'a PromptItem,
    country: &'a Country,
    translations: Option<&[LanguageTexts]>,
) -> Result<Work<'a>> {
    let mut texts: [String; 2] = Default::default();
    let mut ids: [Vec<u32>; 2] = Default::default();
    let translated = translations.map(|all| {
        let lang = all
            .iter()
            .find(|t| t.lang == country.nllb_code)
            .expect("load_for_run covers every selected country's language");
        (lang, &lang.items[&item.id])
    });
    for (k, order) in Order::BOTH.into_iter().enumerate() {
        let turn = match translated {
            None => personas_user_turn(&country.persona_name, item, order)?,
            Some((lang, rows)) => multilingual_user_turn(
                &TranslatedItem {
                    request: &rows[0].translation,
                    high_action: &rows[1].translation,
                    low_action: &rows[2].translation,
                    choose: &lang.instructions[0],
                    answer: &lang.instructions[1],
                    request_has_choice: item.request_has_choice,
                },
                order,
            )?,
        };
        (texts[k], ids[k]) = scorer.encode_user_turn(&turn)?;
    }
    Ok(Work {
        country,
        item,
        texts,
        ids,
        lang: translated.map(|(l, _)| l.lang.clone()),
        bleu: translated.and_then(|(_, rows)| rows[0].bleu),
    })
}

/// Sort work by length and cut it into batches under the token budget. Runs (and `verify`)
/// always batch a folder's whole grid this way, whatever was finished before: a row's
/// probabilities depend on its batch neighbours' padding at the float-rounding level, so
/// keeping the batches fixed makes a resumed run and a re-score bit-identical to a run made
/// in one go.
pub(crate) fn batch_work(
    work: &mut [Work],
    batch_size: usize,
    max_batch_tokens: usize,
) -> (Vec<Range<usize>>, usize) {
    // Similar lengths together waste less on padding; the sort is stable, so runs repeat.
    work.sort_by_key(|w| w.ids[0].len().max(w.ids[1].len()));
    let pairs: Vec<[&[u32]; 2]> = work
        .iter()
        .map(|w| [&w.ids[0][..], &w.ids[1][..]])
        .collect();
    token_budget_batches(&pairs, batch_size, max_batch_tokens)
}

/// The batches of `shard` among the whole grid's `batches` (all of them without a shard).
pub(crate) fn shard_batches(batches: Vec<Range<usize>>, shard: Option<Shard>) -> Vec<Range<usize>> {
    batches
        .into_iter()
        .enumerate()
        .filter(|(b, _)| shard.is_none_or(|s| s.contains_batch(*b)))
        .map(|(_, range)| range)
        .collect()
}

/// One forward pass over a batch of items: both orders' scores per item, in item order.
pub(crate) fn score_batch(scorer: &Scorer, batch: &[Work]) -> Result<Vec<OptionScore>> {
    let rows: Vec<&[u32]> = batch
        .iter()
        .flat_map(|w| [&w.ids[0][..], &w.ids[1][..]])
        .collect();
    let names: Vec<String> = batch
        .iter()
        .flat_map(|w| {
            ["high_first", "low_first"].map(|o| format!("{}/{}/{o}", w.country.name, w.item.id))
        })
        .collect();
    scorer.score(&rows, 2, &names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p_high_by_order: [f64; 2], label_mass: [f64; 2]) -> ResultRow {
        ResultRow {
            p_high: Some((p_high_by_order[0] + p_high_by_order[1]) / 2.0),
            p_high_by_order: Some(p_high_by_order),
            label_mass: Some(label_mass),
            ..crate::results::tests::row("Japan", "idv-001", 0.5)
        }
    }

    #[test]
    fn position_bias_averages_p_a_over_both_orders() {
        // A model that always says A: P(high) is 1 when high is A and 0 when high is B.
        let always_a = [row([1.0, 0.0], [0.5, 0.7]), row([1.0, 0.0], [0.5, 0.7])];
        let d = Diagnostics::from_rows(&always_a).unwrap();
        assert_eq!(d.position_bias_p_a, 1.0);
        assert!((d.mean_label_mass - 0.6).abs() < 1e-12);
        // It always says A: every item flips with the option order.
        let w = d.warnings("m");
        assert!(w.len() == 1 && w[0].contains("position"), "{w:?}");
        // One that always prefers the high action, whatever its letter, has no position bias.
        let d = Diagnostics::from_rows(&[row([0.8, 0.8], [0.01, 0.03])]).unwrap();
        assert!((d.position_bias_p_a - 0.5).abs() < 1e-12);
        let w = d.warnings("m");
        assert!(w.len() == 1, "{w:?}");
        assert!(
            w[0].contains("0.020") && w[0].contains("below 0.1"),
            "{w:?}"
        );
        assert!(Diagnostics::from_rows(&[]).is_none());
    }
}
