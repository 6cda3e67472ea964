//! Statistics over `results.jsonl`, usable as a library on its own: per-country shares of
//! high-side answers and their correlation with the Hofstede scores (country and response
//! level, by tier), classification of countries by side, and per-model diagnostics. Every
//! table is keyed by model × approach × dimension, whatever produced the rows (logits,
//! imported, generated; personas or multilingual).
//!
//! Here is the entry point (`run`, `run_with`: load, analyse, write `DIR/stats/`). `load`
//! reads the rows, `shares` and `analysis` compute, `tables` (CSV, through `format`) and
//! `summary` (summary.md) write; the other modules are the statistics and sections they use.
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

pub mod analysis;
pub mod classification;
pub mod correlation;
pub mod diagnostics;
pub mod format;
pub mod kendall;
pub mod load;
pub mod options;
pub mod persona_effect;
pub mod position;
pub mod replies;
pub mod shares;
pub mod summary;
pub mod tables;
pub mod translation;

pub use analysis::{analyze, Analysis, BootstrapRow, ClassificationRow, CorrelationRow, Level};
pub use classification::{separation, Separation};
pub use correlation::{
    benjamini_hochberg, bootstrap_ci, fisher_ci, pearson, spearman, stars, two_sided_p,
    BootstrapCi, Correlation,
};
pub use diagnostics::{diagnostics, Diagnostics, DiagnosticsRow};
pub use load::{load, results_files};
pub use options::{Options, CONFIDENCE};
pub use shares::{
    analysis_model, country_shares, keyed_by_analysis_model, CountryShare, GroupKey, MULTILINGUAL,
    PERSONAS,
};
pub use summary::summary;
pub use tables::tables;
pub use translation::{cache_quality, translation_quality, CacheQuality, TranslationQuality};

use crate::{Error, Result};
use std::path::Path;

/// Where the tables go, inside the folder analysed.
pub const STATS_DIR: &str = "stats";

/// Recompute `DIR/stats/` from the results under DIR with the default options. Returns the
/// Markdown summary.
pub fn run(dir: &Path) -> Result<String> {
    run_with(dir, Options::default()).map(|(_, md)| md)
}

/// `run` with `options`; returns the analysis beside the summary.
pub fn run_with(dir: &Path, options: Options) -> Result<(Analysis, String)> {
    let rows = load(dir)?;
    let mut analysis = analyze(&rows, options);
    analysis.cache_quality = cache_quality(dir, &analysis.translation_quality)?;
    let out = dir.join(STATS_DIR);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let md = summary(&analysis);
    write_tables(&analysis, &out)?;
    write_file(&out.join("summary.md"), &md)?;
    Ok((analysis, md))
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    // A reader never sees half a table.
    crate::files::write_atomic(path, text.as_bytes())
}

/// Write every CSV table of `a` into `out`, removing the optional ones it has no rows for.
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
