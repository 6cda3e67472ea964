//! The persona effect: what the persona sentence does to a model's answers, measured against
//! the control condition (`run --approach control`: the same items, template and scorer with
//! no persona sentence, one set of rows per item under country `none`).
//!
//! Definitions (persona_effect.csv, persona_effect_by_dimension.csv):
//! - An item's answer under a condition is its share of high-side answers over its rows
//!   (1 or 0 for a logits row; over the rounds of a generate run; an inconclusive answer
//!   counts as not high, as in `share_high`).
//! - Per model, dimension and persona country, over the items answered both with that persona
//!   and in the control run (`n`): `share_high` and `control_share_high` are the mean answers,
//!   `shift` their difference, and `shift_ci_low/high` a 95% percentile bootstrap over those
//!   items (paired: an item's two answers are drawn together). Algorithm, reproducible in
//!   numpy: items in prompt-id order, a fresh `SplitMix64::new(seed)` per row, indices
//!   `next % n`, `np.percentile` linear interpolation; none with fewer than 2 items.
//! - Per model and dimension: the correlation over countries of `shift` with the Hofstede
//!   score (Pearson, Spearman, Kendall: does the persona move answers the country's way?),
//!   and the share of control items whose answer changes with at least one persona.
//!
//! Rows are paired by the analysis model (`stats::analysis_model`), so a generate run's
//! control pairs with that generate run's personas, never with a logits run.

use super::correlation::{pearson, spearman, stars, Correlation};
use super::correlation::{quantile, SplitMix64};
use super::format::{csv_table, float, float_or_nan, fmt_opt, pct};
use super::kendall::kendall;
use super::options::{Options, CONFIDENCE};
use super::shares::PERSONAS;
use crate::dimension::{Dimension, Tier};
use crate::results::ResultRow;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The approach code of the control condition.
pub const CONTROL: &str = "control";

/// One row of persona_effect.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct CountryShift {
    pub model: String,
    pub dimension: Dimension,
    pub country: String,
    pub tier: Tier,
    pub hofstede_score: f64,
    /// Items answered with this persona and in the control run.
    pub n: usize,
    pub share_high: f64,
    pub control_share_high: f64,
    pub shift: f64,
    pub shift_ci: Option<(f64, f64)>,
}

/// One row of persona_effect_by_dimension.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionEffect {
    pub model: String,
    pub dimension: Dimension,
    pub countries: usize,
    /// Control items answered with at least one persona.
    pub items: usize,
    /// Of those, the items whose answer differs from the control's with at least one persona.
    pub items_changed: usize,
    pub share_items_changed: Option<f64>,
    /// Mean control answer over all of the dimension's control items.
    pub control_share_high: f64,
    pub mean_shift: Option<f64>,
    pub mean_abs_shift: Option<f64>,
    /// Countries whose shift interval excludes 0.
    pub countries_shifted: usize,
    pub shift_pearson: Option<Correlation>,
    pub shift_spearman: Option<Correlation>,
    pub shift_kendall: Option<Correlation>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersonaEffect {
    pub shifts: Vec<CountryShift>,
    pub dimensions: Vec<DimensionEffect>,
}

