//! The local judge of `run --mode generate`: which of the two actions does a free-text reply
//! recommend? A model (by default the one that wrote the replies) reads the request, the
//! reply and both actions (`prompts/templates/judge.jinja`) and its next-token distribution is
//! read over "A", "B" and "Neither", with the actions shown in both orders and averaged — the
//! scorer's forward pass and chat template, with a third label. A lexical vote (how much of
//! each action's wording the reply repeats) backs it up where the model is unsure.
//!
//! The combining rule (`decide`), in order:
//! 1. The judge says Neither with P(Neither) ≥ `NEITHER_BAND`: inconclusive.
//! 2. The judge's side confidence max(P(high), P(low)) / (P(high) + P(low)) ≥ `SIDE_BAND`:
//!    that side.
//! 3. Otherwise, a reply that refuses or weighs both sides (`replies::refuses`,
//!    `replies::offers_both_sides`): inconclusive.
//! 4. Otherwise the lexical vote, when one action's overlap beats the other's by at least
//!    `OVERLAP_MARGIN`: that side.
//! 5. Otherwise inconclusive.
//!
//! Every step is a comparison of numbers, not of truth values: the paper's pipeline combined its
//! votes as `a > (b and c)`, which compares `a` with whichever of `b`, `c` Python's `and`
//! returns. The bands were chosen on `tests/fixtures/judge/replies.jsonl` (see docs/generate.md, "The judge").

use crate::engine::loaded_model::{token_budget_batches, LoadedModel};
use crate::engine::readout::label_token_ids;
use crate::item_scorer::{EncodedItem, ItemScorer};
use crate::replies;
use crate::template::{judge_user_turn, Order};
use crate::{Error, Result};

/// P(Neither) at or above this makes the verdict inconclusive.
pub const NEITHER_BAND: f64 = 0.5;
/// The judge decides alone when its preferred side has at least this share of P(high) + P(low).
pub const SIDE_BAND: f64 = 0.6;
/// The lexical vote decides when one action's overlap exceeds the other's by this much.
pub const OVERLAP_MARGIN: f64 = 0.2;

pub use crate::manifest::results::{JudgeReading, Verdict, VerdictSource};

impl Verdict {
    /// The row's p_high: 1 or 0 for a side, null when inconclusive.
    pub fn p_high(self) -> Option<f64> {
        match self {
            Verdict::High => Some(1.0),
            Verdict::Low => Some(0.0),
            Verdict::Inconclusive => None,
        }
    }
}

/// The combining rule (see the module documentation).
pub fn decide(
    p_high: f64,
    p_low: f64,
    p_neither: f64,
    overlap_high: f64,
    overlap_low: f64,
    declines: bool,
) -> (Verdict, VerdictSource) {
    if p_neither >= NEITHER_BAND {
        return (Verdict::Inconclusive, VerdictSource::JudgeNeither);
    }
    let sides = p_high + p_low;
    if sides > 0.0 {
        if p_high / sides >= SIDE_BAND {
            return (Verdict::High, VerdictSource::Judge);
        }
        if p_low / sides >= SIDE_BAND {
            return (Verdict::Low, VerdictSource::Judge);
        }
    }
    if declines {
        return (Verdict::Inconclusive, VerdictSource::Markers);
    }
    if overlap_high - overlap_low >= OVERLAP_MARGIN {
        return (Verdict::High, VerdictSource::Overlap);
    }
    if overlap_low - overlap_high >= OVERLAP_MARGIN {
        return (Verdict::Low, VerdictSource::Overlap);
    }
    (Verdict::Inconclusive, VerdictSource::Undecided)
}

/// Scripts written without spaces between words: their "words" are character bigrams.
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0E7F   // Thai
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xAC00..=0xD7AF // Hangul syllables (spaced, but short words: bigrams match better)
    )
}

/// The content words of a text, lower-cased and cut to a 5-character stem so that
/// inflections match ("decline", "declined"): words of at least 4 letters in spaced scripts
/// (short words are mostly function words in every language), character bigrams in unspaced
/// ones.
fn stems(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<char> = word.chars().collect();
        if chars.iter().any(|&c| unspaced(c)) {
            for pair in chars.windows(2) {
                out.push(pair.iter().collect());
            }
        } else if chars.len() >= 4 {
            out.push(chars.iter().take(5).collect());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Share of the action's stems that also occur in the reply (0 for an action without any).
pub fn overlap(action: &str, reply: &str) -> f64 {
    let action = stems(action);
    if action.is_empty() {
        return 0.0;
    }
    let reply = stems(reply);
    let shared = action
        .iter()
        .filter(|s| reply.binary_search(s).is_ok())
        .count();
    shared as f64 / action.len() as f64
}

/// One reply to judge, with the texts of the prompt it answered (in the prompt's language).
#[derive(Debug, Clone)]
pub struct JudgeItem<'a> {
    pub request: &'a str,
    pub high_action: &'a str,
    pub low_action: &'a str,
    pub reply: &'a str,
    /// Names the item in error messages.
    pub name: String,
}

/// A loaded judge: a scorer (model, tokenizer, chat template) reading A, B and Neither.
pub struct Judge<'a> {
    items: ItemScorer<'a>,
}

