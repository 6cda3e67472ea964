//! Statistics over `results.jsonl`, usable as a library on its own: per-country shares of
//! high-side answers and their correlation with the Hofstede scores (country and response
//! level, by tier), classification of countries by side, and per-model diagnostics. Every
//! table is keyed by model × approach × dimension, whatever produced the rows (logits,
//! imported, generated; personas or multilingual).
//!
//! Definitions (the paper's, and where we are stricter):
//! - An answer is high-side when p_high > 0.5, low-side otherwise; p_high = null is an
//!   inconclusive answer.
//! - `share_high` counts inconclusive answers in its denominator (the paper's Table 2 figure);
//!   `share_high_decided` leaves them out.
//! - Country level: Pearson/Spearman of `share_high` against the score over countries;
//!   `pearson_p` uses n = countries, `pearson_p_paper` the paper's n = answers of those countries.
//! - Response level: each decided answer's 0/1 choice against its country's score
//!   (point-biserial); inconclusive answers are left out.
//! - Multilingual rows carry the request's round-trip BLEU and the run's `low_bleu` flag:
//!   `translation_quality.csv` summarises them per language, country and tier, and
//!   `correlations_bleu_ok.csv` repeats the correlations of those groups without the flagged
//!   answers (a separate file, so correlations.csv keeps its rows).
//! - Rows of a free-text mode (`generate`) are keyed as model `<model>/<mode>` in every table
//!   (`analysis_model`), so a logits run and a generate run of one model in one folder are two
//!   rows of each table, never pooled into one correlation, and the tables keep their columns.
//!   `agreement.csv` pairs them item by item; `language_fidelity.csv` and `persona_use.csv`
//!   describe the replies (generate and imported rows).

pub mod classification;
pub mod correlation;
pub mod diagnostics;
pub mod kendall;
pub mod persona_effect;
pub mod position;
pub mod replies;
pub mod translation;

use crate::dimension::{Dimension, Tier};
use crate::results::{self, ResultRow, RESULTS_FILE};
use crate::{Error, Result};
pub use classification::{separation, Separation};
pub use correlation::{
    benjamini_hochberg, bootstrap_ci, fisher_ci, pearson, spearman, stars, two_sided_p,
    BootstrapCi, Correlation,
};
pub use diagnostics::{diagnostics, Diagnostics};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
pub use translation::{cache_quality, translation_quality, CacheQuality, TranslationQuality};

/// Where the tables go, inside the folder analysed.
pub const STATS_DIR: &str = "stats";
pub const CONFIDENCE: f64 = 0.95;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Seed of the bootstrap over countries.
    pub seed: u64,
    /// Bootstrap resamples per country-level correlation.
    pub resamples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 20240614,
            resamples: 2000,
        }
    }
}

/// The model name the tables key a row by: the model for logits and imported rows (an
/// import is named by its own `--model`), `<model>/<mode>` for any other mode (generate), so
/// that two ways of asking one model stay apart.
pub fn analysis_model(r: &ResultRow) -> String {
    if r.mode == results::MODE_LOGITS || r.mode == results::MODE_IMPORTED {
        r.model.clone()
    } else {
        format!("{}/{}", r.model, r.mode)
    }
}

/// Rows with `model` replaced by `analysis_model`.
pub fn keyed_by_analysis_model(rows: &[ResultRow]) -> Vec<ResultRow> {
    rows.iter()
        .map(|r| ResultRow {
            model: analysis_model(r),
            ..r.clone()
        })
        .collect()
}

/// model, approach, dimension.
pub type GroupKey = (String, String, Dimension);

/// Per country × dimension × approach × model.
#[derive(Debug, Clone, PartialEq)]
pub struct CountryShare {
    pub model: String,
    pub approach: String,
    pub dimension: Dimension,
    pub country: String,
    pub language: String,
    pub tier: Tier,
    pub hofstede_score: f64,
    pub high_side: bool,
    /// All answers, inconclusive included.
    pub n: usize,
    pub n_high: usize,
    pub n_low: usize,
    pub n_inconclusive: usize,
    /// n_high / n (the paper's share).
    pub share_high: f64,
    /// n_high / (n_high + n_low).
    pub share_high_decided: Option<f64>,
    /// Mean p_high over decided answers (the soft share).
    pub mean_p_high: Option<f64>,
    pub mean_label_mass: Option<f64>,
}

