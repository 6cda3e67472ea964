//! summary.md: per model the paper's tables and ours, then the sections comparing approaches,
//! orders, personas against the control, translations and replies.

use super::analysis::{Analysis, CorrelationRow, Level};
use super::format::{fmt_opt, pct, tier_code};
use super::shares::{tiers, MULTILINGUAL, PERSONAS};
use super::{persona_effect, position, replies, stars};
use crate::dimension::{Dimension, Tier};
use std::fmt::Write as _;

/// `r` with stars from the correct p, "–" when undefined.
fn r_cell(c: Option<&CorrelationRow>) -> String {
    match c.and_then(|c| c.pearson) {
        Some(p) => format!("{:+.2}{} (n={})", p.r, stars(p.p), p.n),
        None => format!("– (n={})", c.map_or(0, |c| c.n)),
    }
}

/// The Markdown summary: per model, the paper's tables and ours.
pub fn summary(a: &Analysis) -> String {
    let mut md = String::new();
    position::banners(&a.diagnostics, &mut md);
    if a.models().len() > 1 {
        writeln!(
            md,
            "## Models compared\n\nCountry-level Pearson r (all tiers) with the Hofstede score.\n"
        )
        .unwrap();
        writeln!(md, "| model | approach | idv | mas | uai | pdi | lto |").unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|").unwrap();
        for model in a.models() {
            let mut approaches: Vec<&str> = a.groups_of(model).iter().map(|g| g.0).collect();
            approaches.dedup();
            for approach in approaches {
                let cells: Vec<String> = Dimension::ALL
                    .iter()
                    .map(
                        |&d| match a.correlation((model, approach, d), None, Level::Country) {
                            Some(c) => r_cell(Some(c)),
                            None => String::new(),
                        },
                    )
                    .collect();
                writeln!(md, "| {model} | {approach} | {} |", cells.join(" | ")).unwrap();
            }
        }
        writeln!(md).unwrap();
    }
    for model in a.models() {
        writeln!(md, "## {model}\n").unwrap();
        writeln!(
            md,
            "Correlation of the share of high-side answers with the Hofstede score. Country \
             level: one point per country, Pearson r with stars from the correct p \
             (n = countries), \"paper stars\" from the paper's p (n = answers); 95% CIs by \
             Fisher z and by a seeded bootstrap over countries ({} resamples, seed {}). \
             Response level: point-biserial over decided answers. \
             Stars: * p<0.05, ** p<0.01, *** p<0.001.\n",
            a.options.resamples, a.options.seed
        )
        .unwrap();
        writeln!(
            md,
            "| approach | dim | r (all) | paper stars | Fisher CI | bootstrap CI | rho | r (high) | r (mid) | r (low) | r (response) | p BH | high-side share |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
        let ci = |c: Option<(f64, f64)>| {
            c.map_or_else(|| "–".to_string(), |(l, h)| format!("[{l:+.2}, {h:+.2}]"))
        };
        for (approach, dim) in a.groups_of(model) {
            let key = (model, approach, dim);
            let all = a.correlation(key, None, Level::Country);
            let diag = a
                .diagnostics
                .iter()
                .find(|d| d.model == model && d.approach == approach && d.dimension == Some(dim));
            writeln!(
                md,
                "| {approach} | {dim} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r_cell(all),
                all.and_then(|c| c.pearson_p_paper).map_or("", stars),
                ci(all.and_then(|c| c.pearson_ci)),
                ci(a.bootstrap_of(key).and_then(|b| b.ci.pearson)),
                all.and_then(|c| c.spearman)
                    .map_or_else(|| "–".to_string(), |s| format!("{:+.2}{}", s.r, stars(s.p))),
                r_cell(a.correlation(key, Some(Tier::High), Level::Country)),
                r_cell(a.correlation(key, Some(Tier::Mid), Level::Country)),
                r_cell(a.correlation(key, Some(Tier::Low), Level::Country)),
                r_cell(a.correlation(key, None, Level::Response)),
                fmt_opt(all.and_then(|c| c.p_bh), 3),
                pct(diag.map(|d| d.diagnostics.share_high)),
            )
            .unwrap();
        }

        writeln!(
            md,
            "\nClassification of countries by side (score > 50) from their high-side share:\n"
        )
        .unwrap();
        writeln!(
            md,
            "| approach | dim | countries (high side) | accuracy at 0.5 | best accuracy (threshold) | ROC AUC |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|").unwrap();
        for (approach, dim) in a.groups_of(model) {
            if let Some(s) = a.classification_of((model, approach, dim)) {
                writeln!(
                    md,
                    "| {approach} | {dim} | {} ({}) | {} | {} ({:.2}) | {} |",
                    s.n,
                    s.n_high_side,
                    pct(Some(s.accuracy_at_half)),
                    pct(Some(s.best_accuracy)),
                    s.best_threshold,
                    fmt_opt(s.roc_auc, 2)
                )
                .unwrap();
            }
        }

        writeln!(md, "\nDiagnostics:\n").unwrap();
        writeln!(
            md,
            "| approach | dim | answers | inconclusive | label mass | position bias | first option | flips with order | high-side share | decided high-side share | mean p_high |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
        for d in a.diagnostics.iter().filter(|d| d.model == model) {
            let g = &d.diagnostics;
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                d.approach,
                d.dimension.map_or("all", Dimension::code),
                g.n,
                g.n_inconclusive,
                fmt_opt(g.mean_label_mass, 3),
                fmt_opt(g.position_bias, 3),
                pct(g.share_first_option),
                pct(g.order_flip_share),
                pct(Some(g.share_high)),
                pct(g.share_high_decided),
                fmt_opt(g.mean_p_high, 3),
            )
            .unwrap();
        }
        writeln!(md).unwrap();
    }
    approaches_compared(a, &mut md);
    orders_agree_summary(a, &mut md);
    persona_effect::summary(&a.persona_effect, a.options, &mut md);
    translation_summary(a, &mut md);
    replies::summary(&a.agreement, &a.language_fidelity, &a.persona_use, &mut md);
    md
}

/// Country-level r, all tiers, of a correlations table.
fn r_of(rows: &[CorrelationRow], key: (&str, &str, Dimension), level: Level) -> String {
    rows.iter()
        .find(|c| {
            c.model == key.0
                && c.approach == key.1
                && c.dimension == key.2
                && c.tier.is_none()
                && c.level == level
        })
        .map_or_else(|| "–".to_string(), |c| r_cell(Some(c)))
}

/// Personas vs multilingual per dimension, for the models run with both.
fn approaches_compared(a: &Analysis, md: &mut String) {
    let models: Vec<&str> = a
        .models()
        .into_iter()
        .filter(|m| {
            let g = a.groups_of(m);
            [PERSONAS, MULTILINGUAL]
                .iter()
                .all(|ap| g.iter().any(|(x, _)| x == ap))
        })
        .collect();
    if models.is_empty() {
        return;
    }
    writeln!(
        md,
        "## Personas vs multilingual\n\nPearson r with the Hofstede score, all tiers: country \
         level, then response level; \"without low BLEU\" leaves out the multilingual answers \
         whose translated request is below the run's round-trip BLEU threshold \
         (correlations_bleu_ok.csv).\n"
    )
    .unwrap();
    writeln!(
        md,
        "| model | dim | personas r | multilingual r | multilingual r without low BLEU | personas r (response) | multilingual r (response) | multilingual r (response) without low BLEU |"
    )
    .unwrap();
    writeln!(md, "|---|---|---|---|---|---|---|---|").unwrap();
    for model in models {
        for dim in Dimension::ALL {
            let (p, m) = ((model, PERSONAS, dim), (model, MULTILINGUAL, dim));
            if !a.groups_of(model).iter().any(|g| g.1 == dim) {
                continue;
            }
            writeln!(
                md,
                "| {model} | {dim} | {} | {} | {} | {} | {} | {} |",
                r_of(&a.correlations, p, Level::Country),
                r_of(&a.correlations, m, Level::Country),
                r_of(&a.correlations_bleu_ok, m, Level::Country),
                r_of(&a.correlations, p, Level::Response),
                r_of(&a.correlations, m, Level::Response),
                r_of(&a.correlations_bleu_ok, m, Level::Response),
            )
            .unwrap();
        }
    }
    writeln!(md).unwrap();
}

/// Round-trip BLEU per language, country and tier, and the correlations without low-BLEU
/// answers.
fn translation_summary(a: &Analysis, md: &mut String) {
    if a.translation_quality.is_empty() {
        return;
    }
    writeln!(
        md,
        "## Translation quality\n\nRound-trip BLEU (0–1: sentence BLEU of the back-translation \
         against the English request) of the translated requests the answers were asked with, \
         per language and country, then per resource tier. \"Below threshold\" counts the \
         answers the run flagged `low_bleu` (its manifest's settings.bleu_threshold, 0.2 by \
         default), as a share of the answers with a BLEU. English has no translation and no \
         BLEU. Tables: translation_quality.csv, correlations_bleu_ok.csv.\n"
    )
    .unwrap();
    writeln!(
        md,
        "| model | approach | lang | country | tier | answers | with BLEU | mean BLEU | below threshold |"
    )
    .unwrap();
    writeln!(md, "|---|---|---|---|---|---|---|---|---|").unwrap();
    for q in &a.translation_quality {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) |",
            q.model,
            q.approach,
            q.lang.as_deref().unwrap_or("all"),
            q.country.as_deref().unwrap_or("all"),
            tier_code(q.tier),
            q.rows,
            q.rows_with_bleu,
            fmt_opt(q.mean_bleu, 3),
            q.low_bleu_rows,
            pct(q.low_bleu_share),
        )
        .unwrap();
    }
    if !a.cache_quality.is_empty() {
        writeln!(
            md,
            "\nThe translation caches' own figures (their manifest.json): corpus BLEU and chrF \
             (0–1) over every cached text of the language — requests, actions and \
             instructions — and the texts below the cache's threshold.\n"
        )
        .unwrap();
        writeln!(
            md,
            "| model | approach | lang | cache | texts | corpus BLEU | corpus chrF | mean sentence BLEU | below threshold |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|---|---|").unwrap();
        for c in &a.cache_quality {
            let l = &c.summary;
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.model,
                c.approach,
                c.lang,
                c.cache,
                l.rows,
                fmt_opt(l.corpus_bleu, 3),
                fmt_opt(l.corpus_chrf, 3),
                fmt_opt(l.mean_sentence_bleu, 3),
                l.low_bleu_rows,
            )
            .unwrap();
        }
    }
    if !a.correlations_bleu_ok.is_empty() {
        writeln!(
            md,
            "\nCountry-level Pearson r with and without the low-BLEU answers, by tier:\n"
        )
        .unwrap();
        writeln!(
            md,
            "| model | approach | dim | r (all) | without low BLEU | r (high) | without | r (mid) | without | r (low) | without |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|").unwrap();
        let mut keys: Vec<(&str, &str, Dimension)> = a
            .correlations_bleu_ok
            .iter()
            .map(|c| (c.model.as_str(), c.approach.as_str(), c.dimension))
            .collect();
        keys.dedup();
        for key in keys {
            let cell = |rows: &[CorrelationRow], tier: Option<Tier>| {
                r_cell(rows.iter().find(|c| {
                    (c.model.as_str(), c.approach.as_str(), c.dimension) == key
                        && c.tier == tier
                        && c.level == Level::Country
                }))
            };
            let cells: Vec<String> = tiers()
                .flat_map(|t| [cell(&a.correlations, t), cell(&a.correlations_bleu_ok, t)])
                .collect();
            writeln!(
                md,
                "| {} | {} | {} | {} |",
                key.0,
                key.1,
                key.2,
                cells.join(" | ")
            )
            .unwrap();
        }
    }
    writeln!(md).unwrap();
}

