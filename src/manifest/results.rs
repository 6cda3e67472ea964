//! A row of `results.jsonl`: one object per (model, approach, dimension, country, prompt_id,
//! mode, round). `crate::results` reads and appends the file.

use crate::dimension::{Dimension, Tier};
use serde::{Deserialize, Serialize};

pub const RESULTS_FILE: &str = "results.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub model: String,
    pub approach: String,
    pub dimension: Dimension,
    pub country: String,
    pub language: String,
    pub tier: Tier,
    pub prompt_id: String,
    /// How the answer was obtained: "logits" (the option letters' probabilities), "generate"
    /// (a free-text reply, `run --mode generate`) or "imported" (`hofbench import-results`).
    /// Files written before this field are "logits".
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Mean of the two orders' P(high side); null for an inconclusive answer (imported or
    /// judged replies that pick neither side).
    pub p_high: Option<f64>,
    /// P(high side) with the high action shown as A, then shown as B (logits mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_high_by_order: Option<[f64; 2]>,
    /// The two labels' share of the whole next-token distribution, per order (logits mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_mass: Option<[f64; 2]>,
    pub hofstede_score: f64,
    /// The country's side of the dimension: score > 50.
    pub high_side: bool,
    /// The two rendered prompts (high first, low first), with --keep-text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<[String; 2]>,
    /// NLLB code of the language the prompt was asked in (multilingual approach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Round-trip BLEU (0–1) of the translated request (multilingual approach; absent for
    /// English and for translations made without back-translation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation_bleu: Option<f64>,
    /// `translation_bleu` is below the run's threshold (manifest `settings.bleu_threshold`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub low_bleu: bool,
    /// The model's free-text reply, where there is one (generate mode, imported results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Generate mode: which of the item's replies this is, 1-based (`--rounds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Generate mode: tokens in the reply, the stop token not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_generated: Option<usize>,
    /// Generate mode: the judge's reading of `response` (`judge::JudgeReading`), from which
    /// p_high comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeReading>,
}

pub const MODE_LOGITS: &str = "logits";
pub const MODE_IMPORTED: &str = "imported";
pub const MODE_GENERATE: &str = "generate";

fn default_mode() -> String {
    MODE_LOGITS.to_string()
}

/// Identifies a row; a rerun skips keys already present: model, approach, dimension,
/// country, prompt_id, mode and round (0 where there are no rounds), so that a logits row and
/// the generated replies of the same item never collide.
pub type RowKey = (String, String, Dimension, String, String, String, u32);

/// The key of a row about to be made, as [`ResultRow::key`] will read it back.
pub fn row_key(
    model: &str,
    approach: &str,
    dimension: Dimension,
    country: &str,
    prompt_id: &str,
    mode: &str,
    round: u32,
) -> RowKey {
    (
        model.to_string(),
        approach.to_string(),
        dimension,
        country.to_string(),
        prompt_id.to_string(),
        mode.to_string(),
        round,
    )
}

impl ResultRow {
    pub fn key(&self) -> RowKey {
        row_key(
            &self.model,
            &self.approach,
            self.dimension,
            &self.country,
            &self.prompt_id,
            &self.mode,
            self.round.unwrap_or(0),
        )
    }

    /// The hard choice: Some(true) when p_high > 0.5, None for an inconclusive answer.
    pub fn chose_high(&self) -> Option<bool> {
        self.p_high.map(|p| p > 0.5)
    }
}

// The judge's reading of a generated reply (`crate::judge` makes it).

/// Which side a reply recommends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    High,
    Low,
    Inconclusive,
}

/// What decided a verdict (`decide`'s steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictSource {
    JudgeNeither,
    Judge,
    /// Refusal or both-sides wording.
    Markers,
    Overlap,
    Undecided,
}

/// The judge's reading of one reply, stored with the row (`ResultRow::judge`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JudgeReading {
    /// P(high action), P(low action), P(Neither) over the three labels, mean of both orders.
    pub p_high: f64,
    pub p_low: f64,
    pub p_neither: f64,
    /// The three labels' share of the whole next-token distribution, per order.
    pub label_mass: [f64; 2],
    /// Share of each action's words that the reply repeats.
    pub overlap_high: f64,
    pub overlap_low: f64,
    pub verdict: Verdict,
    pub source: VerdictSource,
}
