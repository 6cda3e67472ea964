//! How numbers and keys are written: the one CSV writer every stats table and comparison.csv
//! goes through with its formatting rules, and the Markdown cells of summary.md.
//!
//! CSV numbers keep the format the tables have always had (Rust's `{}`: shortest round-trip,
//! no exponent), which is not the csv crate's (ryu writes `1.0` and `1e-7`), so every float
//! column of a row struct goes through `float` or `float_or_nan`; a key column that can stand
//! for every value goes through `or_all`.

use crate::dimension::Tier;
use serde::{Serialize, Serializer};
use std::fmt::Display;

/// A table as CSV text: the header (the row type's field names), then one line per row. A
/// table without rows still gets its header, taken from a default row, so that a reader
/// finds the columns it expects.
pub fn csv_table<R: Serialize + Default>(rows: impl IntoIterator<Item = R>) -> String {
    let mut rows = rows.into_iter().peekable();
    let empty = rows.peek().is_none();
    let mut w = csv::Writer::from_writer(Vec::new());
    if empty {
        w.serialize(R::default()).expect("writing to memory");
    }
    for row in rows {
        w.serialize(row).expect("writing to memory");
    }
    let mut text =
        String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 fields");
    if empty {
        let header_end = text.find('\n').map_or(text.len(), |i| i + 1);
        text.truncate(header_end);
    }
    text
}

/// A float column: `{}` (see the module's documentation).
pub fn float<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// An optional float column: `{}`, or `NaN` where the figure is undefined (pandas and R read
/// it as missing).
pub fn float_or_nan<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_str("NaN"),
    }
}

/// A key column of a row that can stand for every value (tier, dimension, language,
/// country): the value's code, or `all`.
pub fn or_all<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_str("all"),
    }
}

/// A Markdown cell: `v` to `digits` decimals, "–" when undefined.
pub(crate) fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

/// A Markdown cell: `v` as a whole percentage, "–" when undefined.
pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{:.0}%", v * 100.0))
}

/// A tier key of a Markdown row: its code, or "all".
pub(crate) fn tier_code(tier: Option<Tier>) -> &'static str {
    tier.map_or("all", Tier::code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct Probe {
        #[serde(serialize_with = "float")]
        x: f64,
        #[serde(serialize_with = "float_or_nan")]
        y: Option<f64>,
        #[serde(serialize_with = "or_all")]
        tier: Option<Tier>,
        label: &'static str,
    }

    #[test]
    fn floats_as_rust_prints_them_and_an_empty_table_keeps_its_header() {
        let rows = [
            Probe {
                x: 1.0,
                y: Some(1e-7),
                tier: Some(Tier::Mid),
                label: "a,b",
            },
            Probe {
                x: f64::INFINITY,
                y: None,
                tier: None,
                label: "",
            },
        ];
        assert_eq!(
            csv_table(rows),
            "x,y,tier,label\n1,0.0000001,mid,\"a,b\"\ninf,NaN,all,\n"
        );
        assert_eq!(csv_table(Vec::<Probe>::new()), "x,y,tier,label\n");
    }
}
