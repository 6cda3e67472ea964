//! The run manifest, `DIR/manifest.json`: everything a run was made with (model, prompts,
//! settings, label tokens), what it did (counts, timing, devices, diagnostics, warnings) and,
//! for a merged run, the shards it was combined from. A resumed run must match on the parts
//! that change results (`result_fields`). Fields added later are optional with a default, so
//! that older manifests still read.

use crate::dimension::Dimension;
use crate::engine::generate::sampling::Sampling;
use crate::shard::Shard;
use serde::{Deserialize, Serialize};

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
    pub merge: Option<MergeInfo>,
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

/// How informative the model's answers are, over every row in results.jsonl (built by
/// `Diagnostics::from_rows` in `run`).
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
    pub generation: Option<GenerationSettings>,
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

// Generate mode.

/// How a generate run made its replies, in the manifest (`settings.generation`). A rerun in
/// the same folder must use the same settings, except `rounds`, which may grow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationSettings {
    #[serde(flatten)]
    pub sampling: Sampling,
    pub max_new_tokens: usize,
    pub rounds: u32,
    pub seed: u64,
    /// Token ids that end a reply (end-of-turn markers and EOS).
    pub stop_tokens: Vec<u32>,
    /// Texts that end a reply: the next turn of a chat format without end-of-turn tokens.
    #[serde(default)]
    pub stop_texts: Vec<String>,
    /// The judge that filled p_high (absent in manifests written before the judge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeInfo>,
}

/// Which model judged the replies, and the combining rule's bands (`crate::judge`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeInfo {
    pub model: String,
    pub sha256: String,
    pub neither_band: f64,
    pub side_band: f64,
    pub overlap_margin: f64,
}

// Merged runs.

/// One shard folder of a merged run, recorded in its manifest's `merged_from`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergedShard {
    pub dir: String,
    pub shard: Shard,
    pub rows: usize,
    pub finished: Option<String>,
    /// The shard's batch settings (`verify` rebuilds its batches from them).
    pub batch_size: usize,
    pub max_batch_tokens: usize,
}

/// What a merge found, beyond the rows it wrote.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MergeInfo {
    pub merged_from: Vec<MergedShard>,
    /// Shards no folder was given for (only with `--allow-incomplete`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_shards: Vec<Shard>,
    /// Shards whose run had not finished its items (only with `--allow-incomplete`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
}
