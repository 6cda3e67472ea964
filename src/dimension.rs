//! The five Hofstede dimensions and the resource tiers that group countries.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Hofstede cultural dimension. The "high" side of each is the side a score above 50 points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    Idv,
    Mas,
    Uai,
    Pdi,
    Lto,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Dimension::Idv,
        Dimension::Mas,
        Dimension::Uai,
        Dimension::Pdi,
        Dimension::Lto,
    ];

    /// The short code used in files, flags and ids: idv, mas, uai, pdi, lto.
    pub fn code(self) -> &'static str {
        match self {
            Dimension::Idv => "idv",
            Dimension::Mas => "mas",
            Dimension::Uai => "uai",
            Dimension::Pdi => "pdi",
            Dimension::Lto => "lto",
        }
    }

    /// Index into a country's score array, in `ALL` order.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The side names used as `Expected_<Side>` columns in the paper's released CSVs,
    /// (high side, low side).
    pub fn paper_sides(self) -> (&'static str, &'static str) {
        match self {
            Dimension::Idv => ("Individualistic", "Collectivist"),
            Dimension::Mas => ("Masculine", "Feminine"),
            Dimension::Uai => ("High_Uncertainty_Avoidance", "Low_Uncertainty_Avoidance"),
            Dimension::Pdi => ("High_Power_Distance", "Low_Power_Distance"),
            Dimension::Lto => ("Long_Term", "Short_Term"),
        }
    }

    /// Parse a comma-separated list such as "idv,mas"; "all" or an empty string means all five.
    pub fn parse_list(list: &str) -> Result<Vec<Dimension>> {
        let list = list.trim();
        if list.is_empty() || list.eq_ignore_ascii_case("all") {
            return Ok(Self::ALL.to_vec());
        }
        let mut dims = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let d: Dimension = part.parse()?;
            if !dims.contains(&d) {
                dims.push(d);
            }
        }
        Ok(dims)
    }
}

impl std::str::FromStr for Dimension {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownDimension {
                name: s.to_string(),
            })
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The paper's resource tiers: a language's share of web content (>1%, 0.1–1%, <0.1%).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    High,
    Mid,
    Low,
    /// The control condition's rows (`run --approach control`, country `none`): no country,
    /// so no tier. Not in `ALL`, and not a value of countries.csv.
    None,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::High, Tier::Mid, Tier::Low];

    pub fn code(self) -> &'static str {
        match self {
            Tier::High => "high",
            Tier::Mid => "mid",
            Tier::Low => "low",
            Tier::None => "none",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown resource tier {s:?} (expected high, mid or low)"))
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_rejects_unknown() {
        assert_eq!(
            Dimension::parse_list("idv, LTO,idv").unwrap(),
            vec![Dimension::Idv, Dimension::Lto]
        );
        assert_eq!(Dimension::parse_list("all").unwrap().len(), 5);
        let err = Dimension::parse_list("idv,xyz").unwrap_err().to_string();
        assert!(err.contains("\"xyz\""), "{err}");
    }

    #[test]
    fn index_follows_all_order() {
        for (i, d) in Dimension::ALL.iter().enumerate() {
            assert_eq!(d.index(), i);
        }
    }
}
