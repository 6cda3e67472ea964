//! `hofbench import-results`: the paper's released per-response CSVs → our `results.jsonl`,
//! so that `hofbench stats` and `hofbench report` run on the paper's own answers.
//!
//! Two variants exist: personas files (`English_Prompt, English_Prompt_Persona_Nationality,
//! Target_Nationality, Language, Resource_Level, …`) and multilingual files (`Translated_Prompt,
//! Target_Language, Target_Nationality, Resource_Level`, sometimes `English_Prompt`). Both carry
//! the country's scores, `LLM_Response`, `Matching_Choice` and the two `Expected_<Side>` action
//! columns. `Tested_Value` and `Personas_or_Multilingual` are not trusted (the released files
//! hold one value everywhere): the dimension comes from the `Expected_<Side>` pair a row fills,
//! the approach from the prompt columns the file has.

use crate::countries::{self, Country};
use crate::dimension::{Dimension, Tier};
use crate::prompts::{filled_side_pair, side_column_pairs};
use crate::results::{ResultRow, ResultsWriter, MODE_IMPORTED, RESULTS_FILE};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The paper's score and high-side boolean columns, in `Dimension::ALL` order.
const SCORE_COLUMNS: [(&str, &str); 5] = [
    ("Individualistic_Collectivist_Score", "Individualistic"),
    ("MAS_Score", "Masculine"),
    ("Uncertainty_Avoidance_Score", "High_Uncertainty_Avoidance"),
    ("Power_Distance_Index_Score", "High_Power_Distance_Index"),
    ("Long_Term_Orientation_Score", "Long_Term_Orientation"),
];

/// Lower case, `_`/`-` as spaces, surrounding straight or curly quotes and spaces removed.
fn normalize(s: &str) -> String {
    let quotes: &[char] = &['"', '\'', '“', '”', '‘', '’', '«', '»'];
    s.trim()
        .trim_matches(|c: char| c.is_whitespace() || quotes.contains(&c))
        .to_lowercase()
        .replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `Matching_Choice` value: Some((dimension, chose high side)), or None for Inconclusive.
fn parse_choice(raw: &str) -> std::result::Result<Option<(Dimension, bool)>, String> {
    let v = normalize(raw);
    if v == "inconclusive" {
        return Ok(None);
    }
    for d in Dimension::ALL {
        let (hi, lo) = d.paper_sides();
        if v == normalize(hi) {
            return Ok(Some((d, true)));
        }
        if v == normalize(lo) {
            return Ok(Some((d, false)));
        }
    }
    if v.is_empty() {
        return Err("empty Matching_Choice (expected a side name or Inconclusive)".into());
    }
    Err(format!(
        "Matching_Choice {raw:?} is not a side name (Individualistic, Collectivist, Masculine, \
         Feminine, Long Term, Short Term, High/Low Power Distance, High/Low Uncertainty \
         Avoidance) nor Inconclusive"
    ))
}

fn parse_bool(raw: &str) -> Option<bool> {
    match normalize(raw).as_str() {
        "true" | "1" | "yes" | "1.0" => Some(true),
        "false" | "0" | "no" | "0.0" => Some(false),
        _ => None,
    }
}

fn parse_tier(raw: &str) -> Option<Tier> {
    let v = normalize(raw);
    if v.contains("high") {
        Some(Tier::High)
    } else if v.contains("mid") || v.contains("medium") {
        Some(Tier::Mid)
    } else if v.contains("low") {
        Some(Tier::Low)
    } else {
        None
    }
}

/// Our country for a `Target_Nationality` value (name or persona name, "the" optional).
fn known_country<'a>(table: &'a [Country], raw: &str) -> Option<&'a Country> {
    let strip = |s: &str| {
        let s = normalize(s);
        s.strip_prefix("the ").map(str::to_string).unwrap_or(s)
    };
    let want = strip(raw);
    table
        .iter()
        .find(|c| strip(&c.name) == want || strip(&c.persona_name) == want)
}

