//! Prompt sets: the built-in 250 requests (`prompts/requests/*.jsonl`, embedded) and files in
//! the project's JSONL format or the paper's released CSV format.

use crate::dimension::Dimension;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One two-option advice request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptItem {
    pub id: String,
    pub dimension: Dimension,
    pub request: String,
    /// The action on the dimension's high side (individualist, masculine, high-UA, high-PDI,
    /// long-term).
    pub high_action: String,
    pub low_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_mentioned: Option<String>,
    /// True when the request text already ends with the choose-a-side sentence (the paper's
    /// CSVs), so that the template does not add it a second time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub request_has_choice: bool,
}

/// The built-in prompt set, one embedded file per dimension.
const BUILTIN: [(&str, &str); 5] = [
    (
        "prompts/requests/idv.jsonl",
        include_str!("../prompts/requests/idv.jsonl"),
    ),
    (
        "prompts/requests/mas.jsonl",
        include_str!("../prompts/requests/mas.jsonl"),
    ),
    (
        "prompts/requests/uai.jsonl",
        include_str!("../prompts/requests/uai.jsonl"),
    ),
    (
        "prompts/requests/pdi.jsonl",
        include_str!("../prompts/requests/pdi.jsonl"),
    ),
    (
        "prompts/requests/lto.jsonl",
        include_str!("../prompts/requests/lto.jsonl"),
    ),
];

/// A loaded prompt set and where it came from.
#[derive(Debug, Clone)]
pub struct PromptSet {
    pub source: String,
    pub items: Vec<PromptItem>,
}

impl PromptSet {
    pub fn builtin() -> Result<Self> {
        let mut items = Vec::new();
        for (name, text) in BUILTIN {
            items.extend(parse_jsonl(text, Path::new(name))?);
        }
        Ok(Self {
            source: "builtin".to_string(),
            items,
        })
        .and_then(Self::checked)
    }

    /// Load `path`: a `.jsonl` file, a `.csv` file in the paper's format, or a directory of them.
    pub fn load(path: &Path) -> Result<Self> {
        let mut items = Vec::new();
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(ext(p).as_str(), "jsonl" | "csv"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::bad_input(
                    path,
                    0,
                    "no .jsonl or .csv prompt files in this folder",
                ));
            }
            for f in files {
                items.extend(load_file(&f)?);
            }
        } else {
            items = load_file(path)?;
        }
        Self {
            source: path.display().to_string(),
            items,
        }
        .checked()
    }

    /// `path` if given, else the built-in set.
    pub fn from_option(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(p) => Self::load(p),
            None => Self::builtin(),
        }
    }

    fn checked(self) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        for item in &self.items {
            if !seen.insert(item.id.as_str()) {
                return Err(Error::bad_input(
                    &self.source,
                    0,
                    format!("duplicate prompt id {:?}", item.id),
                ));
            }
        }
        if self.items.is_empty() {
            return Err(Error::bad_input(&self.source, 0, "the prompt set is empty"));
        }
        Ok(self)
    }

    /// Items of `dims` (in the order given), at most `limit` per dimension.
    pub fn select(&self, dims: &[Dimension], limit: Option<usize>) -> Vec<PromptItem> {
        dims.iter()
            .flat_map(|d| {
                self.items
                    .iter()
                    .filter(move |i| i.dimension == *d)
                    .take(limit.unwrap_or(usize::MAX))
                    .cloned()
            })
            .collect()
    }

    /// sha256 over the canonical JSON of every item, for the manifest.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for item in &self.items {
            h.update(serde_json::to_vec(item).expect("prompt items serialize"));
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}

fn ext(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn load_file(path: &Path) -> Result<Vec<PromptItem>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    match ext(path).as_str() {
        "csv" => parse_paper_csv(&text, path),
        _ => parse_jsonl(&text, path),
    }
}

