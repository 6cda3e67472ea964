//! How the model answers, whatever the country: how much probability it puts on the two
//! option letters, whether it prefers the first option, how often its choice follows the
//! option order rather than the content, and which side of each dimension it prefers.

use crate::dimension::Dimension;
use crate::results::ResultRow;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Diagnostics {
    pub n: usize,
    pub n_inconclusive: usize,
    /// Mean over answers and orders of the two letters' share of the next-token distribution.
    pub mean_label_mass: Option<f64>,
    /// Mean P(first option) over both orders, minus 0.5: positive = prefers "A".
    pub position_bias: Option<f64>,
    /// Share of hard choices (both orders counted) that pick the first option.
    pub share_first_option: Option<f64>,
    /// Share of answers whose hard choice changes side when the options swap places.
    pub order_flip_share: Option<f64>,
    /// Share of all answers on the high side (inconclusive in the denominator).
    pub share_high: f64,
    /// Share of decided answers on the high side.
    pub share_high_decided: Option<f64>,
    /// Mean p_high over decided answers.
    pub mean_p_high: Option<f64>,
}

/// A group's diagnostics, keyed (diagnostics.csv).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticsRow {
    pub model: String,
    pub approach: String,
    /// None = all dimensions.
    pub dimension: Option<Dimension>,
    pub diagnostics: Diagnostics,
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in v {
        sum += x;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

pub fn diagnostics(rows: &[&ResultRow]) -> Diagnostics {
    let n = rows.len();
    let decided: Vec<f64> = rows.iter().filter_map(|r| r.p_high).collect();
    let n_high = decided.iter().filter(|&&p| p > 0.5).count();
    let orders = || rows.iter().filter_map(|r| r.p_high_by_order);
    Diagnostics {
        n,
        n_inconclusive: n - decided.len(),
        mean_label_mass: mean(rows.iter().filter_map(|r| r.label_mass).flatten()),
        // Order 0 shows the high action as A, order 1 as B: P(A) is p0, then 1 - p1.
        position_bias: mean(orders().flat_map(|[p0, p1]| [p0, 1.0 - p1])).map(|m| m - 0.5),
        share_first_option: mean(orders().flat_map(|[p0, p1]| {
            [
                f64::from(u8::from(p0 > 0.5)),
                f64::from(u8::from(p1 <= 0.5)),
            ]
        })),
        order_flip_share: mean(
            orders().map(|[p0, p1]| f64::from(u8::from((p0 > 0.5) != (p1 > 0.5)))),
        ),
        share_high: if n == 0 {
            f64::NAN
        } else {
            n_high as f64 / n as f64
        },
        share_high_decided: (!decided.is_empty()).then(|| n_high as f64 / decided.len() as f64),
        mean_p_high: mean(decided.iter().copied()),
    }
}
