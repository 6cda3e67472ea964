//! The analysis of loaded rows: correlations by tier and level, bootstrap intervals,
//! classification, diagnostics and the derived tables, gathered in `Analysis`.

use super::classification::{separation, Separation};
use super::correlation::{
    benjamini_hochberg, bootstrap_ci, fisher_ci, pearson, spearman, two_sided_p, BootstrapCi,
    Correlation,
};
use super::diagnostics::{diagnostics, DiagnosticsRow};
use super::options::{Options, CONFIDENCE};
use super::shares::{
    country_shares, groups, keyed_by_analysis_model, tiers, CountryShare, GroupKey,
};
use super::translation::{translation_quality, CacheQuality, TranslationQuality};
use super::{kendall, persona_effect, position, replies, translation};
use crate::dimension::{Dimension, Tier};
use crate::results::ResultRow;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Country,
    Response,
}

impl Level {
    pub fn code(self) -> &'static str {
        match self {
            Level::Country => "country",
            Level::Response => "response",
        }
    }
}

/// One row of correlations.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationRow {
    pub model: String,
    pub approach: String,
    pub dimension: Dimension,
    /// None = all tiers.
    pub tier: Option<Tier>,
    pub level: Level,
    /// Countries (country level) or decided answers (response level).
    pub n: usize,
    pub pearson: Option<Correlation>,
    /// The paper's p: the same r tested as if n were the number of answers.
    pub pearson_p_paper: Option<f64>,
    /// Fisher-z interval for r.
    pub pearson_ci: Option<(f64, f64)>,
    pub spearman: Option<Correlation>,
    /// Kendall's tau-b with scipy's p (`kendall::kendall`).
    pub kendall: Option<Correlation>,
    /// Benjamini–Hochberg adjusted `pearson_p` across the whole table.
    pub p_bh: Option<f64>,
}

/// A country-level bootstrap interval (bootstrap.csv).
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapRow {
    pub model: String,
    pub approach: String,
    pub dimension: Dimension,
    pub tier: Option<Tier>,
    pub n: usize,
    pub seed: u64,
    pub ci: BootstrapCi,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationRow {
    pub model: String,
    pub approach: String,
    pub dimension: Dimension,
    pub separation: Separation,
}

/// Everything `hofbench stats` computes.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub options: Options,
    pub shares: Vec<CountryShare>,
    pub correlations: Vec<CorrelationRow>,
    /// correlations.csv's rows for the groups with round-trip BLEU (multilingual), computed
    /// without the answers flagged `low_bleu`; Benjamini–Hochberg within this table.
    pub correlations_bleu_ok: Vec<CorrelationRow>,
    pub translation_quality: Vec<TranslationQuality>,
    /// The translation caches' own per-language figures (filled by `run_with`, which knows
    /// the folder; empty from `analyze`).
    pub cache_quality: Vec<CacheQuality>,
    pub bootstrap: Vec<BootstrapRow>,
    pub classification: Vec<ClassificationRow>,
    pub diagnostics: Vec<DiagnosticsRow>,
    /// Judged replies against the logit scorer on the same items (agreement.csv).
    pub agreement: Vec<replies::AgreementRow>,
    /// Replies in the prompt's language (language_fidelity.csv).
    pub language_fidelity: Vec<replies::LanguageFidelity>,
    /// Replies that mention the country, refuse, or weigh both sides (persona_use.csv).
    pub persona_use: Vec<replies::PersonaUse>,
    /// correlations.csv's rows for the answers whose two option orders agree
    /// (correlations_orders_agree.csv; `position`).
    pub correlations_orders_agree: Vec<CorrelationRow>,
    /// Personas against the control run (`persona_effect`).
    pub persona_effect: persona_effect::PersonaEffect,
}