/// The project's own format: one JSON object per line (see prompts/README.md).
pub fn parse_jsonl(text: &str, source: &Path) -> Result<Vec<PromptItem>> {
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let item: PromptItem = serde_json::from_str(line)
            .map_err(|e| Error::bad_input_from(source, line_no, "not a prompt object", e))?;
        for (field, value) in [
            ("id", &item.id),
            ("request", &item.request),
            ("high_action", &item.high_action),
            ("low_action", &item.low_action),
        ] {
            if value.trim().is_empty() {
                return Err(Error::bad_input(
                    source,
                    line_no,
                    format!("empty field {field:?}"),
                ));
            }
        }
        items.push(item);
    }
    Ok(items)
}

/// The paper's `Expected_<Side>` column pairs among `headers`: (dimension, high column, low
/// column) for every dimension whose two side columns are both present. Shared by the prompt
/// CSVs and the released per-response CSVs (src/import.rs).
pub(crate) fn side_column_pairs<'a>(
    headers: impl Iterator<Item = &'a str>,
) -> Vec<(Dimension, usize, usize)> {
    let headers: Vec<&str> = headers.map(str::trim).collect();
    let column = |side: &str| {
        headers
            .iter()
            .position(|h| h.strip_prefix("Expected_") == Some(side))
    };
    Dimension::ALL
        .into_iter()
        .filter_map(|d| {
            let (hi, lo) = d.paper_sides();
            Some((d, column(hi)?, column(lo)?))
        })
        .collect()
}

/// The one pair of `pairs` a row fills (`cell` reads a trimmed field), or why not.
pub(crate) fn filled_side_pair<'r>(
    pairs: &[(Dimension, usize, usize)],
    cell: impl Fn(usize) -> &'r str,
) -> std::result::Result<(Dimension, usize, usize), &'static str> {
    let filled: Vec<&(Dimension, usize, usize)> = pairs
        .iter()
        .filter(|(_, h, l)| !cell(*h).is_empty() || !cell(*l).is_empty())
        .collect();
    match filled[..] {
        [one] => Ok(*one),
        [] => Err("no Expected_<Side> actions in this row"),
        _ => Err("actions of more than one dimension in this row"),
    }
}