/// Convert one released CSV into result rows; `source` names the file in errors and ids.
pub fn parse_paper_results(text: &str, source: &Path, model: &str) -> Result<Vec<ResultRow>> {
    let table = countries::builtin();
    let text = text.trim_start_matches('\u{feff}');
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::bad_input_from(source, 1, "unreadable CSV header", e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let find = |name: &str| headers.iter().position(|h| h == name);
    let require = |name: &str| {
        find(name).ok_or_else(|| Error::bad_input(source, 1, format!("missing column {name:?}")))
    };
    let approach = if find("Translated_Prompt").is_some() {
        "multilingual"
    } else if find("English_Prompt").is_some()
        || find("English_Prompt_Persona_Nationality").is_some()
    {
        "personas"
    } else {
        return Err(Error::bad_input(
            source,
            1,
            "no prompt column: expected Translated_Prompt (multilingual) or English_Prompt / \
             English_Prompt_Persona_Nationality (personas)",
        ));
    };
    let pairs = side_column_pairs(headers.iter().map(String::as_str));
    if pairs.is_empty() {
        return Err(Error::bad_input(
            source,
            1,
            "no pair of Expected_<Side> columns (e.g. Expected_Individualistic, \
             Expected_Collectivist) to tell the dimension",
        ));
    }
    let nationality_col = require("Target_Nationality")?;
    let tier_col = require("Resource_Level")?;
    let choice_col = require("Matching_Choice")?;
    let response_col = find("LLM_Response");
    let language_col = find("Target_Language").or_else(|| find("Language"));
    let mut score_cols = [None; 5];
    for &(d, _, _) in &pairs {
        let (score, side) = SCORE_COLUMNS[d.index()];
        score_cols[d.index()] = Some((require(score)?, find(side)));
    }
    let file_name = source
        .file_name()
        .map_or_else(|| "csv".to_string(), |s| s.to_string_lossy().into_owned());

    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::bad_input_from(source, line, "malformed CSV row", e)
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let bad = |msg: String| Error::bad_input(source, line, msg);
        if rec.len() < headers.len() {
            return Err(bad(format!(
                "{} fields, the header has {} (a quote left open, or a row cut short?)",
                rec.len(),
                headers.len()
            )));
        }
        if let Some(stray) = rec
            .iter()
            .skip(headers.len())
            .find(|f| !f.trim().is_empty())
        {
            return Err(bad(format!(
                "{} fields, the header has {}: stray value {stray:?} past the last column \
                 (an unquoted comma?)",
                rec.len(),
                headers.len()
            )));
        }
        let cell = |col: usize| rec.get(col).unwrap_or("").trim();
        let (dimension, high_col, low_col) =
            filled_side_pair(&pairs, cell).map_err(|msg| bad(msg.into()))?;
        for col in [high_col, low_col] {
            if cell(col).is_empty() {
                return Err(bad(format!("empty {}", headers[col])));
            }
        }
        let p_high = match parse_choice(cell(choice_col)).map_err(&bad)? {
            None => None,
            Some((d, high)) if d == dimension => Some(f64::from(u8::from(high))),
            Some((d, _)) => {
                return Err(bad(format!(
                    "Matching_Choice {:?} is a side of {d}, but the row's Expected_<Side> \
                     actions are {dimension}",
                    cell(choice_col)
                )))
            }
        };
        let nationality = cell(nationality_col);
        if normalize(nationality).is_empty() {
            return Err(bad("empty Target_Nationality".into()));
        }
        let ours = known_country(&table, nationality);
        let tier = match (parse_tier(cell(tier_col)), ours) {
            (Some(t), _) => t,
            (None, Some(c)) if cell(tier_col).is_empty() => c.tier,
            (None, _) => {
                return Err(bad(format!(
                    "Resource_Level {:?}: expected high, mid/medium or low",
                    cell(tier_col)
                )))
            }
        };
        let (score_col, side_col) = score_cols[dimension.index()].expect("checked above");
        let score_raw = cell(score_col);
        let hofstede_score: f64 = score_raw
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                bad(format!(
                    "{}: not a score: {score_raw:?}",
                    headers[score_col]
                ))
            })?;
        let high_side = match side_col.map(|c| (c, cell(c))) {
            Some((_, "")) | None => hofstede_score > 50.0,
            Some((c, raw)) => parse_bool(raw).ok_or_else(|| {
                bad(format!(
                    "{}: expected True or False, got {raw:?}",
                    headers[c]
                ))
            })?,
        };
        let language = language_col
            .map(|c| cell(c).to_string())
            .filter(|l| !l.is_empty())
            .or_else(|| ours.map(|c| c.language.clone()))
            .unwrap_or_default();
        rows.push(ResultRow {
            model: model.to_string(),
            approach: approach.to_string(),
            dimension,
            country: ours.map_or_else(|| normalize_name(nationality), |c| c.name.clone()),
            language,
            tier,
            prompt_id: format!("{file_name}:{line}"),
            mode: MODE_IMPORTED.to_string(),
            p_high,
            p_high_by_order: None,
            label_mass: None,
            hofstede_score,
            high_side,
            rendered: None,
            lang: None,
            translation_bleu: None,
            low_bleu: false,
            response: response_col.map(|c| rec.get(c).unwrap_or("").to_string()),
            round: None,
            tokens_generated: None,
            judge: None,
        });
    }
    if rows.is_empty() {
        return Err(Error::bad_input(source, 0, "no rows"));
    }
    Ok(rows)
}

