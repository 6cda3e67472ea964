//! `hofbench compare A B [--out DIR]`: paired comparisons of two runs (or folders of runs):
//! model vs model, personas vs multilingual, logits vs generate, a run vs the paper's
//! imported answers.
//!
//! Which groups are compared: the (model, approach) pairs present under both A and B by the
//! same names; otherwise, when each side holds one (analysis) model, its approaches present on
//! both sides; otherwise, when each side holds one model and one approach, those two. Then,
//! per dimension present in both, over the countries present in both (A's order):
//! - `r`: Pearson r of the country's high-side share with its Hofstede score (each side its
//!   own scores), `share_high`: the mean of the countries' high-side shares, `accuracy`: the
//!   share of countries whose side (score > 50) `share_high > 0.5` gets right;
//! - `delta = B − A` with a paired percentile bootstrap over countries: each resample draws
//!   one set of country indices used for both sides and all three statistics (SplitMix64
//!   seeded with `--seed`, index `next % n`, resamples where r is undefined on either side
//!   skipped for r, `np.percentile` linear interpolation), and a two-sided bootstrap p:
//!   min(1, 2 · min(#{delta* ≤ 0}, #{delta* ≥ 0}) / valid resamples).

use crate::config::CompareConfig;
use crate::dimension::Dimension;
use crate::results::ResultRow;
use crate::stats::correlation::{quantile, SplitMix64};
use crate::stats::format::{csv_table, float_or_nan, fmt_opt};
use crate::stats::{
    self, country_shares, pearson, persona_effect::CONTROL, CountryShare, Options, CONFIDENCE,
};
use crate::{Error, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

pub const COMPARISON_FILE: &str = "comparison.csv";
pub const COMPARISON_MD: &str = "comparison.md";

/// One side's per-country figures of a (model, approach, dimension), aligned with the other's.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub share: Vec<f64>,
    pub score: Vec<f64>,
    pub high_side: Vec<bool>,
}

/// The three statistics of one side on countries `idx`: r, mean high-side share, accuracy.
fn statistics(s: &Side, idx: &[usize]) -> [Option<f64>; 3] {
    let share: Vec<f64> = idx.iter().map(|&i| s.share[i]).collect();
    let score: Vec<f64> = idx.iter().map(|&i| s.score[i]).collect();
    let n = idx.len() as f64;
    let right = idx
        .iter()
        .filter(|&&i| (s.share[i] > 0.5) == s.high_side[i])
        .count();
    [
        pearson(&share, &score).map(|c| c.r),
        Some(share.iter().sum::<f64>() / n),
        Some(right as f64 / n),
    ]
}

/// B − A of one statistic with its paired bootstrap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDelta {
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub delta: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub p: Option<f64>,
    /// Resamples where the statistic is defined on both sides.
    pub valid: usize,
}

/// The paired bootstrap of r, share and accuracy deltas (see the module's documentation).
/// `resample_indices` replaces the seeded draws (tests give fixed index sets).
pub fn paired_deltas(
    a: &Side,
    b: &Side,
    resamples: usize,
    seed: u64,
    resample_indices: Option<&[Vec<usize>]>,
) -> [PairedDelta; 3] {
    let n = a.share.len();
    assert_eq!(n, b.share.len());
    let all: Vec<usize> = (0..n).collect();
    let (sa, sb) = (statistics(a, &all), statistics(b, &all));
    let mut deltas: [Vec<f64>; 3] = Default::default();
    let mut draw = |idx: &[usize]| {
        let (ra, rb) = (statistics(a, idx), statistics(b, idx));
        for k in 0..3 {
            if let (Some(x), Some(y)) = (ra[k], rb[k]) {
                deltas[k].push(y - x);
            }
        }
    };
    if n > 0 {
        match resample_indices {
            Some(sets) => sets.iter().for_each(|idx| draw(idx)),
            None => {
                let mut rng = SplitMix64::new(seed);
                let mut idx = vec![0; n];
                for _ in 0..resamples {
                    for slot in idx.iter_mut() {
                        *slot = (rng.next_u64() % n as u64) as usize;
                    }
                    draw(&idx);
                }
            }
        }
    }
    std::array::from_fn(|k| {
        let d = &mut deltas[k];
        d.sort_by(f64::total_cmp);
        let q = (1.0 - CONFIDENCE) / 2.0;
        let valid = d.len();
        PairedDelta {
            a: sa[k],
            b: sb[k],
            delta: sa[k].zip(sb[k]).map(|(x, y)| y - x),
            ci: (valid >= 2).then(|| (quantile(d, q), quantile(d, 1.0 - q))),
            p: (valid >= 1).then(|| {
                let below = d.iter().filter(|&&v| v <= 0.0).count();
                let above = d.iter().filter(|&&v| v >= 0.0).count();
                (2.0 * below.min(above) as f64 / valid as f64).min(1.0)
            }),
            valid,
        }
    })
}

