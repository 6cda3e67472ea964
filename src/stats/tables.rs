//! The CSV tables of an analysis (by_country.csv, correlations.csv, bootstrap.csv,
//! classification.csv, diagnostics.csv, the translation and orders-agree tables), by file name.

use super::analysis::{Analysis, CorrelationRow};
use super::persona_effect;
use super::shares::tier_code;
use crate::dimension::Dimension;

pub(crate) fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "NaN".to_string(), |v| format!("{v}"))
}

pub(crate) fn csv_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
    for row in rows {
        w.write_record(&row).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 fields")
}

pub const CORRELATIONS_COLUMNS: [&str; 16] = [
    "model",
    "approach",
    "dimension",
    "tier",
    "level",
    "n",
    "pearson_r",
    "pearson_p",
    "pearson_p_paper",
    "pearson_ci_low",
    "pearson_ci_high",
    "spearman_rho",
    "spearman_p",
    "p_bh",
    "kendall_tau",
    "kendall_p",
];

fn correlations_table(rows: &[CorrelationRow]) -> String {
    csv_table(
        &CORRELATIONS_COLUMNS,
        rows.iter().map(|c| {
            vec![
                c.model.clone(),
                c.approach.clone(),
                c.dimension.to_string(),
                tier_code(c.tier).to_string(),
                c.level.code().to_string(),
                c.n.to_string(),
                num(c.pearson.map(|p| p.r)),
                num(c.pearson.map(|p| p.p)),
                num(c.pearson_p_paper),
                num(c.pearson_ci.map(|ci| ci.0)),
                num(c.pearson_ci.map(|ci| ci.1)),
                num(c.spearman.map(|p| p.r)),
                num(c.spearman.map(|p| p.p)),
                num(c.p_bh),
                num(c.kendall.map(|k| k.r)),
                num(c.kendall.map(|k| k.p)),
            ]
        }),
    )
}

pub const TRANSLATION_QUALITY_COLUMNS: [&str; 10] = [
    "model",
    "approach",
    "lang",
    "country",
    "tier",
    "rows",
    "rows_with_bleu",
    "mean_bleu",
    "low_bleu_rows",
    "low_bleu_share",
];