/// A country name we do not know, kept as written minus surrounding quotes and spaces.
fn normalize_name(raw: &str) -> String {
    let quotes: &[char] = &['"', '\'', '“', '”', '‘', '’'];
    raw.trim()
        .trim_matches(|c: char| c.is_whitespace() || quotes.contains(&c))
        .to_string()
}

/// Import `files` as `model` into `out/results.jsonl` (which must not exist yet). Returns the
/// number of rows and of inconclusive answers.
pub fn import(files: &[PathBuf], model: &str, out: &Path) -> Result<(usize, usize)> {
    if model.trim().is_empty() {
        return Err(Error::Usage("--model must name the model".into()));
    }
    let target = out.join(RESULTS_FILE);
    if target.exists() {
        return Err(Error::Usage(format!(
            "{} already exists; import into a new folder",
            target.display()
        )));
    }
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        for row in parse_paper_results(&text, path, model)? {
            if !seen.insert(row.key()) {
                return Err(Error::bad_input(
                    path,
                    0,
                    "imported twice (two files of the same name?)",
                ));
            }
            rows.push(row);
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let (mut writer, _) = ResultsWriter::open(out)?;
    writer.append(&rows)?;
    let inconclusive = rows.iter().filter(|r| r.p_high.is_none()).count();
    Ok((rows.len(), inconclusive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_normalize_quotes_case_and_separators() {
        assert_eq!(
            parse_choice(" “Long_Term” ").unwrap(),
            Some((Dimension::Lto, true))
        );
        assert_eq!(
            parse_choice("low power-distance").unwrap(),
            Some((Dimension::Pdi, false))
        );
        assert_eq!(parse_choice("INCONCLUSIVE").unwrap(), None);
        assert!(parse_choice("").is_err());
        assert!(parse_choice("Both").unwrap_err().contains("\"Both\""));
    }

    #[test]
    fn translated_prompt_wins_and_a_file_may_mix_dimensions() {
        let text = "Translated_Prompt,English_Prompt,Target_Language,Target_Nationality,\
                    Resource_Level,MAS_Score,Long_Term_Orientation_Score,Matching_Choice,\
                    Expected_Masculine,Expected_Feminine,Expected_Long_Term,Expected_Short_Term\n\
                    t,e,Korean,South Korea,,39,86,Feminine,m,f,,\n\
                    t,e,Korean,South Korea,mid,39,86,Long Term,,,l,s\n";
        let rows = parse_paper_results(text, Path::new("mixed.csv"), "m").unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.approach == "multilingual"));
        assert_eq!(
            (rows[0].dimension, rows[0].p_high, rows[0].high_side),
            (Dimension::Mas, Some(0.0), false)
        );
        // An empty Resource_Level falls back to our table's tier for a known country.
        assert_eq!(rows[0].tier, Tier::Mid);
        assert_eq!(
            (rows[1].dimension, rows[1].p_high, rows[1].high_side),
            (Dimension::Lto, Some(1.0), true)
        );
        assert_eq!(rows[1].prompt_id, "mixed.csv:3");
    }

    #[test]
    fn nationality_matches_name_or_persona_name() {
        let table = countries::builtin();
        assert_eq!(
            known_country(&table, "the united states").unwrap().name,
            "United States"
        );
        assert_eq!(
            known_country(&table, "Netherlands").unwrap().name,
            "Netherlands"
        );
        assert!(known_country(&table, "Atlantis").is_none());
    }
}