/// Each item's answer: its rows' share of high-side answers, by prompt id.
fn item_answers<'a>(rows: impl Iterator<Item = &'a ResultRow>) -> BTreeMap<&'a str, f64> {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in rows {
        let c = counts.entry(r.prompt_id.as_str()).or_default();
        c.0 += usize::from(r.chose_high() == Some(true));
        c.1 += 1;
    }
    counts
        .into_iter()
        .map(|(id, (high, n))| (id, high as f64 / n as f64))
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The percentile bootstrap of mean(persona) − mean(control) over paired items (see the
/// module's documentation). None with fewer than 2 items or 2 resamples.
pub fn shift_ci(
    persona: &[f64],
    control: &[f64],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Option<(f64, f64)> {
    assert_eq!(persona.len(), control.len());
    let n = persona.len();
    if n < 2 || resamples < 2 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut shifts: Vec<f64> = (0..resamples)
        .map(|_| {
            let (mut p, mut c) = (0.0, 0.0);
            for _ in 0..n {
                let i = (rng.next_u64() % n as u64) as usize;
                p += persona[i];
                c += control[i];
            }
            p / n as f64 - c / n as f64
        })
        .collect();
    shifts.sort_by(f64::total_cmp);
    let q = (1.0 - level) / 2.0;
    Some((quantile(&shifts, q), quantile(&shifts, 1.0 - q)))
}

/// Pair the personas rows with the control rows of the same (analysis) model.
pub fn persona_effect(
    rows: &[ResultRow],
    control: &[ResultRow],
    options: Options,
) -> PersonaEffect {
    let mut out = PersonaEffect::default();
    let mut control_groups: BTreeMap<(&str, Dimension), Vec<&ResultRow>> = BTreeMap::new();
    for r in control {
        control_groups
            .entry((r.model.as_str(), r.dimension))
            .or_default()
            .push(r);
    }
    for ((model, dimension), crs) in control_groups {
        let control_answers = item_answers(crs.into_iter());
        // Persona countries in first-seen order (the run's country order).
        let mut countries: Vec<(&str, Vec<&ResultRow>)> = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.model == model && r.approach == PERSONAS && r.dimension == dimension)
        {
            match countries.iter_mut().find(|(c, _)| *c == r.country) {
                Some((_, v)) => v.push(r),
                None => countries.push((r.country.as_str(), vec![r])),
            }
        }
        if countries.is_empty() {
            continue;
        }
        let mut answered: BTreeMap<&str, bool> = BTreeMap::new();
        let first = out.shifts.len();
        for (country, prs) in &countries {
            let persona_answers = item_answers(prs.iter().copied());
            let (mut p, mut c) = (Vec::new(), Vec::new());
            for (id, &v) in &persona_answers {
                if let Some(&cv) = control_answers.get(id) {
                    p.push(v);
                    c.push(cv);
                    *answered.entry(id).or_default() |= v != cv;
                }
            }
            if p.is_empty() {
                continue;
            }
            let (share_high, control_share_high) = (mean(&p), mean(&c));
            out.shifts.push(CountryShift {
                model: model.to_string(),
                dimension,
                country: country.to_string(),
                tier: prs[0].tier,
                hofstede_score: prs[0].hofstede_score,
                n: p.len(),
                share_high,
                control_share_high,
                shift: share_high - control_share_high,
                shift_ci: shift_ci(&p, &c, options.resamples, options.seed, CONFIDENCE),
            });
        }
        let shifts = &out.shifts[first..];
        let x: Vec<f64> = shifts.iter().map(|s| s.shift).collect();
        let y: Vec<f64> = shifts.iter().map(|s| s.hofstede_score).collect();
        let items_changed = answered.values().filter(|&&changed| changed).count();
        let control_values: Vec<f64> = control_answers.values().copied().collect();
        out.dimensions.push(DimensionEffect {
            model: model.to_string(),
            dimension,
            countries: shifts.len(),
            items: answered.len(),
            items_changed,
            share_items_changed: (!answered.is_empty())
                .then(|| items_changed as f64 / answered.len() as f64),
            control_share_high: mean(&control_values),
            mean_shift: (!x.is_empty()).then(|| mean(&x)),
            mean_abs_shift: (!x.is_empty())
                .then(|| mean(&x.iter().map(|v| v.abs()).collect::<Vec<_>>())),
            countries_shifted: shifts
                .iter()
                .filter(|s| s.shift_ci.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0))
                .count(),
            shift_pearson: pearson(&x, &y),
            shift_spearman: spearman(&x, &y),
            shift_kendall: kendall(&x, &y),
        });
    }
    out
}

/// One line of persona_effect.csv.
#[derive(Serialize, Default)]
pub struct CountryShiftCsv<'a> {
    pub model: &'a str,
    pub dimension: &'static str,
    pub country: &'a str,
    pub tier: &'static str,
    pub n: usize,
    #[serde(serialize_with = "float")]
    pub share_high: f64,
    #[serde(serialize_with = "float")]
    pub control_share_high: f64,
    #[serde(serialize_with = "float")]
    pub shift: f64,
    #[serde(serialize_with = "float_or_nan")]
    pub shift_ci_low: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub shift_ci_high: Option<f64>,
}

impl<'a> From<&'a CountryShift> for CountryShiftCsv<'a> {
    fn from(s: &'a CountryShift) -> Self {
        Self {
            model: &s.model,
            dimension: s.dimension.code(),
            country: &s.country,
            tier: s.tier.code(),
            n: s.n,
            share_high: s.share_high,
            control_share_high: s.control_share_high,
            shift: s.shift,
            shift_ci_low: s.shift_ci.map(|c| c.0),
            shift_ci_high: s.shift_ci.map(|c| c.1),
        }
    }
}

/// One line of persona_effect_by_dimension.csv.
#[derive(Serialize, Default)]
pub struct DimensionEffectCsv<'a> {
    pub model: &'a str,
    pub dimension: &'static str,
    pub countries: usize,
    pub items: usize,
    pub items_changed: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub share_items_changed: Option<f64>,
    #[serde(serialize_with = "float")]
    pub control_share_high: f64,
    #[serde(serialize_with = "float_or_nan")]
    pub mean_shift: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub mean_abs_shift: Option<f64>,
    pub countries_shifted: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub shift_pearson_r: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub shift_pearson_p: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub shift_spearman_rho: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub shift_spearman_p: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub shift_kendall_tau: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub shift_kendall_p: Option<f64>,
}

impl<'a> From<&'a DimensionEffect> for DimensionEffectCsv<'a> {
    fn from(d: &'a DimensionEffect) -> Self {
        Self {
            model: &d.model,
            dimension: d.dimension.code(),
            countries: d.countries,
            items: d.items,
            items_changed: d.items_changed,
            share_items_changed: d.share_items_changed,
            control_share_high: d.control_share_high,
            mean_shift: d.mean_shift,
            mean_abs_shift: d.mean_abs_shift,
            countries_shifted: d.countries_shifted,
            shift_pearson_r: d.shift_pearson.map(|c| c.r),
            shift_pearson_p: d.shift_pearson.map(|c| c.p),
            shift_spearman_rho: d.shift_spearman.map(|c| c.r),
            shift_spearman_p: d.shift_spearman.map(|c| c.p),
            shift_kendall_tau: d.shift_kendall.map(|c| c.r),
            shift_kendall_p: d.shift_kendall.map(|c| c.p),
        }
    }
}

