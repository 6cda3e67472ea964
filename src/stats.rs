//! Statistics over `results.jsonl`: per-country shares and their correlation with the
//! Hofstede scores, at country and response level, by dimension, approach and tier.

use crate::dimension::{Dimension, Tier};
use crate::results::{self, ResultRow, RESULTS_FILE};
use crate::{Error, Result};
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Pearson's r and its two-sided p-value (t distribution with n - 2 degrees of freedom).
/// None when n < 3 or either variable is constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pearson {
    pub n: usize,
    pub r: f64,
    pub p: f64,
}

pub fn pearson(x: &[f64], y: &[f64]) -> Option<Pearson> {
    assert_eq!(x.len(), y.len());
    let n = x.len();
    if n < 3 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    let r = (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0);
    let df = (n - 2) as f64;
    let p = if r.abs() == 1.0 {
        0.0
    } else {
        let t = r * (df / (1.0 - r * r)).sqrt();
        let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
        2.0 * dist.sf(t.abs())
    };
    Some(Pearson { n, r, p })
}

/// Per country × dimension aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct CountryShare {
    pub model: String,
    pub approach: String,
    pub dimension: Dimension,
    pub country: String,
    pub tier: Tier,
    pub hofstede_score: f64,
    pub high_side: bool,
    pub n: usize,
    /// Share of items whose hard choice is the high side (p_high > 0.5).
    pub share_high: f64,
    pub mean_p_high: f64,
    pub mean_label_mass: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Country,
    Response,
}

impl Level {
    fn code(self) -> &'static str {
        match self {
            Level::Country => "country",
            Level::Response => "response",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    pub model: String,
    pub approach: String,
    pub dimension: Dimension,
    /// None = all tiers.
    pub tier: Option<Tier>,
    pub level: Level,
    pub n: usize,
    pub pearson: Option<Pearson>,
}

type GroupKey = (String, String, Dimension);

fn groups(rows: &[ResultRow]) -> BTreeMap<GroupKey, Vec<&ResultRow>> {
    let mut g: BTreeMap<GroupKey, Vec<&ResultRow>> = BTreeMap::new();
    for r in rows {
        g.entry((r.model.clone(), r.approach.clone(), r.dimension))
            .or_default()
            .push(r);
    }
    g
}

pub fn country_shares(rows: &[ResultRow]) -> Vec<CountryShare> {
    let mut out = Vec::new();
    for ((model, approach, dimension), rs) in groups(rows) {
        let mut by_country: BTreeMap<&str, Vec<&ResultRow>> = BTreeMap::new();
        for r in rs {
            by_country.entry(r.country.as_str()).or_default().push(r);
        }
        for (country, cr) in by_country {
            let n = cr.len();
            let mean =
                |f: &dyn Fn(&ResultRow) -> f64| cr.iter().map(|r| f(r)).sum::<f64>() / n as f64;
            out.push(CountryShare {
                model: model.clone(),
                approach: approach.clone(),
                dimension,
                country: country.to_string(),
                tier: cr[0].tier,
                hofstede_score: cr[0].hofstede_score,
                high_side: cr[0].high_side,
                n,
                share_high: mean(&|r| f64::from(u8::from(r.chose_high()))),
                mean_p_high: mean(&|r| r.p_high),
                mean_label_mass: mean(&|r| (r.label_mass[0] + r.label_mass[1]) / 2.0),
            });
        }
    }
    out
}

pub fn correlations(rows: &[ResultRow], shares: &[CountryShare]) -> Vec<Correlation> {
    let mut out = Vec::new();
    for ((model, approach, dimension), rs) in groups(rows) {
        let tiers = std::iter::once(None).chain(Tier::ALL.into_iter().map(Some));
        for tier in tiers {
            let in_tier = |t: Tier| tier.is_none_or(|want| want == t);
            let cs: Vec<&CountryShare> = shares
                .iter()
                .filter(|s| {
                    s.model == model
                        && s.approach == approach
                        && s.dimension == dimension
                        && in_tier(s.tier)
                })
                .collect();
            let x: Vec<f64> = cs.iter().map(|s| s.share_high).collect();
            let y: Vec<f64> = cs.iter().map(|s| s.hofstede_score).collect();
            out.push(Correlation {
                model: model.clone(),
                approach: approach.clone(),
                dimension,
                tier,
                level: Level::Country,
                n: cs.len(),
                pearson: pearson(&x, &y),
            });
            let resp: Vec<&&ResultRow> = rs.iter().filter(|r| in_tier(r.tier)).collect();
            let x: Vec<f64> = resp
                .iter()
                .map(|r| f64::from(u8::from(r.chose_high())))
                .collect();
            let y: Vec<f64> = resp.iter().map(|r| r.hofstede_score).collect();
            out.push(Correlation {
                model: model.clone(),
                approach: approach.clone(),
                dimension,
                tier,
                level: Level::Response,
                n: resp.len(),
                pearson: pearson(&x, &y),
            });
        }
    }
    out
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "NaN".to_string(), |v| format!("{v}"))
}

