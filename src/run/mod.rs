//! `hofbench run`: the item grid, scored or answered where not done yet, batch by batch, then
//! stats. `session` is the skeleton both modes share (folder, model, manifest, progress,
//! finish); `logits` and `generate` make the rows; `grid` is the item grid and the logits
//! mode's item (`Work`); `load` holds the model on its devices. The manifest's schema is
//! `crate::manifest`'s.

pub mod generate;
mod grid;
mod load;
mod logits;
mod session;

pub(crate) use grid::{batch_work, encode_work, grid, score_batch, shard_batches, Work};
pub(crate) use load::{labels_info, load_replicas};
pub(crate) use session::load_translations;

use crate::config::{ModeConfig, RunConfig};
use crate::results::ResultRow;
use crate::{stats, Result};

/// `hofbench run`, in the mode the configuration chose.
pub fn run(config: &RunConfig, quiet: bool) -> Result<()> {
    match &config.mode {
        ModeConfig::Logits { random_weights } => {
            logits::run(config, random_weights.as_deref(), quiet)
        }
        ModeConfig::Generate(settings) => generate::run(config, settings, quiet),
    }
}

use crate::manifest::Diagnostics;

pub use crate::stats::position::LOW_LABEL_MASS;

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