/// The paper's released CSV: `English_Prompt,Expected_<SideA>,Expected_<SideB>`; the two side
/// names tell the dimension and which action is the high side.
pub fn parse_paper_csv(text: &str, source: &Path) -> Result<Vec<PromptItem>> {
    let text = text.trim_start_matches('\u{feff}');
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| Error::bad_input_from(source, 1, "unreadable CSV header", e))?
        .clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let prompt_col = find("English_Prompt")
        .ok_or_else(|| Error::bad_input(source, 1, "missing column \"English_Prompt\""))?;
    // Every dimension whose two side columns are both present; a file usually has one, but
    // a combined export may carry several, each row filling one pair.
    let pairs = side_column_pairs(headers.iter());
    if pairs.is_empty() {
        let found: Vec<&str> = headers
            .iter()
            .filter_map(|h| h.trim().strip_prefix("Expected_"))
            .collect();
        return Err(Error::bad_input(
            source,
            1,
            format!(
                "expected two Expected_<Side> columns of one dimension \
                 (e.g. Expected_Individualistic,Expected_Collectivist), found {found:?}"
            ),
        ));
    }
    // Ids name the file, so that several CSVs of one dimension can be loaded together.
    let stem = source
        .file_stem()
        .map_or_else(|| "csv".to_string(), |s| s.to_string_lossy().into_owned());
    let mut items = Vec::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::bad_input_from(source, line, "malformed CSV row", e)
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let cell = |col: usize| rec.get(col).unwrap_or("").trim();
        let (dimension, high_col, low_col) =
            filled_side_pair(&pairs, cell).map_err(|msg| Error::bad_input(source, line, msg))?;
        let get = |col: usize| -> Result<String> {
            match cell(col) {
                "" => Err(Error::bad_input(
                    source,
                    line,
                    format!("empty {}", &headers[col]),
                )),
                v => Ok(v.to_string()),
            }
        };
        items.push(PromptItem {
            id: format!("{}-{stem}-{:03}", dimension.code(), row + 1),
            dimension,
            request: get(prompt_col)?,
            high_action: get(high_col)?,
            low_action: get(low_col)?,
            domain: None,
            first_mentioned: None,
            request_has_choice: true,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_set_has_50_per_dimension() {
        let set = PromptSet::builtin().unwrap();
        for d in Dimension::ALL {
            let n = set.items.iter().filter(|i| i.dimension == d).count();
            assert_eq!(n, 50, "{d}");
        }
        assert_eq!(set.select(&[Dimension::Mas], Some(3)).len(), 3);
        assert_eq!(set.hash(), PromptSet::builtin().unwrap().hash());
    }

    #[test]
    fn paper_csv_with_quotes_newlines_and_low_side_first() {
        let text = "\u{feff}English_Prompt,Expected_Short_Term,Expected_Long_Term\n\
            \"I saved money, a lot.\nShould I spend it? Choose one side: “spend” or “save”.\",Spend it now,\"Save it, invest\"\n";
        let items = parse_paper_csv(text, Path::new("p.csv")).unwrap();
        assert_eq!(items.len(), 1);
        let it = &items[0];
        assert_eq!(it.dimension, Dimension::Lto);
        assert_eq!(it.high_action, "Save it, invest");
        assert_eq!(it.low_action, "Spend it now");
        assert!(it.request.contains("a lot.\nShould"));
        assert!(it.request.contains("“spend”"));
        assert!(it.request_has_choice);
        assert_eq!(it.id, "lto-p-001");
    }

    #[test]
    fn paper_csv_errors_name_file_and_line() {
        let text = "English_Prompt,Expected_Masculine,Expected_Feminine\na,b,c\nd,e\n";
        let err = parse_paper_csv(text, Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.csv:3:"), "{err}");
        let text = "English_Prompt,Expected_Masculine,Expected_Feminine\na,,c\n";
        let err = parse_paper_csv(text, Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.csv:2:") && err.contains("Expected_Masculine"),
            "{err}"
        );
        let text = "English_Prompt,Expected_Masculine,Expected_Collectivist\na,b,c\n";
        let err = parse_paper_csv(text, Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.csv:1:"), "{err}");
    }

    #[test]
    fn paper_csv_with_several_dimensions_and_an_index_column() {
        let text = ",English_Prompt,Expected_Masculine,Expected_Feminine,Expected_Long_Term,Expected_Short_Term\n\
            0,p1,win,share,,\n\
            1,p2,,,save,spend\n";
        let items = parse_paper_csv(text, Path::new("all.csv")).unwrap();
        assert_eq!(items[0].dimension, Dimension::Mas);
        assert_eq!(
            (items[0].high_action.as_str(), items[0].id.as_str()),
            ("win", "mas-all-001")
        );
        assert_eq!(items[1].dimension, Dimension::Lto);
        assert_eq!(
            (items[1].low_action.as_str(), items[1].id.as_str()),
            ("spend", "lto-all-002")
        );
        let text = "English_Prompt,Expected_Masculine,Expected_Feminine,Expected_Long_Term,Expected_Short_Term\n\
            p1,win,share,save,\n";
        let err = parse_paper_csv(text, Path::new("all.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("all.csv:2:") && err.contains("more than one"),
            "{err}"
        );
    }

    #[test]
    fn jsonl_errors_name_line() {
        let good =
            r#"{"id":"x","dimension":"idv","request":"r","high_action":"h","low_action":"l"}"#;
        let bad =
            r#"{"id":"y","dimension":"abc","request":"r","high_action":"h","low_action":"l"}"#;
        let text = format!("{good}\n{bad}\n");
        let err = parse_jsonl(&text, Path::new("q.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("q.jsonl:2:"), "{err}");
    }
}
