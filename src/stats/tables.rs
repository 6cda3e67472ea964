//! The CSV tables of an analysis (by_country.csv, correlations.csv, bootstrap.csv,
//! classification.csv, diagnostics.csv, the translation and orders-agree tables) as serde
//! rows, by file name, with the persona-effect and replies tables of their own modules.
//! A row struct's fields are the table's columns, in order and by name (`format` writes them).

use super::analysis::{Analysis, BootstrapRow, ClassificationRow, CorrelationRow};
use super::diagnostics::DiagnosticsRow;
use super::format::{csv_table, float, float_or_nan, or_all};
use super::shares::CountryShare;
use super::{persona_effect, replies, TranslationQuality};
use crate::dimension::{Dimension, Tier};
use serde::Serialize;

/// One line of by_country.csv.
#[derive(Serialize, Default)]
pub struct ByCountryCsv<'a> {
    pub model: &'a str,
    pub approach: &'a str,
    pub dimension: &'static str,
    pub country: &'a str,
    pub language: &'a str,
    pub tier: &'static str,
    #[serde(serialize_with = "float")]
    pub hofstede_score: f64,
    pub high_side: bool,
    pub n: usize,
    pub n_high: usize,
    pub n_low: usize,
    pub n_inconclusive: usize,
    #[serde(serialize_with = "float")]
    pub share_high: f64,
    #[serde(serialize_with = "float_or_nan")]
    pub share_high_decided: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub mean_p_high: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub mean_label_mass: Option<f64>,
}

impl<'a> From<&'a CountryShare> for ByCountryCsv<'a> {
    fn from(s: &'a CountryShare) -> Self {
        Self {
            model: &s.model,
            approach: &s.approach,
            dimension: s.dimension.code(),
            country: &s.country,
            language: &s.language,
            tier: s.tier.code(),
            hofstede_score: s.hofstede_score,
            high_side: s.high_side,
            n: s.n,
            n_high: s.n_high,
            n_low: s.n_low,
            n_inconclusive: s.n_inconclusive,
            share_high: s.share_high,
            share_high_decided: s.share_high_decided,
            mean_p_high: s.mean_p_high,
            mean_label_mass: s.mean_label_mass,
        }
    }
}

/// One line of correlations.csv (and of correlations_bleu_ok.csv and
/// correlations_orders_agree.csv, which share its columns).
#[derive(Serialize, Default)]
pub struct CorrelationCsv<'a> {
    pub model: &'a str,
    pub approach: &'a str,
    pub dimension: &'static str,
    #[serde(serialize_with = "or_all")]
    pub tier: Option<Tier>,
    pub level: &'static str,
    pub n: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub pearson_r: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub pearson_p: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub pearson_p_paper: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub pearson_ci_low: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub pearson_ci_high: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub spearman_rho: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub spearman_p: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub p_bh: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub kendall_tau: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub kendall_p: Option<f64>,
}

impl<'a> From<&'a CorrelationRow> for CorrelationCsv<'a> {
    fn from(c: &'a CorrelationRow) -> Self {
        Self {
            model: &c.model,
            approach: &c.approach,
            dimension: c.dimension.code(),
            tier: c.tier,
            level: c.level.code(),
            n: c.n,
            pearson_r: c.pearson.map(|p| p.r),
            pearson_p: c.pearson.map(|p| p.p),
            pearson_p_paper: c.pearson_p_paper,
            pearson_ci_low: c.pearson_ci.map(|ci| ci.0),
            pearson_ci_high: c.pearson_ci.map(|ci| ci.1),
            spearman_rho: c.spearman.map(|s| s.r),
            spearman_p: c.spearman.map(|s| s.p),
            p_bh: c.p_bh,
            kendall_tau: c.kendall.map(|k| k.r),
            kendall_p: c.kendall.map(|k| k.p),
        }
    }
}

/// One line of bootstrap.csv.
#[derive(Serialize, Default)]
pub struct BootstrapCsv<'a> {
    pub model: &'a str,
    pub approach: &'a str,
    pub dimension: &'static str,
    #[serde(serialize_with = "or_all")]
    pub tier: Option<Tier>,
    pub n: usize,
    pub seed: u64,
    pub resamples: usize,
    pub valid_pearson: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub pearson_ci_low: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub pearson_ci_high: Option<f64>,
    pub valid_spearman: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub spearman_ci_low: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub spearman_ci_high: Option<f64>,
}

impl<'a> From<&'a BootstrapRow> for BootstrapCsv<'a> {
    fn from(b: &'a BootstrapRow) -> Self {
        Self {
            model: &b.model,
            approach: &b.approach,
            dimension: b.dimension.code(),
            tier: b.tier,
            n: b.n,
            seed: b.seed,
            resamples: b.ci.resamples,
            valid_pearson: b.ci.valid_pearson,
            pearson_ci_low: b.ci.pearson.map(|c| c.0),
            pearson_ci_high: b.ci.pearson.map(|c| c.1),
            valid_spearman: b.ci.valid_spearman,
            spearman_ci_low: b.ci.spearman.map(|c| c.0),
            spearman_ci_high: b.ci.spearman.map(|c| c.1),
        }
    }
}