/// The CSV tables of an analysis, by file name. The translation tables are written only
/// when some rows carry a translation (`lang`).
pub fn tables(a: &Analysis) -> Vec<(&'static str, String)> {
    let by_country = csv_table(
        &[
            "model",
            "approach",
            "dimension",
            "country",
            "language",
            "tier",
            "hofstede_score",
            "high_side",
            "n",
            "n_high",
            "n_low",
            "n_inconclusive",
            "share_high",
            "share_high_decided",
            "mean_p_high",
            "mean_label_mass",
        ],
        a.shares.iter().map(|s| {
            vec![
                s.model.clone(),
                s.approach.clone(),
                s.dimension.to_string(),
                s.country.clone(),
                s.language.clone(),
                s.tier.to_string(),
                s.hofstede_score.to_string(),
                s.high_side.to_string(),
                s.n.to_string(),
                s.n_high.to_string(),
                s.n_low.to_string(),
                s.n_inconclusive.to_string(),
                s.share_high.to_string(),
                num(s.share_high_decided),
                num(s.mean_p_high),
                num(s.mean_label_mass),
            ]
        }),
    );
    let correlations = correlations_table(&a.correlations);
    let bootstrap = csv_table(
        &[
            "model",
            "approach",
            "dimension",
            "tier",
            "n",
            "seed",
            "resamples",
            "valid_pearson",
            "pearson_ci_low",
            "pearson_ci_high",
            "valid_spearman",
            "spearman_ci_low",
            "spearman_ci_high",
        ],
        a.bootstrap.iter().map(|b| {
            vec![
                b.model.clone(),
                b.approach.clone(),
                b.dimension.to_string(),
                tier_code(b.tier).to_string(),
                b.n.to_string(),
                b.seed.to_string(),
                b.ci.resamples.to_string(),
                b.ci.valid_pearson.to_string(),
                num(b.ci.pearson.map(|c| c.0)),
                num(b.ci.pearson.map(|c| c.1)),
                b.ci.valid_spearman.to_string(),
                num(b.ci.spearman.map(|c| c.0)),
                num(b.ci.spearman.map(|c| c.1)),
            ]
        }),
    );
    let classification = csv_table(
        &[
            "model",
            "approach",
            "dimension",
            "n",
            "n_high_side",
            "accuracy_at_half",
            "best_threshold",
            "best_accuracy",
            "roc_auc",
        ],
        a.classification.iter().map(|c| {
            let s = &c.separation;
            vec![
                c.model.clone(),
                c.approach.clone(),
                c.dimension.to_string(),
                s.n.to_string(),
                s.n_high_side.to_string(),
                s.accuracy_at_half.to_string(),
                s.best_threshold.to_string(),
                s.best_accuracy.to_string(),
                num(s.roc_auc),
            ]
        }),
    );
    let diagnostics = csv_table(
        &[
            "model",
            "approach",
            "dimension",
            "n",
            "n_inconclusive",
            "mean_label_mass",
            "position_bias",
            "share_first_option",
            "order_flip_share",
            "share_high",
            "share_high_decided",
            "mean_p_high",
        ],
        a.diagnostics.iter().map(|d| {
            let g = &d.diagnostics;
            vec![
                d.model.clone(),
                d.approach.clone(),
                d.dimension.map_or("all", Dimension::code).to_string(),
                g.n.to_string(),
                g.n_inconclusive.to_string(),
                num(g.mean_label_mass),
                num(g.position_bias),
                num(g.share_first_option),
                num(g.order_flip_share),
                g.share_high.to_string(),
                num(g.share_high_decided),
                num(g.mean_p_high),
            ]
        }),
    );
    let mut out = vec![
        ("by_country.csv", by_country),
        ("correlations.csv", correlations),
        ("bootstrap.csv", bootstrap),
        ("classification.csv", classification),
        ("diagnostics.csv", diagnostics),
    ];
    if !a.translation_quality.is_empty() {
        let all = |v: Option<&str>| v.unwrap_or("all").to_string();
        out.push((
            "translation_quality.csv",
            csv_table(
                &TRANSLATION_QUALITY_COLUMNS,
                a.translation_quality.iter().map(|q| {
                    vec![
                        q.model.clone(),
                        q.approach.clone(),
                        all(q.lang.as_deref()),
                        all(q.country.as_deref()),
                        tier_code(q.tier).to_string(),
                        q.rows.to_string(),
                        q.rows_with_bleu.to_string(),
                        num(q.mean_bleu),
                        q.low_bleu_rows.to_string(),
                        num(q.low_bleu_share),
                    ]
                }),
            ),
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
    out.extend(replies_tables(a));
    out
}

/// agreement.csv, language_fidelity.csv and persona_use.csv, each when it has rows.
fn replies_tables(a: &Analysis) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let all = |v: Option<&str>| v.unwrap_or("all").to_string();
    if !a.agreement.is_empty() {
        out.push((
            "agreement.csv",
            csv_table(
                &[
                    "model",
                    "mode",
                    "approach",
                    "dimension",
                    "n_pairs",
                    "n_inconclusive",
                    "n_agree",
                    "agreement",
                    "kappa",
                ],
                a.agreement.iter().map(|g| {
                    vec![
                        g.model.clone(),
                        g.mode.clone(),
                        g.approach.clone(),
                        g.dimension.map_or("all", Dimension::code).to_string(),
                        g.n_pairs.to_string(),
                        g.n_inconclusive.to_string(),
                        g.n_agree.to_string(),
                        num(g.agreement),
                        num(g.kappa),
                    ]
                }),
            ),
        ));
    }
    if !a.language_fidelity.is_empty() {
        out.push((
            "language_fidelity.csv",
            csv_table(
                &[
                    "model",
                    "approach",
                    "language",
                    "tier",
                    "basis",
                    "n",
                    "n_detected",
                    "n_in_language",
                    "share_in_language",
                    "top_detected",
                ],
                a.language_fidelity.iter().map(|f| {
                    vec![
                        f.model.clone(),
                        f.approach.clone(),
                        all(f.language.as_deref()),
                        tier_code(f.tier).to_string(),
                        all(f.basis.map(crate::replies::Basis::code)),
                        f.n.to_string(),
                        f.n_detected.to_string(),
                        f.n_in_language.to_string(),
                        num(f.share_in_language),
                        f.top_detected.clone().unwrap_or_default(),
                    ]
                }),
            ),
        ));
    }
    if !a.persona_use.is_empty() {
        out.push((
            "persona_use.csv",
            csv_table(
                &[
                    "model",
                    "approach",
                    "country",
                    "tier",
                    "n",
                    "n_mentions",
                    "share_mentions",
                    "n_refusals",
                    "share_refusals",
                    "n_both_sides",
                    "share_both_sides",
                    "n_inconclusive",
                    "share_inconclusive",
                ],
                a.persona_use.iter().map(|p| {
                    vec![
                        p.model.clone(),
                        p.approach.clone(),
                        all(p.country.as_deref()),
                        tier_code(p.tier).to_string(),
                        p.n.to_string(),
                        p.n_mentions.to_string(),
                        num(p.share(p.n_mentions)),
                        p.n_refusals.to_string(),
                        num(p.share(p.n_refusals)),
                        p.n_both_sides.to_string(),
                        num(p.share(p.n_both_sides)),
                        p.n_inconclusive.to_string(),
                        num(p.share(p.n_inconclusive)),
                    ]
                }),
            ),
        ));
    }
    out
}
