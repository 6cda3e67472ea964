//! The analysis input: which model a row counts for (`analysis_model`), the groups of rows
//! (model × approach × dimension) and each country's share of high-side answers.

use crate::dimension::{Dimension, Tier};
use crate::results::{self, ResultRow};
use std::collections::BTreeMap;

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

/// The approach codes the analysis treats apart (the control's is `persona_effect::CONTROL`).
pub const PERSONAS: &str = "personas";
pub const MULTILINGUAL: &str = "multilingual";

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

pub(crate) fn groups(rows: &[ResultRow]) -> BTreeMap<GroupKey, Vec<&ResultRow>> {
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

pub(crate) fn tiers() -> impl Iterator<Item = Option<Tier>> {
    std::iter::once(None).chain(Tier::ALL.into_iter().map(Some))
}