/// One line of classification.csv.
#[derive(Serialize, Default)]
pub struct ClassificationCsv<'a> {
    pub model: &'a str,
    pub approach: &'a str,
    pub dimension: &'static str,
    pub n: usize,
    pub n_high_side: usize,
    #[serde(serialize_with = "float")]
    pub accuracy_at_half: f64,
    #[serde(serialize_with = "float")]
    pub best_threshold: f64,
    #[serde(serialize_with = "float")]
    pub best_accuracy: f64,
    #[serde(serialize_with = "float_or_nan")]
    pub roc_auc: Option<f64>,
}

impl<'a> From<&'a ClassificationRow> for ClassificationCsv<'a> {
    fn from(c: &'a ClassificationRow) -> Self {
        let s = &c.separation;
        Self {
            model: &c.model,
            approach: &c.approach,
            dimension: c.dimension.code(),
            n: s.n,
            n_high_side: s.n_high_side,
            accuracy_at_half: s.accuracy_at_half,
            best_threshold: s.best_threshold,
            best_accuracy: s.best_accuracy,
            roc_auc: s.roc_auc,
        }
    }
}

/// One line of diagnostics.csv.
#[derive(Serialize, Default)]
pub struct DiagnosticsCsv<'a> {
    pub model: &'a str,
    pub approach: &'a str,
    #[serde(serialize_with = "or_all")]
    pub dimension: Option<Dimension>,
    pub n: usize,
    pub n_inconclusive: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub mean_label_mass: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub position_bias: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub share_first_option: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub order_flip_share: Option<f64>,
    #[serde(serialize_with = "float")]
    pub share_high: f64,
    #[serde(serialize_with = "float_or_nan")]
    pub share_high_decided: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub mean_p_high: Option<f64>,
}

impl<'a> From<&'a DiagnosticsRow> for DiagnosticsCsv<'a> {
    fn from(d: &'a DiagnosticsRow) -> Self {
        let g = &d.diagnostics;
        Self {
            model: &d.model,
            approach: &d.approach,
            dimension: d.dimension,
            n: g.n,
            n_inconclusive: g.n_inconclusive,
            mean_label_mass: g.mean_label_mass,
            position_bias: g.position_bias,
            share_first_option: g.share_first_option,
            order_flip_share: g.order_flip_share,
            share_high: g.share_high,
            share_high_decided: g.share_high_decided,
            mean_p_high: g.mean_p_high,
        }
    }
}

/// One line of translation_quality.csv.
#[derive(Serialize, Default)]
pub struct TranslationQualityCsv<'a> {
    pub model: &'a str,
    pub approach: &'a str,
    #[serde(serialize_with = "or_all")]
    pub lang: Option<&'a str>,
    #[serde(serialize_with = "or_all")]
    pub country: Option<&'a str>,
    #[serde(serialize_with = "or_all")]
    pub tier: Option<Tier>,
    pub rows: usize,
    pub rows_with_bleu: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub mean_bleu: Option<f64>,
    pub low_bleu_rows: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub low_bleu_share: Option<f64>,
}

impl<'a> From<&'a TranslationQuality> for TranslationQualityCsv<'a> {
    fn from(q: &'a TranslationQuality) -> Self {
        Self {
            model: &q.model,
            approach: &q.approach,
            lang: q.lang.as_deref(),
            country: q.country.as_deref(),
            tier: q.tier,
            rows: q.rows,
            rows_with_bleu: q.rows_with_bleu,
            mean_bleu: q.mean_bleu,
            low_bleu_rows: q.low_bleu_rows,
            low_bleu_share: q.low_bleu_share,
        }
    }
}

/// A table of `rows` through their CSV row type.
fn table<'a, T: 'a, R: From<&'a T> + Serialize + Default>(rows: &'a [T]) -> String {
    csv_table(rows.iter().map(R::from))
}

fn correlations_table(rows: &[CorrelationRow]) -> String {
    table::<_, CorrelationCsv>(rows)
}

/// The CSV tables of an analysis, by file name. The translation tables are written only
/// when some rows carry a translation (`lang`).
pub fn tables(a: &Analysis) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("by_country.csv", table::<_, ByCountryCsv>(&a.shares)),
        ("correlations.csv", correlations_table(&a.correlations)),
        ("bootstrap.csv", table::<_, BootstrapCsv>(&a.bootstrap)),
        (
            "classification.csv",
            table::<_, ClassificationCsv>(&a.classification),
        ),
        (
            "diagnostics.csv",
            table::<_, DiagnosticsCsv>(&a.diagnostics),
        ),
    ];
    if !a.translation_quality.is_empty() {
        out.push((
            "translation_quality.csv",
            table::<_, TranslationQualityCsv>(&a.translation_quality),
        ));
        out.push((
            "correlations_bleu_ok.csv",
            correlations_table(&a.correlations_bleu_ok),
        ));
    }
    if !a.correlations_orders_agree.is_empty() {
        out.push((
            "correlations_orders_agree.csv",
            correlations_table(&a.correlations_orders_agree),
        ));
    }
    out.extend(persona_effect::tables(&a.persona_effect));
    out.extend(replies::tables(
        &a.agreement,
        &a.language_fidelity,
        &a.persona_use,
    ));
    out
}