/// Country- and response-level correlations of every group, tier by tier, with
/// Benjamini–Hochberg across the returned table; bootstrap intervals when `bootstrap`.
fn correlate(
    groups: &BTreeMap<GroupKey, Vec<&ResultRow>>,
    shares: &[CountryShare],
    options: Options,
    bootstrap: bool,
) -> (Vec<CorrelationRow>, Vec<BootstrapRow>) {
    let mut correlations = Vec::new();
    let mut boot = Vec::new();
    for ((model, approach, dimension), rs) in groups {
        let group_shares: Vec<&CountryShare> = shares
            .iter()
            .filter(|s| &s.model == model && &s.approach == approach && s.dimension == *dimension)
            .collect();
        for tier in tiers() {
            let in_tier = |t: Tier| tier.is_none_or(|want| want == t);
            let cs: Vec<&&CountryShare> = group_shares.iter().filter(|s| in_tier(s.tier)).collect();
            let x: Vec<f64> = cs.iter().map(|s| s.share_high).collect();
            let y: Vec<f64> = cs.iter().map(|s| s.hofstede_score).collect();
            let n_answers: usize = cs.iter().map(|s| s.n).sum();
            let p = pearson(&x, &y);
            correlations.push(CorrelationRow {
                model: model.clone(),
                approach: approach.clone(),
                dimension: *dimension,
                tier,
                level: Level::Country,
                n: cs.len(),
                pearson: p,
                pearson_p_paper: p
                    .filter(|_| n_answers >= 3)
                    .map(|c| two_sided_p(c.r, n_answers)),
                pearson_ci: p.and_then(|c| fisher_ci(c.r, c.n, CONFIDENCE)),
                spearman: spearman(&x, &y),
                kendall: kendall::kendall(&x, &y),
                p_bh: None,
            });
            if bootstrap {
                boot.push(BootstrapRow {
                    model: model.clone(),
                    approach: approach.clone(),
                    dimension: *dimension,
                    tier,
                    n: cs.len(),
                    seed: options.seed,
                    ci: bootstrap_ci(&x, &y, options.resamples, options.seed, CONFIDENCE),
                });
            }

            let (x, y): (Vec<f64>, Vec<f64>) = rs
                .iter()
                .filter(|r| in_tier(r.tier))
                .filter_map(|r| {
                    r.chose_high()
                        .map(|h| (f64::from(u8::from(h)), r.hofstede_score))
                })
                .unzip();
            let p = pearson(&x, &y);
            correlations.push(CorrelationRow {
                model: model.clone(),
                approach: approach.clone(),
                dimension: *dimension,
                tier,
                level: Level::Response,
                n: x.len(),
                pearson: p,
                pearson_p_paper: p.map(|c| c.p),
                pearson_ci: p.and_then(|c| fisher_ci(c.r, c.n, CONFIDENCE)),
                spearman: spearman(&x, &y),
                kendall: kendall::kendall(&x, &y),
                p_bh: None,
            });
        }
    }
    let p: Vec<Option<f64>> = correlations
        .iter()
        .map(|c| c.pearson.map(|p| p.p))
        .collect();
    for (c, adj) in correlations.iter_mut().zip(benjamini_hochberg(&p)) {
        c.p_bh = adj;
    }
    (correlations, boot)
}