/// One row of comparison.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub model_a: String,
    pub approach_a: String,
    pub model_b: String,
    pub approach_b: String,
    pub dimension: Dimension,
    /// Countries present on both sides.
    pub n: usize,
    pub r: PairedDelta,
    pub share_high: PairedDelta,
    pub accuracy: PairedDelta,
}

type Arm = (String, String);

fn arms(shares: &[CountryShare]) -> Vec<Arm> {
    let mut v: Vec<Arm> = shares
        .iter()
        .map(|s| (s.model.clone(), s.approach.clone()))
        .collect();
    v.sort();
    v.dedup();
    v
}

fn models(arms: &[Arm]) -> Vec<&str> {
    let mut m: Vec<&str> = arms.iter().map(|a| a.0.as_str()).collect();
    m.dedup();
    m
}

/// Which arm of A is compared with which of B (see the module's documentation).
fn pairs(a: &[Arm], b: &[Arm]) -> std::result::Result<Vec<(Arm, Arm)>, String> {
    for (side, arms) in [("A", a), ("B", b)] {
        if arms.is_empty() {
            return Err(format!(
                "{side} holds no answers with countries (a control run alone has none)"
            ));
        }
    }
    let same: Vec<(Arm, Arm)> = a
        .iter()
        .filter(|x| b.contains(x))
        .map(|x| (x.clone(), x.clone()))
        .collect();
    if !same.is_empty() {
        return Ok(same);
    }
    let (ma, mb) = (models(a), models(b));
    if ma.len() != 1 || mb.len() != 1 {
        return Err(format!(
            "A holds the models {} and B {}: with different model names on the two sides, \
             each side must hold one model",
            ma.join(", "),
            mb.join(", ")
        ));
    }
    let by_approach: Vec<(Arm, Arm)> = a
        .iter()
        .filter_map(|x| {
            b.iter()
                .find(|y| y.1 == x.1)
                .map(|y| (x.clone(), y.clone()))
        })
        .collect();
    if !by_approach.is_empty() {
        return Ok(by_approach);
    }
    if a.len() == 1 && b.len() == 1 {
        return Ok(vec![(a[0].clone(), b[0].clone())]);
    }
    Err("A and B share no approach, and one of them holds several".into())
}

/// The per-country figures of a group, keyed by country.
fn group<'a>(shares: &'a [CountryShare], arm: &Arm, dim: Dimension) -> Vec<&'a CountryShare> {
    shares
        .iter()
        .filter(|s| s.model == arm.0 && s.approach == arm.1 && s.dimension == dim)
        .collect()
}

