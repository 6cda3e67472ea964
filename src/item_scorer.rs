//! The one function that turns an encoded item into its `p_high`: both option orders through one
//! forward pass (their shared prefix run once), each order's next-token distribution over the
//! labels read off (`kernels::label_readings`), order 1 flipped so that both read P(high side),
//! and the two averaged. `run` (logits mode), `verify` and the judge of `run --mode generate`
//! all score through `ItemScorer::score`.

use crate::engine::kernels::label_readings;
use crate::engine::loaded_model::LoadedModel;
use crate::engine::readout::{LabelDistribution, Unreadable};
use crate::Result;

/// One item ready to score: its two option orders' token ids and its name for error messages.
/// Order 0 shows the high side as the first label (A), order 1 as the second (B).
#[derive(Debug, Clone)]
pub struct EncodedItem<'a> {
    pub orders: [&'a [u32]; 2],
    /// e.g. "Japan/idv-001"; an order's error adds "/high_first" or "/low_first".
    pub name: String,
}

/// The orders' names in error messages.
const ORDER_NAMES: [&str; 2] = ["high_first", "low_first"];

/// What an item scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemScore {
    /// P(high side), the mean of both orders.
    pub p_high: f64,
    /// P(high side) as each order reads it.
    pub p_high_by_order: [f64; 2],
    /// The labels' share of the whole next-token distribution, per order.
    pub label_mass: [f64; 2],
    /// Every label's probability seen from the item's sides, each the mean of both orders:
    /// P(high), P(low), then the labels after A and B in their order (the judge's Neither).
    pub p_by_side: Vec<f64>,
}

/// The labels of one order's distribution seen from the sides: [P(high), P(low), the rest].
/// With only A and B the reading is one number, P(A), and the other side its complement: the
/// form in which every two-label result has been written (bit for bit), and the one number the
/// GPU kernel's two-label reading used to return.
fn by_side(d: &LabelDistribution, order: usize) -> Vec<f64> {
    if let [p_a, _] = d.p[..] {
        let p_high = if order == 0 { p_a } else { 1.0 - p_a };
        return vec![p_high, 1.0 - p_high];
    }
    let mut p = d.p.clone();
    if order == 1 {
        p.swap(0, 1);
    }
    p
}

/// The defining step: an item's score from its two orders' label distributions.
pub fn item_score(orders: [&LabelDistribution; 2]) -> ItemScore {
    let sides = [by_side(orders[0], 0), by_side(orders[1], 1)];
    let p_by_side: Vec<f64> = sides[0]
        .iter()
        .zip(&sides[1])
        .map(|(a, b)| (a + b) / 2.0)
        .collect();
    ItemScore {
        p_high: p_by_side[0],
        p_high_by_order: [sides[0][0], sides[1][0]],
        label_mass: [orders[0].mass, orders[1].mass],
        p_by_side,
    }
}

/// A loaded model and the labels its answers are read over.
pub struct ItemScorer<'a> {
    scorer: &'a LoadedModel,
    /// A, B, then any further label.
    labels: Vec<Vec<u32>>,
}

impl<'a> ItemScorer<'a> {
    /// The scorer's two labels, A and B.
    pub fn new(scorer: &'a LoadedModel) -> Self {
        Self::with_extra_labels(scorer, Vec::new())
    }

    /// A and B, then `extra` (the judge's Neither), each a label's token ids.
    pub fn with_extra_labels(scorer: &'a LoadedModel, extra: Vec<Vec<u32>>) -> Self {
        let mut labels = vec![scorer.labels.a.clone(), scorer.labels.b.clone()];
        labels.extend(extra);
        Self { scorer, labels }
    }

    pub fn scorer(&self) -> &'a LoadedModel {
        self.scorer
    }

    /// Score a batch of items in one forward pass (each item's two orders sharing their
    /// prefix), in item order. A NaN or +inf logit is an error naming the item and order.
    pub fn score(&self, items: &[EncodedItem]) -> Result<Vec<ItemScore>> {
        let rows: Vec<&[u32]> = items.iter().flat_map(|item| item.orders).collect();
        let logits = self.scorer.next_token_logits(&rows, 2)?;
        let labels: Vec<&[u32]> = self.labels.iter().map(Vec::as_slice).collect();
        let readings = label_readings(&logits, &labels)?;
        read_items(items, &readings)
    }
}

/// The items' scores from their rows' readings (two per item, in item order); the first
/// unreadable row is an error naming its item and order.
fn read_items(
    items: &[EncodedItem],
    readings: &[std::result::Result<LabelDistribution, Unreadable>],
) -> Result<Vec<ItemScore>> {
    items
        .iter()
        .zip(readings.chunks(2))
        .map(|(item, pair)| {
            let mut orders = Vec::with_capacity(2);
            for (reading, order) in pair.iter().zip(ORDER_NAMES) {
                orders.push(
                    reading
                        .as_ref()
                        .map_err(|e| e.of_item(&format!("{}/{order}", item.name)))?,
                );
            }
            Ok(item_score([orders[0], orders[1]]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(p: &[f64], mass: f64) -> LabelDistribution {
        LabelDistribution {
            p: p.to_vec(),
            mass,
        }
    }

    #[test]
    fn order_one_is_flipped_and_both_orders_averaged() {
        // Order 0 shows the high side as A: P(A) = 0.8 is P(high). Order 1 shows it as B:
        // P(A) = 0.3 means P(high) = 0.7.
        let s = item_score([&dist(&[0.8, 0.2], 0.9), &dist(&[0.3, 0.7], 0.5)]);
        assert_eq!(s.p_high_by_order, [0.8, 1.0 - 0.3]);
        assert_eq!(s.p_high, (0.8 + (1.0 - 0.3)) / 2.0);
        assert_eq!(s.label_mass, [0.9, 0.5]);
        assert_eq!(s.p_by_side.len(), 2);
        assert!((s.p_by_side[1] - 0.25).abs() < 1e-15);
        // A model that always answers A is even.
        let s = item_score([&dist(&[1.0, 0.0], 1.0), &dist(&[1.0, 0.0], 1.0)]);
        assert_eq!(s.p_high, 0.5);
    }

    #[test]
    fn three_labels_swap_the_sides_and_keep_the_third() {
        // The judge's A, B, Neither.
        let s = item_score([&dist(&[0.6, 0.3, 0.1], 0.9), &dist(&[0.2, 0.5, 0.3], 0.8)]);
        assert_eq!(s.p_high_by_order, [0.6, 0.5]);
        assert_eq!(s.p_high, (0.6 + 0.5) / 2.0);
        assert_eq!(
            s.p_by_side,
            vec![(0.6 + 0.5) / 2.0, (0.3 + 0.2) / 2.0, (0.1 + 0.3) / 2.0]
        );
    }

    #[test]
    fn an_unreadable_row_is_an_error_naming_its_item_and_order() {
        let ids = [1u32, 2];
        let items: Vec<EncodedItem> = ["Japan/idv-001", "Albania/idv-002"]
            .map(|name| EncodedItem {
                orders: [&ids[..], &ids[..]],
                name: name.into(),
            })
            .to_vec();
        let ok = || Ok(dist(&[0.5, 0.5], 1.0));
        let bad = Err(Unreadable::NonFinite {
            token: 7,
            value: f32::NAN,
        });
        let scores = read_items(&items, &[ok(), ok(), ok(), ok()]).unwrap();
        assert_eq!(scores.len(), 2);
        let e = read_items(&items, &[ok(), ok(), ok(), bad]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "non-finite logits for item Albania/idv-002/low_first: logit of token 7 is NaN"
        );
    }
}