impl<'a> Judge<'a> {
    pub fn new(scorer: &'a LoadedModel) -> Result<Self> {
        let neither = label_token_ids(&scorer.tokenizer, "Neither")?;
        if neither
            .iter()
            .any(|id| scorer.labels.a.contains(id) || scorer.labels.b.contains(id))
        {
            return Err(Error::Tokenizer(
                "the judge's label Neither shares a token with A or B".into(),
            ));
        }
        Ok(Self {
            items: ItemScorer::with_extra_labels(scorer, vec![neither]),
        })
    }

    /// Judge replies in length-sorted batches of at most `batch_size` items and `max_tokens`
    /// padded tokens. Returns one reading per item, in the items' order.
    pub fn judge(
        &self,
        items: &[JudgeItem],
        batch_size: usize,
        max_tokens: usize,
    ) -> Result<Vec<JudgeReading>> {
        let mut ids: Vec<[Vec<u32>; 2]> = Vec::with_capacity(items.len());
        for item in items {
            let mut pair: [Vec<u32>; 2] = Default::default();
            for (k, order) in Order::BOTH.into_iter().enumerate() {
                let turn = judge_user_turn(
                    item.request,
                    item.reply,
                    item.high_action,
                    item.low_action,
                    order,
                )?;
                // The judge reads the reply without the scored run's system turn.
                pair[k] = self.items.scorer().encode_turn(None, &turn)?.1;
            }
            ids.push(pair);
        }
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| ids[i][0].len().max(ids[i][1].len()));
        let pairs: Vec<[&[u32]; 2]> = order
            .iter()
            .map(|&i| [&ids[i][0][..], &ids[i][1][..]])
            .collect();
        let (batches, _) = token_budget_batches(&pairs, batch_size, max_tokens);
        let mut readings: Vec<Option<JudgeReading>> = vec![None; items.len()];
        for range in batches {
            let batch: Vec<EncodedItem> = order[range.clone()]
                .iter()
                .zip(&pairs[range.clone()])
                .map(|(&i, &orders)| EncodedItem {
                    orders,
                    name: items[i].name.clone(),
                })
                .collect();
            let scores = self.items.score(&batch)?;
            for (score, &i) in scores.iter().zip(&order[range]) {
                let item = &items[i];
                // P(high), P(low), P(Neither): the judge's three labels seen from the sides.
                let (p_high, p_low, p_neither) =
                    (score.p_high, score.p_by_side[1], score.p_by_side[2]);
                let overlap_high = overlap(item.high_action, item.reply);
                let overlap_low = overlap(item.low_action, item.reply);
                let declines =
                    replies::refuses(item.reply) || replies::offers_both_sides(item.reply);
                let (verdict, source) = decide(
                    p_high,
                    p_low,
                    p_neither,
                    overlap_high,
                    overlap_low,
                    declines,
                );
                readings[i] = Some(JudgeReading {
                    p_high,
                    p_low,
                    p_neither,
                    label_mass: score.label_mass,
                    overlap_high,
                    overlap_low,
                    verdict,
                    source,
                });
            }
        }
        Ok(readings
            .into_iter()
            .map(|r| r.expect("every item is in one batch"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_takes_neither_then_a_confident_judge_then_the_overlap() {
        use Verdict::*;
        // The judge says Neither: inconclusive, whatever the overlap says.
        assert_eq!(decide(0.2, 0.2, 0.6, 1.0, 0.0, false).0, Inconclusive);
        assert_eq!(decide(0.25, 0.25, 0.5, 1.0, 0.0, false).0, Inconclusive);
        // A confident judge wins over a contrary overlap.
        assert_eq!(
            decide(0.6, 0.3, 0.1, 0.0, 1.0, true),
            (High, VerdictSource::Judge)
        );
        assert_eq!(
            decide(0.3, 0.6, 0.1, 1.0, 0.0, false),
            (Low, VerdictSource::Judge)
        );
        // An unsure judge: the overlap decides, if its margin is wide enough.
        assert_eq!(
            decide(0.42, 0.38, 0.2, 0.5, 0.1, false),
            (High, VerdictSource::Overlap)
        );
        assert_eq!(decide(0.42, 0.38, 0.2, 0.1, 0.5, false).0, Low);
        assert_eq!(
            decide(0.42, 0.38, 0.2, 0.3, 0.2, false),
            (Inconclusive, VerdictSource::Undecided)
        );
        // Refusal or both-sides wording beats the overlap, not a confident judge.
        assert_eq!(
            decide(0.42, 0.38, 0.2, 1.0, 0.0, true),
            (Inconclusive, VerdictSource::Markers)
        );
        // The paper's `a > (b and c)` would call this high (0.2 > (0.4 and 0.1) = 0.2 > 0.1):
        // here a low overlap on both sides and an even judge stay inconclusive.
        assert_eq!(decide(0.4, 0.4, 0.2, 0.2, 0.1, false).0, Inconclusive);
    }

    #[test]
    fn overlap_counts_shared_stems_in_spaced_and_unspaced_scripts() {
        let high = "Accept the job offer abroad";
        assert!((overlap(high, "You should accept the offer.") - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(overlap(high, "Stay home with family."), 0.0);
        // Inflections share the 5-character stem.
        assert_eq!(
            overlap("Declined invitations", "declining the invitation"),
            1.0
        );
        // Japanese: character bigrams.
        assert!(overlap("仕事を受ける", "その仕事を受けるべきです") > 0.9);
        assert_eq!(overlap("and or", "and or"), 0.0);
    }
}
