//! The 36 countries of the benchmark: persona names, languages, resource tiers and their
//! Hofstede scores (`prompts/countries.csv`, embedded in the binary).

use crate::dimension::{Dimension, Tier};
use crate::{Error, Result};
use std::path::Path;

/// The built-in country table, from `prompts/countries.csv`.
pub const BUILTIN_CSV: &str = include_str!("../prompts/countries.csv");
const BUILTIN_NAME: &str = "prompts/countries.csv";

#[derive(Debug, Clone, PartialEq)]
pub struct Country {
    /// Short name used in results and on the command line, e.g. "South Korea".
    pub name: String,
    /// The name put into the persona sentence, e.g. "The United States".
    pub persona_name: String,
    pub language: String,
    pub nllb_code: String,
    pub iso639_1: String,
    pub tier: Tier,
    /// Hofstede scores in `Dimension::ALL` order.
    pub scores: [f64; 5],
}

impl Country {
    pub fn score(&self, dim: Dimension) -> f64 {
        self.scores[dim.index()]
    }

    /// The paper's rule: a country is on the high side of a dimension when its score is above 50.
    pub fn high_side(&self, dim: Dimension) -> bool {
        self.score(dim) > 50.0
    }
}

const COLUMNS: [&str; 11] = [
    "country",
    "persona_name",
    "language",
    "nllb_code",
    "iso639_1",
    "resource_tier",
    "idv",
    "mas",
    "uai",
    "pdi",
    "lto",
];

/// Parse a country table; `source` names the file in error messages.
pub fn parse(text: &str, source: &Path) -> Result<Vec<Country>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| Error::bad_input_from(source, 1, "unreadable CSV header", e))?
        .clone();
    let col = |name: &str| -> Result<usize> {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| Error::bad_input(source, 1, format!("missing column {name:?}")))
    };
    let idx: Vec<usize> = COLUMNS.iter().map(|c| col(c)).collect::<Result<_>>()?;
    let mut out: Vec<Country> = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::bad_input_from(source, line, "malformed CSV row", e)
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let field = |i: usize| rec.get(idx[i]).unwrap_or("").to_string();
        let mut scores = [0.0; 5];
        for (k, s) in scores.iter_mut().enumerate() {
            let raw = field(6 + k);
            *s = raw
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=120.0).contains(v))
                .ok_or_else(|| {
                    Error::bad_input(
                        source,
                        line,
                        format!(
                            "{}: expected a score between 0 and 120, got {raw:?}",
                            COLUMNS[6 + k]
                        ),
                    )
                })?;
        }
        let tier = field(5)
            .parse::<Tier>()
            .map_err(|e| Error::bad_input(source, line, e))?;
        let name = field(0);
        if name.is_empty() {
            return Err(Error::bad_input(source, line, "empty country name"));
        }
        if out.iter().any(|c| c.name.eq_ignore_ascii_case(&name)) {
            return Err(Error::bad_input(
                source,
                line,
                format!("duplicate country {name:?}"),
            ));
        }
        out.push(Country {
            persona_name: Some(field(1))
                .filter(|p| !p.is_empty())
                .unwrap_or(name.clone()),
            name,
            language: field(2),
            nllb_code: field(3),
            iso639_1: field(4),
            tier,
            scores,
        });
    }
    if out.is_empty() {
        return Err(Error::bad_input(source, 0, "no countries"));
    }
    Ok(out)
}

/// The country of the control condition's rows (`run --approach control`).
pub const CONTROL_COUNTRY: &str = "none";

/// The control condition's stand-in for a country: no persona (an empty persona name leaves
/// the persona sentence out of the prompt), English, tier `none`, and the scale's midpoint as
/// its scores (so on no dimension's high side); the rows' score is not used by any statistic.
pub fn control() -> Country {
    Country {
        name: CONTROL_COUNTRY.into(),
        persona_name: String::new(),
        language: "English".into(),
        nllb_code: "eng_Latn".into(),
        iso639_1: "en".into(),
        tier: Tier::None,
        scores: [50.0; 5],
    }
}

/// The countries a recorded run asked with (`settings.countries` of its manifest).
pub fn recorded(approach: &str, names: &[String]) -> Result<Vec<Country>> {
    if approach == crate::stats::persona_effect::CONTROL {
        return Ok(vec![control()]);
    }
    select(&builtin(), &names.join(","))
}

pub fn builtin() -> Vec<Country> {
    parse(BUILTIN_CSV, Path::new(BUILTIN_NAME)).expect("the embedded countries.csv is valid")
}

/// Select countries by a comma-separated list of names (country or persona name, any case);
/// "all" or empty selects every country, in table order.
pub fn select(all: &[Country], list: &str) -> Result<Vec<Country>> {
    let list = list.trim();
    if list.is_empty() || list.eq_ignore_ascii_case("all") {
        return Ok(all.to_vec());
    }
    let mut out: Vec<Country> = Vec::new();
    for want in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let found = all
            .iter()
            .find(|c| {
                c.name.eq_ignore_ascii_case(want) || c.persona_name.eq_ignore_ascii_case(want)
            })
            .ok_or_else(|| Error::UnknownCountry {
                name: want.to_string(),
                known: all
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        if !out.iter().any(|c| c.name == found.name) {
            out.push(found.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_has_36_countries_in_three_tiers() {
        let all = builtin();
        assert_eq!(all.len(), 36);
        for tier in Tier::ALL {
            assert_eq!(all.iter().filter(|c| c.tier == tier).count(), 12, "{tier}");
        }
        let us = &all[0];
        assert_eq!(us.persona_name, "The United States");
        assert!(us.high_side(Dimension::Idv));
        assert!(!us.high_side(Dimension::Lto), "LTO 50 is not above 50");
    }

    #[test]
    fn select_is_case_insensitive_and_names_unknown_countries() {
        let all = builtin();
        let sel = select(&all, "japan, The Netherlands").unwrap();
        assert_eq!(
            sel.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["Japan", "Netherlands"]
        );
        let err = select(&all, "Japan,Atlantis").unwrap_err().to_string();
        assert!(err.contains("Atlantis"), "{err}");
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let text =
            "country,persona_name,language,nllb_code,iso639_1,resource_tier,idv,mas,uai,pdi,lto\n\
                    A,A,x,x,x,high,1,2,3,4,5\n\
                    B,B,x,x,x,high,1,2,abc,4,5\n";
        let err = parse(text, Path::new("c.csv")).unwrap_err().to_string();
        assert!(err.starts_with("c.csv:3:"), "{err}");
        assert!(err.contains("uai"), "{err}");
        let text = "country,persona_name\nA,A\n";
        let err = parse(text, Path::new("c.csv")).unwrap_err().to_string();
        assert!(err.contains("missing column"), "{err}");
    }
}
