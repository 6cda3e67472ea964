//! `hofbench run`: the item grid, scored or answered where not done yet, batch by batch, then
//! stats. `session` is the skeleton both modes share (folder, model, manifest, progress,
//! finish); `logits` and `generate` make the rows; `grid` is the item grid and the logits
//! mode's item (`Work`); `load` holds the model on its devices. This file keeps the
//! manifest's schema.

pub mod generate;
mod grid;
mod load;
mod logits;
mod session;

pub(crate) use grid::{batch_work, encode_work, grid, score_batch, shard_batches, Work};
pub(crate) use load::{labels_info, load_replicas, weight_format};
pub(crate) use session::{load_translations, Session};

use crate::config::{ModeConfig, RunConfig};
use crate::dimension::Dimension;
use crate::results::ResultRow;
use crate::shard::Shard;
use crate::{stats, Error, Result};
use serde::{Deserialize, Serialize};
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
