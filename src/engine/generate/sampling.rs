//! Choosing the next token: Hugging Face's logits processors in Hugging Face's order
//! (repetition penalty, then temperature, top-k, top-p), then a draw from the per-row RNG.
//!
//! The semantics follow transformers' `RepetitionPenaltyLogitsProcessor`,
//! `TemperatureLogitsWarper`, `TopKLogitsWarper` and `TopPLogitsWarper` (min_tokens_to_keep = 1);
//! tests/it/generate.rs checks them against those classes on fixed logits
//! (tests/fixtures/generate/processors.json).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// How the next token is chosen. The defaults are the paper's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub repetition_penalty: f64,
    /// The most likely token after the repetition penalty (temperature, top-k and top-p do
    /// not change which token that is), as transformers' greedy search.
    pub greedy: bool,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.6,
            top_p: 0.9,
            top_k: 10,
            repetition_penalty: 1.5,
            greedy: false,
        }
    }
}

impl Sampling {
    /// Reject settings Hugging Face rejects (or that make no distribution): an
    /// `Error::Usage`, as they come from the user's flags.
    pub fn check(&self) -> crate::Result<()> {
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(crate::Error::Usage(format!(
                "temperature must be a positive number, not {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(crate::Error::Usage(format!(
                "top-p must be in (0, 1], not {}",
                self.top_p
            )));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(crate::Error::Usage(format!(
                "repetition penalty must be a positive number, not {}",
                self.repetition_penalty
            )));
        }
        Ok(())
    }
}

/// `RepetitionPenaltyLogitsProcessor`: every token id that occurs in `seen` (prompt and
/// generated so far) has its logit divided by the penalty if positive, multiplied if negative.
pub fn apply_repetition_penalty(logits: &mut [f32], seen: &HashSet<u32>, penalty: f64) {
    if penalty == 1.0 {
        return;
    }
    let penalty = penalty as f32;
    for &id in seen {
        if let Some(l) = logits.get_mut(id as usize) {
            *l = if *l < 0.0 { *l * penalty } else { *l / penalty };
        }
    }
}

/// `TemperatureLogitsWarper`.
pub fn apply_temperature(logits: &mut [f32], temperature: f64) {
    if temperature != 1.0 {
        let t = temperature as f32;
        logits.iter_mut().for_each(|l| *l /= t);
    }
}

/// `TopKLogitsWarper`: logits below the k-th largest become -inf (ties with it are kept).
/// k = 0 disables it, as in transformers.
pub fn apply_top_k(logits: &mut [f32], k: usize) {
    if k == 0 || k >= logits.len() {
        return;
    }
    let mut sorted: Vec<f32> = logits.to_vec();
    let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = *kth;
    logits.iter_mut().for_each(|l| {
        if *l < kth {
            *l = f32::NEG_INFINITY
        }
    });
}

/// `TopPLogitsWarper`: sort ascending, and drop the tokens whose cumulative probability is
/// at most 1 - top_p, always keeping the most likely one. Ties are ordered by token id.
pub fn apply_top_p(logits: &mut [f32], top_p: f64) {
    if top_p >= 1.0 {
        return;
    }
    let mut order: Vec<usize> = (0..logits.len())
        .filter(|&i| logits[i] > f32::NEG_INFINITY)
        .collect();
    order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(a.cmp(&b)));
    let probs = softmax(&order.iter().map(|&i| logits[i]).collect::<Vec<_>>());
    let mut cumulative = 0.0;
    let last = order.len().saturating_sub(1);
    for (rank, (&i, p)) in order.iter().zip(probs).enumerate() {
        cumulative += p;
        if cumulative <= 1.0 - top_p && rank < last {
            logits[i] = f32::NEG_INFINITY;
        }
    }
}

/// Softmax in f64 of finite-or-minus-infinity logits.
fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let exp: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Every processor in Hugging Face's order, in place: what the draw is made from.
pub fn process(logits: &mut [f32], seen: &HashSet<u32>, s: &Sampling) {
    apply_repetition_penalty(logits, seen, s.repetition_penalty);
    if s.greedy {
        return;
    }
    apply_temperature(logits, s.temperature);
    apply_top_k(logits, s.top_k);
    apply_top_p(logits, s.top_p);
}

