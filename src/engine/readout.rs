//! Reading answer labels off a row of next-token logits: which token ids spell a label
//! (`LabelTokens`, `label_token_ids`), and the next-token distribution restricted to N labels
//! (`label_distribution`; `score_row` for the scorer's two, A and B). A leaf of the engine:
//! the scorer, the judge and the GPU kernel (src/engine/kernels.rs, whose CPU reference this
//! is) all read labels through it.

use crate::engine::tokenizer::ModelTokenizer;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Token ids that count as answering "A" or "B": every single-token spelling of the letter
/// ("A", " A"). Recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelTokens {
    pub a: Vec<u32>,
    pub b: Vec<u32>,
}

impl LabelTokens {
    pub fn from_tokenizer(tok: &ModelTokenizer) -> Result<Self> {
        let ids = |letter: &str| -> Result<Vec<u32>> {
            let mut ids = Vec::new();
            for variant in [letter.to_string(), format!(" {letter}")] {
                let enc = tok.encode(&variant)?;
                if let [id] = enc[..] {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            if ids.is_empty() {
                return Err(Error::Tokenizer(format!(
                    "no single token spells the label {letter:?}"
                )));
            }
            Ok(ids)
        };
        let labels = Self {
            a: ids("A")?,
            b: ids("B")?,
        };
        if labels.a.iter().any(|id| labels.b.contains(id)) {
            return Err(Error::Tokenizer("labels A and B share a token".into()));
        }
        Ok(labels)
    }

    /// The two labels in reading order, A then B, as `label_distribution` takes them.
    pub fn sets(&self) -> [&[u32]; 2] {
        [&self.a, &self.b]
    }
}

/// Token ids that spell `word` as the first token of an answer: the first token of "word"
/// and of " word" (for a single-token word, the word itself). A multi-token word is read by
/// its first token, which is where the model commits to it.
pub fn label_token_ids(tok: &ModelTokenizer, word: &str) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for variant in [word.to_string(), format!(" {word}")] {
        if let Some(&id) = tok.encode(&variant)?.first() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    if ids.is_empty() {
        return Err(Error::Tokenizer(format!(
            "the label {word:?} encodes to nothing"
        )));
    }
    Ok(ids)
}

/// The next-token distribution restricted to a set of labels.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelDistribution {
    /// P(label) / (sum over the labels of P(label)), in the labels' order; each P summed over
    /// the label's token spellings.
    pub p: Vec<f64>,
    /// The labels' share of the whole next-token distribution.
    pub mass: f64,
}

/// The scorer's reading of one rendered prompt: the two-label case, A and B.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionScore {
    /// P(A) / (P(A) + P(B)), each summed over the label's token spellings.
    pub p_a: f64,
    /// (P(A) + P(B)) as a share of the whole next-token distribution.
    pub label_mass: f64,
}

/// Why a row of logits has no label distribution. The caller knows which item the row is
/// and turns this into `Error::NonFinite` naming it (`Unreadable::of_item`).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum Unreadable {
    #[error("logit of token {token} is {value}")]
    NonFinite { token: usize, value: f32 },
    #[error("every label has zero probability")]
    NoLabelMass,
}

impl Unreadable {
    /// The crate's error for the row of `item`.
    pub fn of_item(self, item: &str) -> Error {
        Error::NonFinite {
            item: item.to_string(),
            detail: self.to_string(),
        }
    }
}

/// The first token whose logit is NaN or +inf. -inf is a legitimate "never" from some models;
/// NaN and +inf are numerical failures.
pub fn first_non_finite(logits: &[f32]) -> Option<usize> {
    logits
        .iter()
        .position(|v| v.is_nan() || *v == f32::INFINITY)
}