impl CountryShare {
    /// The share a perfectly culture-following model would give: 1 on the high side, 0 below.
    pub fn expected_share(&self) -> f64 {
        f64::from(u8::from(self.high_side))
    }
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticsRow {
    pub model: String,
    pub approach: String,
    /// None = all dimensions.
    pub dimension: Option<Dimension>,
    pub diagnostics: Diagnostics,
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

fn tier_code(tier: Option<Tier>) -> &'static str {
    tier.map_or("all", Tier::code)
}

fn groups(rows: &[ResultRow]) -> BTreeMap<GroupKey, Vec<&ResultRow>> {
    let mut g: BTreeMap<GroupKey, Vec<&ResultRow>> = BTreeMap::new();
    for r in rows {
        g.entry((r.model.clone(), r.approach.clone(), r.dimension))
            .or_default()
            .push(r);
    }
    g
}

fn country_share(key: &GroupKey, country: &str, rows: &[&ResultRow]) -> CountryShare {
    let n = rows.len();
    let decided: Vec<f64> = rows.iter().filter_map(|r| r.p_high).collect();
    let n_high = decided.iter().filter(|&&p| p > 0.5).count();
    let masses: Vec<f64> = rows.iter().filter_map(|r| r.label_mass).flatten().collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    CountryShare {
        model: key.0.clone(),
        approach: key.1.clone(),
        dimension: key.2,
        country: country.to_string(),
        language: rows[0].language.clone(),
        tier: rows[0].tier,
        hofstede_score: rows[0].hofstede_score,
        high_side: rows[0].high_side,
        n,
        n_high,
        n_low: decided.len() - n_high,
        n_inconclusive: n - decided.len(),
        share_high: n_high as f64 / n as f64,
        share_high_decided: (!decided.is_empty()).then(|| n_high as f64 / decided.len() as f64),
        mean_p_high: mean(&decided),
        mean_label_mass: mean(&masses),
    }
}

pub fn country_shares(rows: &[ResultRow]) -> Vec<CountryShare> {
    let mut out = Vec::new();
    for (key, rs) in groups(rows) {
        // Countries in first-seen order, as the run wrote them (the country table's order).
        let mut by_country: Vec<(&str, Vec<&ResultRow>)> = Vec::new();
        for r in rs {
            match by_country.iter_mut().find(|(c, _)| *c == r.country) {
                Some((_, v)) => v.push(r),
                None => by_country.push((r.country.as_str(), vec![r])),
            }
        }
        for (country, cr) in by_country {
            out.push(country_share(&key, country, &cr));
        }
    }
    out
}

fn tiers() -> impl Iterator<Item = Option<Tier>> {
    std::iter::once(None).chain(Tier::ALL.into_iter().map(Some))
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

/// The results files under `dir`: its own `results.jsonl`, or else those of the run folders
/// directly inside it (one per model, say), in name order.
pub fn results_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let own = dir.join(RESULTS_FILE);
    if own.is_file() {
        return Ok(vec![own]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let candidate = entry.path().join(RESULTS_FILE);
        if candidate.is_file() {
            files.push(candidate);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::bad_input(
            dir,
            0,
            format!("no {RESULTS_FILE} in this folder or in the folders directly inside it"),
        ));
    }
    Ok(files)
}

/// Read every row under `dir` (see `results_files`). The same row twice, in one file or in
/// two, is an error: it would be counted twice.
pub fn load(dir: &Path) -> Result<Vec<ResultRow>> {
    let mut rows = Vec::new();
    let mut seen: HashMap<results::RowKey, usize> = HashMap::new();
    let files = results_files(dir)?;
    for (i, path) in files.iter().enumerate() {
        let file_rows = results::read(path)?.rows;
        for r in &file_rows {
            if let Some(&other) = seen.get(&r.key()) {
                let place = match other == i {
                    true => "twice in this file".to_string(),
                    false => format!("also in {}", files[other].display()),
                };
                return Err(Error::bad_input(
                    path,
                    0,
                    format!(
                        "row {}/{}/{}/{}/{}{} is {place}",
                        r.model,
                        r.approach,
                        r.dimension,
                        r.country,
                        r.prompt_id,
                        r.round.map_or(String::new(), |k| format!(" round {k}")),
                    ),
                ));
            }
            seen.insert(r.key(), i);
        }
        rows.extend(file_rows);
    }
    if rows.is_empty() {
        return Err(Error::bad_input(
            &files[0],
            0,
            "no results to compute statistics from",
        ));
    }
    Ok(rows)
}

/// Recompute `DIR/stats/` from the results under DIR with the default options. Returns the
/// Markdown summary.
pub fn run(dir: &Path) -> Result<String> {
    run_with(dir, Options::default()).map(|(_, md)| md)
}

pub fn run_with(dir: &Path, options: Options) -> Result<(Analysis, String)> {
    let rows = load(dir)?;
    let mut analysis = analyze(&rows, options);
    analysis.cache_quality = cache_quality(dir, &analysis.translation_quality);
    let out = dir.join(STATS_DIR);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let md = summary(&analysis);
    write_tables(&analysis, &out)?;
    write_file(&out.join("summary.md"), &md)?;
    Ok((analysis, md))
}

pub(crate) fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "NaN".to_string(), |v| format!("{v}"))
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    // A reader never sees half a table.
    crate::files::write_atomic(path, text.as_bytes())
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

pub fn write_tables(a: &Analysis, out: &Path) -> Result<()> {
    let tables = tables(a);
    for (name, text) in &tables {
        write_file(&out.join(name), text)?;
    }
    // A table this analysis has no rows for must not survive from an earlier one.
    for name in [
        "translation_quality.csv",
        "correlations_bleu_ok.csv",
        "agreement.csv",
        "language_fidelity.csv",
        "persona_use.csv",
        "correlations_orders_agree.csv",
        "persona_effect.csv",
        "persona_effect_by_dimension.csv",
    ] {
        let path = out.join(name);
        if !tables.iter().any(|(n, _)| *n == name) && path.exists() {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

pub(crate) fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{:.0}%", v * 100.0))
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

    fn classification_of(&self, key: (&str, &str, Dimension)) -> Option<&Separation> {
        self.classification
            .iter()
            .find(|c| c.model == key.0 && c.approach == key.1 && c.dimension == key.2)
            .map(|c| &c.separation)
    }
}

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
    replies::summary(a, &mut md);
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

pub const PERSONAS: &str = "personas";
pub const MULTILINGUAL: &str = "multilingual";

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