fn stars(p: f64) -> &'static str {
    if p < 0.001 {
        "***"
    } else if p < 0.01 {
        "**"
    } else if p < 0.05 {
        "*"
    } else {
        ""
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    // Write then rename, so a reader never sees half a table.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Recompute `DIR/stats/` from `DIR/results.jsonl`. Returns the Markdown summary.
pub fn run(dir: &Path) -> Result<String> {
    let path = dir.join(RESULTS_FILE);
    let rows = results::read(&path)?.rows;
    if rows.is_empty() {
        return Err(Error::bad_input(
            &path,
            0,
            "no results to compute statistics from",
        ));
    }
    let out = dir.join("stats");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let shares = country_shares(&rows);
    let corrs = correlations(&rows, &shares);

    let by_country = csv_table(
        &[
            "model",
            "approach",
            "dimension",
            "country",
            "tier",
            "hofstede_score",
            "high_side",
            "n",
            "share_high",
            "mean_p_high",
            "mean_label_mass",
        ],
        shares.iter().map(|s| {
            vec![
                s.model.clone(),
                s.approach.clone(),
                s.dimension.to_string(),
                s.country.clone(),
                s.tier.to_string(),
                s.hofstede_score.to_string(),
                s.high_side.to_string(),
                s.n.to_string(),
                s.share_high.to_string(),
                s.mean_p_high.to_string(),
                s.mean_label_mass.to_string(),
            ]
        }),
    );
    write_file(&out.join("by_country.csv"), &by_country)?;
    let correlations = csv_table(
        &[
            "model",
            "approach",
            "dimension",
            "tier",
            "level",
            "n",
            "pearson_r",
            "pearson_p",
        ],
        corrs.iter().map(|c| {
            vec![
                c.model.clone(),
                c.approach.clone(),
                c.dimension.to_string(),
                c.tier.map_or("all", Tier::code).to_string(),
                c.level.code().to_string(),
                c.n.to_string(),
                num(c.pearson.map(|p| p.r)),
                num(c.pearson.map(|p| p.p)),
            ]
        }),
    );
    write_file(&out.join("correlations.csv"), &correlations)?;

    let md = summary(&rows, &shares, &corrs);
    write_file(&out.join("summary.md"), &md)?;
    Ok(md)
}

fn csv_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
    for row in rows {
        w.write_record(&row).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 fields")
}

fn summary(rows: &[ResultRow], shares: &[CountryShare], corrs: &[Correlation]) -> String {
    let mut md = String::new();
    let models: Vec<&str> = {
        let mut m: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
        m.sort();
        m.dedup();
        m
    };
    for model in models {
        writeln!(md, "## {model}\n").unwrap();
        writeln!(
            md,
            "Correlation of the share of high-side answers with the Hofstede score \
             (country level: one point per country; response level: point-biserial over answers). \
             Stars: * p<0.05, ** p<0.01, *** p<0.001.\n"
        )
        .unwrap();
        writeln!(
            md,
            "| approach | dim | countries | r (all) | r (high) | r (mid) | r (low) | responses | r (response) | high-side share |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|---|---|---|").unwrap();
        let cell = |c: Option<&Correlation>| match c.and_then(|c| c.pearson) {
            Some(p) => format!("{:+.2}{} (n={})", p.r, stars(p.p), p.n),
            None => format!("– (n={})", c.map_or(0, |c| c.n)),
        };
        let mut keys: Vec<(&str, Dimension)> = corrs
            .iter()
            .filter(|c| c.model == model)
            .map(|c| (c.approach.as_str(), c.dimension))
            .collect();
        keys.dedup();
        for (approach, dim) in keys {
            let find = |tier: Option<Tier>, level: Level| {
                corrs.iter().find(|c| {
                    c.model == model
                        && c.approach == approach
                        && c.dimension == dim
                        && c.tier == tier
                        && c.level == level
                })
            };
            let resp = find(None, Level::Response);
            let dim_rows: Vec<&ResultRow> = rows
                .iter()
                .filter(|r| r.model == model && r.approach == approach && r.dimension == dim)
                .collect();
            let share = dim_rows.iter().filter(|r| r.chose_high()).count() as f64
                / dim_rows.len().max(1) as f64;
            let n_countries = shares
                .iter()
                .filter(|s| s.model == model && s.approach == approach && s.dimension == dim)
                .count();
            writeln!(
                md,
                "| {approach} | {dim} | {n_countries} | {} | {} | {} | {} | {} | {} | {:.0}% |",
                cell(find(None, Level::Country)),
                cell(find(Some(Tier::High), Level::Country)),
                cell(find(Some(Tier::Mid), Level::Country)),
                cell(find(Some(Tier::Low), Level::Country)),
                resp.map_or(0, |c| c.n),
                cell(resp),
                share * 100.0
            )
            .unwrap();
        }
        let masses: Vec<f64> = rows
            .iter()
            .filter(|r| r.model == model)
            .flat_map(|r| r.label_mass)
            .collect();
        let flips = rows
            .iter()
            .filter(|r| r.model == model)
            .filter(|r| (r.p_high_by_order[0] > 0.5) != (r.p_high_by_order[1] > 0.5))
            .count();
        let n = rows.iter().filter(|r| r.model == model).count();
        writeln!(
            md,
            "\nMean label mass {:.3}; answers that flip with option order: {:.0}% of {n}.\n",
            masses.iter().sum::<f64>() / masses.len().max(1) as f64,
            100.0 * flips as f64 / n.max(1) as f64
        )
        .unwrap();
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_matches_scipy() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0];
        // scipy.stats.pearsonr(x, y): statistic 0.8285714285714286, pvalue 0.04156268221574347
        let p = pearson(&x, &y).unwrap();
        assert!((p.r - 0.828_571_428_571_428_6).abs() < 1e-12, "{}", p.r);
        assert!((p.p - 0.041_562_682_215_743_47).abs() < 1e-12, "{}", p.p);
        assert!(pearson(&x[..2], &y[..2]).is_none());
        assert!(pearson(&x, &[1.0; 6]).is_none());
        let perfect = pearson(&x, &x).unwrap();
        assert_eq!((perfect.r, perfect.p), (1.0, 0.0));
    }
}