/// The next-token distribution of one row of logits restricted to `labels` (each summed over
/// its token spellings) and renormalised, with the labels' share of the whole distribution;
/// computed in f64. The scorer reads two labels (A, B), the judge three (A, B, Neither).
pub fn label_distribution(
    logits: &[f32],
    labels: &[&[u32]],
) -> std::result::Result<LabelDistribution, Unreadable> {
    if let Some(token) = first_non_finite(logits) {
        return Err(Unreadable::NonFinite {
            token,
            value: logits[token],
        });
    }
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    let masses: Vec<f64> = labels
        .iter()
        .map(|ids| {
            ids.iter()
                .map(|&i| (logits[i as usize] as f64 - max).exp())
                .sum::<f64>()
                / sum
        })
        .collect();
    let total: f64 = masses.iter().sum();
    if total <= 0.0 {
        return Err(Unreadable::NoLabelMass);
    }
    Ok(LabelDistribution {
        p: masses.iter().map(|m| m / total).collect(),
        mass: total,
    })
}

/// `label_distribution` over A and B.
pub fn score_row(
    logits: &[f32],
    labels: &LabelTokens,
) -> std::result::Result<OptionScore, Unreadable> {
    let d = label_distribution(logits, &labels.sets())?;
    Ok(OptionScore {
        p_a: d.p[0],
        label_mass: d.mass,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_probabilities_sum_spellings_and_normalise() {
        let labels = LabelTokens {
            a: vec![1, 2],
            b: vec![3],
        };
        // exp(0) for A twice, exp(0) for B, the rest very unlikely.
        let logits = [-30.0, 0.0, 0.0, 0.0, -30.0];
        let s = score_row(&logits, &labels).unwrap();
        assert!((s.p_a - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.label_mass - 1.0).abs() < 1e-9);
        let logits = [0.0, 0.0, f32::NEG_INFINITY, 0.0, 0.0];
        let s = score_row(&logits, &labels).unwrap();
        assert!((s.p_a - 0.5).abs() < 1e-12);
        let e = score_row(&[0.0, 0.0, f32::INFINITY, 0.0], &labels).unwrap_err();
        assert_eq!(
            e,
            Unreadable::NonFinite {
                token: 2,
                value: f32::INFINITY
            }
        );
        let e = score_row(&[0.0, f32::NAN, 0.0, 0.0], &labels).unwrap_err();
        assert!(e.to_string().contains("token 1 is NaN"), "{e}");
        let zero = [0.0, f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY];
        assert_eq!(
            score_row(&zero, &labels).unwrap_err(),
            Unreadable::NoLabelMass
        );
        let named = Unreadable::NoLabelMass.of_item("Japan/idv-001/high_first");
        assert!(
            named.to_string().contains("Japan/idv-001/high_first"),
            "{named}"
        );
    }

    #[test]
    fn label_mass_is_share_of_whole_distribution() {
        let labels = LabelTokens {
            a: vec![0],
            b: vec![1],
        };
        let s = score_row(&[0.0, 0.0, 0.0, 0.0], &labels).unwrap();
        assert!((s.label_mass - 0.5).abs() < 1e-12);
        assert!((s.p_a - 0.5).abs() < 1e-12);
    }

    #[test]
    fn three_labels_renormalise_over_all_three() {
        // A twice as likely as B, Neither as likely as B; one token outside the labels.
        let two = (2f32).ln();
        let d = label_distribution(&[two, 0.0, 0.0, 0.0], &[&[0], &[1], &[2]]).unwrap();
        for (got, want) in d.p.iter().zip([0.5, 0.25, 0.25]) {
            assert!((got - want).abs() < 1e-7, "{:?}", d.p);
        }
        assert!((d.mass - 0.8).abs() < 1e-7, "{}", d.mass);
        // The two-label reading is the first two labels' distribution.
        let labels = LabelTokens {
            a: vec![0],
            b: vec![1],
        };
        let s = score_row(&[two, 0.0, 0.0, 0.0], &labels).unwrap();
        assert!((s.p_a - 2.0 / 3.0).abs() < 1e-7);
    }
}