/// The first index of the largest logit (torch.argmax).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Pick the next token from raw logits: the processors, then argmax (greedy) or one draw.
pub fn next_token(logits: &mut [f32], seen: &HashSet<u32>, s: &Sampling, rng: &mut RowRng) -> u32 {
    process(logits, seen, s);
    if s.greedy {
        return argmax(logits);
    }
    draw(logits, rng.uniform())
}

/// Inverse-CDF draw: the candidates (finite logits) in order of decreasing probability,
/// ties by token id, and the first whose cumulative probability exceeds `u` in [0, 1).
pub fn draw(logits: &[f32], u: f64) -> u32 {
    let mut order: Vec<usize> = (0..logits.len())
        .filter(|&i| logits[i] > f32::NEG_INFINITY)
        .collect();
    if order.is_empty() {
        return argmax(logits);
    }
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let probs = softmax(&order.iter().map(|&i| logits[i]).collect::<Vec<_>>());
    let mut cumulative = 0.0;
    for (&i, p) in order.iter().zip(&probs) {
        cumulative += p;
        if u < cumulative {
            return i as u32;
        }
    }
    // Rounding left the total a hair below 1 and u above it.
    order[order.len() - 1] as u32
}

/// The per-row random number generator: SplitMix64 (Steele, Lea and Flood 2014), one stream
/// per result row, seeded from a SHA-256 of the row's identity so that its draws do not
/// depend on the batch, its neighbours or a resume. Defined here rather than taken from a
/// crate so that its sequence never changes with a dependency upgrade.
#[derive(Debug, Clone)]
pub struct RowRng {
    state: u64,
}

impl RowRng {
    /// The stream of one row: SHA-256 over the run seed and the row's identity fields,
    /// each terminated by a 0 byte; the first 8 bytes, little-endian, are the state.
    pub fn for_row(
        seed: u64,
        model: &str,
        approach: &str,
        country: &str,
        prompt_id: &str,
        round: u32,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(b"hofbench-generate-v1\0");
        for part in [
            seed.to_string().as_str(),
            model,
            approach,
            country,
            prompt_id,
            round.to_string().as_str(),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let digest = h.finalize();
        let state = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        Self { state }
    }

    pub fn from_state(state: u64) -> Self {
        Self { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The reference implementation's first outputs for seed 1234567
        // (https://prng.di.unimi.it/splitmix64.c).
        let mut r = RowRng::from_state(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn row_streams_differ_by_any_identity_field_and_repeat() {
        let a = RowRng::for_row(1, "m", "personas", "Japan", "idv-001", 1).next_u64();
        assert_eq!(
            a,
            RowRng::for_row(1, "m", "personas", "Japan", "idv-001", 1).next_u64()
        );
        for other in [
            RowRng::for_row(2, "m", "personas", "Japan", "idv-001", 1),
            RowRng::for_row(1, "m", "personas", "Japan", "idv-001", 2),
            RowRng::for_row(1, "m", "personas", "Japan", "idv-002", 1),
            RowRng::for_row(1, "m", "multilingual", "Japan", "idv-001", 1),
        ] {
            assert_ne!(a, other.clone().next_u64());
        }
    }

    #[test]
    fn draw_walks_the_distribution_by_decreasing_probability() {
        let l = [0.0f32, (3.0f32).ln(), f32::NEG_INFINITY];
        // P = [0.25, 0.75]: the likelier token 1 covers u in [0, 0.75).
        assert_eq!(draw(&l, 0.0), 1);
        assert_eq!(draw(&l, 0.7499), 1);
        assert_eq!(draw(&l, 0.7501), 0);
        assert_eq!(draw(&l, 0.99999), 0);
    }

    #[test]
    fn greedy_applies_only_the_repetition_penalty() {
        let s = Sampling {
            greedy: true,
            ..Sampling::default()
        };
        let mut l = [1.0f32, 1.2, -3.0];
        let seen: HashSet<u32> = [1].into();
        let mut rng = RowRng::from_state(0);
        // 1.2 / 1.5 = 0.8 < 1.0.
        assert_eq!(next_token(&mut l, &seen, &s, &mut rng), 0);
    }
}