/// Analyse rows (from one run or several).
pub fn analyze(rows: &[ResultRow], options: Options) -> Analysis {
    let agreement = replies::agreement(rows);
    // The control run (no persona, country `none`) has no country to correlate: it is kept
    // for the persona effect and its diagnostics.
    let (control, keyed): (Vec<ResultRow>, Vec<ResultRow>) = keyed_by_analysis_model(rows)
        .into_iter()
        .partition(|r| r.approach == persona_effect::CONTROL);
    let rows = &keyed[..];
    let (language_fidelity, persona_use) = replies::reply_tables(rows);
    let shares = country_shares(rows);
    let mut classification = Vec::new();
    let mut diag = Vec::new();
    let groups = groups(rows);
    let (correlations, bootstrap) = correlate(&groups, &shares, options, true);

    // The groups with translation quality, again without their low-BLEU answers.
    let bleu_ok: Vec<ResultRow> = groups
        .values()
        .filter(|rs| translation::has_bleu(rs))
        .flatten()
        .filter(|r| !r.low_bleu)
        .map(|&r| r.clone())
        .collect();
    let (correlations_bleu_ok, _) = correlate(
        &self::groups(&bleu_ok),
        &country_shares(&bleu_ok),
        options,
        false,
    );
    let agree = position::orders_agree(rows);
    let (correlations_orders_agree, _) = correlate(
        &self::groups(&agree),
        &country_shares(&agree),
        options,
        false,
    );

    for ((model, approach, dimension), rs) in &groups {
        let group_shares: Vec<&CountryShare> = shares
            .iter()
            .filter(|s| &s.model == model && &s.approach == approach && s.dimension == *dimension)
            .collect();
        let share: Vec<f64> = group_shares.iter().map(|s| s.share_high).collect();
        let side: Vec<bool> = group_shares.iter().map(|s| s.high_side).collect();
        if let Some(separation) = separation(&share, &side) {
            classification.push(ClassificationRow {
                model: model.clone(),
                approach: approach.clone(),
                dimension: *dimension,
                separation,
            });
        }
        diag.push(DiagnosticsRow {
            model: model.clone(),
            approach: approach.clone(),
            dimension: Some(*dimension),
            diagnostics: diagnostics(rs),
        });
    }
    let control_groups = self::groups(&control);
    for ((model, approach, dimension), rs) in &control_groups {
        diag.push(DiagnosticsRow {
            model: model.clone(),
            approach: approach.clone(),
            dimension: Some(*dimension),
            diagnostics: diagnostics(rs),
        });
    }
    // One "all dimensions" diagnostics row per model × approach.
    let mut by_model: BTreeMap<(&str, &str), Vec<&ResultRow>> = BTreeMap::new();
    for ((model, approach, _), rs) in groups.iter().chain(&control_groups) {
        by_model
            .entry((model.as_str(), approach.as_str()))
            .or_default()
            .extend(rs.iter().copied());
    }
    for ((model, approach), rs) in by_model {
        diag.push(DiagnosticsRow {
            model: model.to_string(),
            approach: approach.to_string(),
            dimension: None,
            diagnostics: diagnostics(&rs),
        });
    }
    diag.sort_by(|a, b| {
        (&a.model, &a.approach, a.dimension.is_none(), a.dimension).cmp(&(
            &b.model,
            &b.approach,
            b.dimension.is_none(),
            b.dimension,
        ))
    });

    Analysis {
        options,
        shares,
        correlations,
        correlations_bleu_ok,
        translation_quality: translation_quality(rows),
        cache_quality: Vec::new(),
        bootstrap,
        classification,
        diagnostics: diag,
        agreement,
        language_fidelity,
        persona_use,
        correlations_orders_agree,
        persona_effect: persona_effect::persona_effect(rows, &control, options),
    }
}

impl Analysis {
    pub fn models(&self) -> Vec<&str> {
        let mut m: Vec<&str> = self.shares.iter().map(|s| s.model.as_str()).collect();
        m.sort();
        m.dedup();
        m
    }

    /// (approach, dimension) pairs of a model, sorted.
    pub fn groups_of(&self, model: &str) -> Vec<(&str, Dimension)> {
        let mut keys: Vec<(&str, Dimension)> = self
            .shares
            .iter()
            .filter(|s| s.model == model)
            .map(|s| (s.approach.as_str(), s.dimension))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    pub fn correlation(
        &self,
        key: (&str, &str, Dimension),
        tier: Option<Tier>,
        level: Level,
    ) -> Option<&CorrelationRow> {
        self.correlations.iter().find(|c| {
            c.model == key.0
                && c.approach == key.1
                && c.dimension == key.2
                && c.tier == tier
                && c.level == level
        })
    }

    pub fn bootstrap_of(&self, key: (&str, &str, Dimension)) -> Option<&BootstrapRow> {
        self.bootstrap.iter().find(|b| {
            b.model == key.0 && b.approach == key.1 && b.dimension == key.2 && b.tier.is_none()
        })
    }

    pub(crate) fn classification_of(&self, key: (&str, &str, Dimension)) -> Option<&Separation> {
        self.classification
            .iter()
            .find(|c| c.model == key.0 && c.approach == key.1 && c.dimension == key.2)
            .map(|c| &c.separation)
    }
}