/// The correlations of the answers whose two option orders agree, beside all answers'.
fn orders_agree_summary(a: &Analysis, md: &mut String) {
    if !a
        .diagnostics
        .iter()
        .any(|d| d.diagnostics.order_flip_share.is_some() && d.approach != persona_effect::CONTROL)
    {
        return;
    }
    writeln!(
        md,
        "## Answers where both option orders agree\n\nThe answers whose choice stays the same \
         when the two options swap places, analysed on their own: what is left when position \
         is taken out (correlations_orders_agree.csv). Pearson r with the Hofstede score, all \
         tiers.\n"
    )
    .unwrap();
    writeln!(
        md,
        "| model | approach | dim | answers agreeing | r (all answers) | r (agreeing) | r response (all) | r response (agreeing) |"
    )
    .unwrap();
    writeln!(md, "|---|---|---|---|---|---|---|---|").unwrap();
    for d in a.diagnostics.iter() {
        let Some(dim) = d.dimension else { continue };
        let key = (d.model.as_str(), d.approach.as_str(), dim);
        let agreeing = a.correlations_orders_agree.iter().find(|c| {
            (c.model.as_str(), c.approach.as_str(), c.dimension) == key
                && c.tier.is_none()
                && c.level == Level::Response
        });
        // Groups with orders (logits rows) only; the control run has no correlation.
        let Some(flips) = d.diagnostics.order_flip_share else {
            continue;
        };
        if d.approach == persona_effect::CONTROL {
            continue;
        }
        writeln!(
            md,
            "| {} | {} | {} | {} of {} ({}) | {} | {} | {} | {} |",
            key.0,
            key.1,
            dim,
            agreeing.map_or(0, |c| c.n),
            d.diagnostics.n,
            pct(Some(1.0 - flips)),
            r_of(&a.correlations, key, Level::Country),
            r_of(&a.correlations_orders_agree, key, Level::Country),
            r_of(&a.correlations, key, Level::Response),
            r_of(&a.correlations_orders_agree, key, Level::Response),
        )
        .unwrap();
    }
    writeln!(md).unwrap();
}
