//! Weak signal made visible: a model whose choice follows the option's position rather than
//! its content (most items change side when the two options swap places), or whose next
//! token is mostly not an option letter, gets a warning at the end of `run` and a banner at
//! the top of summary.md and report.html; and the answers whose two option orders agree are
//! analysed on their own (correlations_orders_agree.csv), so a reader sees what is left when
//! position is taken out.

use super::diagnostics::{Diagnostics, DiagnosticsRow};
use super::format::pct;
use crate::results::ResultRow;
use std::fmt::Write as _;

/// Above this share of items changing side with the option order, the answers follow
/// position more than content.
pub const ORDER_FLIP_WARNING: f64 = 0.5;
/// Mean label mass below this: the model's next token is mostly not an option letter.
pub const LOW_LABEL_MASS: f64 = 0.1;

/// The position warning for a model's diagnostics, if it deserves one.
pub fn position_warning(model: &str, d: &Diagnostics) -> Option<String> {
    let flips = d.order_flip_share?;
    (flips > ORDER_FLIP_WARNING).then(|| {
        format!(
            "warning: {model}: the answers follow the options' position rather than their \
             content: {} of the items change side when the two options swap places (more than \
             {}), and {} of the choices pick the option shown first; the correlations with the \
             Hofstede scores say little. The {} of items whose two orders agree are analysed \
             separately (stats/correlations_orders_agree.csv)",
            pct(Some(flips)),
            pct(Some(ORDER_FLIP_WARNING)),
            pct(d.share_first_option),
            pct(Some(1.0 - flips)),
        )
    })
}

/// The low-label-mass warning (also printed by `run`, see `run::Diagnostics::warning`).
pub fn label_mass_warning(model: &str, d: &Diagnostics) -> Option<String> {
    let mass = d.mean_label_mass?;
    (mass < LOW_LABEL_MASS).then(|| {
        format!(
            "warning: {model} puts only {mass:.3} of its next-token probability on the option \
             letters on average (below {LOW_LABEL_MASS}): its A/B preferences say little"
        )
    })
}

/// Rows with both option orders whose hard choices agree (logits rows; imported and
/// generated rows have no orders and are left out).
pub fn orders_agree(rows: &[ResultRow]) -> Vec<ResultRow> {
    rows.iter()
        .filter(|r| {
            r.p_high_by_order
                .is_some_and(|[p0, p1]| (p0 > 0.5) == (p1 > 0.5))
        })
        .cloned()
        .collect()
}

/// The banners at the top of summary.md: one line per model × approach whose diagnostics
/// over all dimensions deserve a warning.
pub fn banners(diagnostics: &[DiagnosticsRow], md: &mut String) {
    let mut any = false;
    for d in diagnostics.iter().filter(|d| d.dimension.is_none()) {
        let name = format!("{} ({})", d.model, d.approach);
        for w in [
            position_warning(&name, &d.diagnostics),
            label_mass_warning(&name, &d.diagnostics),
        ]
        .into_iter()
        .flatten()
        {
            let text = w.strip_prefix("warning: ").unwrap_or(&w);
            writeln!(md, "> **Warning:** {text}.\n").unwrap();
            any = true;
        }
    }
    if any {
        writeln!(md).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_when_most_items_flip_with_order() {
        let d = Diagnostics {
            order_flip_share: Some(0.99),
            share_first_option: Some(0.995),
            mean_label_mass: Some(0.5),
            ..Diagnostics::default()
        };
        let w = position_warning("m", &d).unwrap();
        assert!(w.contains("99%") && w.contains("position"), "{w}");
        assert!(label_mass_warning("m", &d).is_none());
        let ok = Diagnostics {
            order_flip_share: Some(0.5),
            ..d
        };
        assert!(position_warning("m", &ok).is_none());
    }
}