/// Compare the rows of two sides (each as loaded by `stats::load`).
pub fn compare_rows(
    a: &[ResultRow],
    b: &[ResultRow],
    options: Options,
) -> std::result::Result<Vec<ComparisonRow>, String> {
    let shares_of = |rows: &[ResultRow]| {
        let keyed: Vec<ResultRow> = stats::keyed_by_analysis_model(rows)
            .into_iter()
            .filter(|r| r.approach != CONTROL)
            .collect();
        country_shares(&keyed)
    };
    let (sa, sb) = (shares_of(a), shares_of(b));
    let mut out = Vec::new();
    for (arm_a, arm_b) in pairs(&arms(&sa), &arms(&sb))? {
        for dim in Dimension::ALL {
            let (ga, gb) = (group(&sa, &arm_a, dim), group(&sb, &arm_b, dim));
            if ga.is_empty() || gb.is_empty() {
                continue;
            }
            let common: Vec<(&CountryShare, &CountryShare)> = ga
                .iter()
                .filter_map(|x| gb.iter().find(|y| y.country == x.country).map(|y| (*x, *y)))
                .collect();
            let side = |shares: Vec<&CountryShare>| Side {
                share: shares.iter().map(|s| s.share_high).collect(),
                score: shares.iter().map(|s| s.hofstede_score).collect(),
                high_side: shares.iter().map(|s| s.high_side).collect(),
            };
            let [r, share_high, accuracy] = paired_deltas(
                &side(common.iter().map(|p| p.0).collect()),
                &side(common.iter().map(|p| p.1).collect()),
                options.resamples,
                options.seed,
                None,
            );
            out.push(ComparisonRow {
                model_a: arm_a.0.clone(),
                approach_a: arm_a.1.clone(),
                model_b: arm_b.0.clone(),
                approach_b: arm_b.1.clone(),
                dimension: dim,
                n: common.len(),
                r,
                share_high,
                accuracy,
            });
        }
    }
    if out.is_empty() {
        return Err("A and B have no dimension in common".into());
    }
    Ok(out)
}

/// One line of comparison.csv: per statistic (r, share_high, accuracy) A, B, B − A, its
/// interval and p; then the bootstrap's resamples, the valid ones (r, and the other two) and
/// seed.
#[derive(Serialize, Default)]
pub struct ComparisonCsv<'a> {
    pub model_a: &'a str,
    pub approach_a: &'a str,
    pub model_b: &'a str,
    pub approach_b: &'a str,
    pub dimension: &'static str,
    pub n: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub r_a: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub r_b: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_r: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_r_ci_low: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_r_ci_high: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_r_p: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub share_high_a: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub share_high_b: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_share_high: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_share_high_ci_low: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_share_high_ci_high: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_share_high_p: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub accuracy_a: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub accuracy_b: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_accuracy: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_accuracy_ci_low: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_accuracy_ci_high: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub delta_accuracy_p: Option<f64>,
    pub resamples: usize,
    pub valid_r: usize,
    pub valid: usize,
    pub seed: u64,
}

impl<'a> ComparisonCsv<'a> {
    fn new(c: &'a ComparisonRow, options: Options) -> Self {
        let (r, share, acc) = (&c.r, &c.share_high, &c.accuracy);
        Self {
            model_a: &c.model_a,
            approach_a: &c.approach_a,
            model_b: &c.model_b,
            approach_b: &c.approach_b,
            dimension: c.dimension.code(),
            n: c.n,
            r_a: r.a,
            r_b: r.b,
            delta_r: r.delta,
            delta_r_ci_low: r.ci.map(|c| c.0),
            delta_r_ci_high: r.ci.map(|c| c.1),
            delta_r_p: r.p,
            share_high_a: share.a,
            share_high_b: share.b,
            delta_share_high: share.delta,
            delta_share_high_ci_low: share.ci.map(|c| c.0),
            delta_share_high_ci_high: share.ci.map(|c| c.1),
            delta_share_high_p: share.p,
            accuracy_a: acc.a,
            accuracy_b: acc.b,
            delta_accuracy: acc.delta,
            delta_accuracy_ci_low: acc.ci.map(|c| c.0),
            delta_accuracy_ci_high: acc.ci.map(|c| c.1),
            delta_accuracy_p: acc.p,
            resamples: options.resamples,
            valid_r: r.valid,
            valid: share.valid,
            seed: options.seed,
        }
    }
}

pub fn table(rows: &[ComparisonRow], options: Options) -> String {
    csv_table(rows.iter().map(|c| ComparisonCsv::new(c, options)))
}