/// persona_effect.csv and persona_effect_by_dimension.csv, when a control run was paired.
pub fn tables(e: &PersonaEffect) -> Vec<(&'static str, String)> {
    if e.dimensions.is_empty() {
        return Vec::new();
    }
    vec![
        (
            "persona_effect.csv",
            csv_table(e.shifts.iter().map(CountryShiftCsv::from)),
        ),
        (
            "persona_effect_by_dimension.csv",
            csv_table(e.dimensions.iter().map(DimensionEffectCsv::from)),
        ),
    ]
}

/// Whether the personas move the answers, and which way, in one sentence.
pub fn verdict(d: &DimensionEffect) -> String {
    let moved = if d.items_changed == 0 {
        format!(
            "personas do not move answers (no item of {} changes with any persona)",
            d.items
        )
    } else {
        format!(
            "personas move answers ({} of {} items change with some persona; {} of {} \
             countries' shift intervals exclude 0)",
            d.items_changed, d.items, d.countries_shifted, d.countries
        )
    };
    let direction = match d.shift_pearson {
        None => "the shift does not vary with the score (r undefined)".to_string(),
        Some(c) if c.p < 0.05 && c.r > 0.0 => format!(
            "in the direction of the country's score (shift vs score r = {:+.2}{}, p = {:.3})",
            c.r,
            stars(c.p),
            c.p
        ),
        Some(c) if c.p < 0.05 => format!(
            "against the direction of the country's score (shift vs score r = {:+.2}{}, \
             p = {:.3})",
            c.r,
            stars(c.p),
            c.p
        ),
        Some(c) => format!(
            "not significantly in the direction of the country's score (shift vs score \
             r = {:+.2}, p = {:.3})",
            c.r, c.p
        ),
    };
    format!("{moved}; {direction}")
}

/// The "Persona effect" section of summary.md.
pub fn summary(e: &PersonaEffect, options: Options, md: &mut String) {
    if e.dimensions.is_empty() {
        return;
    }
    writeln!(
        md,
        "## Persona effect\n\nThe personas run against the control run (`--approach control`: \
         the same items with no persona sentence). shift = a country's high-side share minus \
         the control's on the same items, with a 95% bootstrap interval over items ({} \
         resamples, seed {}); the shift's correlation with the Hofstede score says whether \
         the persona moves answers the country's way. Tables: persona_effect.csv, \
         persona_effect_by_dimension.csv.\n",
        options.resamples, options.seed
    )
    .unwrap();
    let mut model = "";
    for d in &e.dimensions {
        if d.model != model {
            model = &d.model;
            writeln!(md, "{model}:\n").unwrap();
        }
        writeln!(md, "- {}: {}.", d.dimension, verdict(d)).unwrap();
    }
    writeln!(
        md,
        "\n| model | dim | countries | control high-side share | mean shift | mean abs shift | countries shifted | items changed | shift vs score r | rho | tau |"
    )
    .unwrap();
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
    let cell = |c: Option<Correlation>| {
        c.map_or_else(|| "–".to_string(), |c| format!("{:+.2}{}", c.r, stars(c.p)))
    };
    for d in &e.dimensions {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} |",
            d.model,
            d.dimension,
            d.countries,
            pct(Some(d.control_share_high)),
            fmt_opt(d.mean_shift, 3),
            fmt_opt(d.mean_abs_shift, 3),
            d.countries_shifted,
            d.items_changed,
            pct(d.share_items_changed),
            cell(d.shift_pearson),
            cell(d.shift_spearman),
            cell(d.shift_kendall),
        )
        .unwrap();
    }
    writeln!(md).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_interval_and_a_constant_shift_has_no_width() {
        // Item answers are shares over rounds: any value in [0, 1].
        let p = [0.9, 0.1, 0.75, 1.0, 0.3, 0.6, 0.45, 0.8];
        let c = [0.2, 0.0, 0.65, 0.1, 0.35, 0.05, 0.5, 0.15];
        let a = shift_ci(&p, &c, 500, 7, 0.95).unwrap();
        assert_eq!(a, shift_ci(&p, &c, 500, 7, 0.95).unwrap());
        assert_ne!(a, shift_ci(&p, &c, 500, 8, 0.95).unwrap());
        let shift = p.iter().sum::<f64>() / 8.0 - c.iter().sum::<f64>() / 8.0;
        assert!(a.0 <= shift && shift <= a.1, "{a:?}");
        assert_eq!(
            shift_ci(&[1.0; 4], &[0.0; 4], 100, 1, 0.95),
            Some((1.0, 1.0))
        );
        assert_eq!(shift_ci(&[1.0], &[0.0], 100, 1, 0.95), None);
    }
}