pub fn markdown(rows: &[ComparisonRow], a: &Path, b: &Path, options: Options) -> String {
    let mut md = String::new();
    writeln!(
        md,
        "## Comparison\n\nA = {}, B = {}. Per dimension, over the countries of both: \
         country-level Pearson r with the Hofstede score, mean high-side share and \
         classification accuracy (share > 0.5 against the side, score > 50); Δ = B − A with a \
         95% paired bootstrap interval over countries (the same resampled countries for both; \
         {} resamples, seed {}) and its two-sided bootstrap p.\n",
        a.display(),
        b.display(),
        options.resamples,
        options.seed
    )
    .unwrap();
    writeln!(
        md,
        "| A | B | dim | countries | r_a | r_b | delta_r | CI | p | share_a | share_b | Δ share | CI | p | accuracy_a | accuracy_b | Δ accuracy | CI | p |"
    )
    .unwrap();
    writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    .unwrap();
    let ci = |c: Option<(f64, f64)>| {
        c.map_or_else(|| "–".to_string(), |(l, h)| format!("[{l:+.2}, {h:+.2}]"))
    };
    for c in rows {
        let cells: Vec<String> = [&c.r, &c.share_high, &c.accuracy]
            .iter()
            .flat_map(|d| {
                [
                    fmt_opt(d.a, 2),
                    fmt_opt(d.b, 2),
                    d.delta
                        .map_or_else(|| "–".to_string(), |v| format!("{v:+.2}")),
                    ci(d.ci),
                    fmt_opt(d.p, 3),
                ]
            })
            .collect();
        writeln!(
            md,
            "| {} ({}) | {} ({}) | {} | {} | {} |",
            c.model_a,
            c.approach_a,
            c.model_b,
            c.approach_b,
            c.dimension,
            c.n,
            cells.join(" | ")
        )
        .unwrap();
    }
    md
}

/// `hofbench compare`: writes DIR/comparison.csv and DIR/comparison.md; returns the Markdown.
pub fn compare_command(args: &CompareConfig) -> Result<String> {
    let options = args.stats;
    let (a, b) = (stats::load(&args.a)?, stats::load(&args.b)?);
    let rows = compare_rows(&a, &b, options).map_err(|msg| {
        Error::Incompatible(format!(
            "compare {} {}: {msg}",
            args.a.display(),
            args.b.display()
        ))
    })?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let md = markdown(&rows, &args.a, &args.b, options);
    stats::write_file(&args.out.join(COMPARISON_FILE), &table(&rows, options))?;
    stats::write_file(&args.out.join(COMPARISON_MD), &md)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_rules() {
        let arm = |m: &str, a: &str| (m.to_string(), a.to_string());
        // Same names: those pairs.
        let p = pairs(&[arm("x", "personas")], &[arm("x", "personas")]).unwrap();
        assert_eq!(p.len(), 1);
        // One model each: by approach, else the single arms.
        let p = pairs(
            &[arm("x", "personas"), arm("x", "multilingual")],
            &[arm("y", "personas")],
        )
        .unwrap();
        assert_eq!(p, vec![(arm("x", "personas"), arm("y", "personas"))]);
        let p = pairs(&[arm("x", "personas")], &[arm("x", "multilingual")]).unwrap();
        assert_eq!(p, vec![(arm("x", "personas"), arm("x", "multilingual"))]);
        assert!(pairs(
            &[arm("x", "personas"), arm("y", "personas")],
            &[arm("z", "personas")]
        )
        .is_err());
    }

    #[test]
    fn same_seed_same_intervals() {
        let a = Side {
            share: vec![0.1, 0.4, 0.6, 0.8, 0.3, 0.9],
            score: vec![20.0, 40.0, 60.0, 70.0, 30.0, 90.0],
            high_side: vec![false, false, true, true, false, true],
        };
        let b = Side {
            share: vec![0.5, 0.5, 0.6, 0.4, 0.3, 0.7],
            ..a.clone()
        };
        let one = paired_deltas(&a, &b, 300, 5, None);
        assert_eq!(one, paired_deltas(&a, &b, 300, 5, None));
        assert_ne!(one[0].ci, paired_deltas(&a, &b, 300, 6, None)[0].ci);
        // A side against itself: every delta is 0, p = 1.
        let same = paired_deltas(&a, &a, 100, 5, None);
        assert_eq!(same[0].ci, Some((0.0, 0.0)));
        assert_eq!(same[1].p, Some(1.0));
    }
}
