//! `results.jsonl` (its row schema: `manifest::results`): read whole, or appended and
//! synced per batch so that a killed run loses nothing it finished and resumes.

pub use crate::manifest::results::{
    row_key, ResultRow, RowKey, MODE_GENERATE, MODE_IMPORTED, MODE_LOGITS, RESULTS_FILE,
};

use crate::files::{self, Appender};
use crate::Result;
use std::collections::HashSet;
use std::path::Path;

/// Every complete row of a results file. A last line without its newline is what a killed
/// writer leaves behind: it is reported in `torn_tail` and not returned.
pub struct ReadResults {
    pub rows: Vec<ResultRow>,
    /// Byte length of the complete lines (where a resumed writer must continue).
    pub complete_len: u64,
    pub torn_tail: bool,
}

const WHAT: &str = "result row";

pub fn read(path: &Path) -> Result<ReadResults> {
    Ok(ReadResults::from(files::read_rows(path, WHAT)?))
}

impl From<files::Rows<ResultRow>> for ReadResults {
    fn from(r: files::Rows<ResultRow>) -> Self {
        Self {
            rows: r.rows.into_iter().map(|(_, row)| row).collect(),
            complete_len: r.complete_len,
            torn_tail: r.torn_tail,
        }
    }
}

/// Appends rows to `DIR/results.jsonl`, each batch durable before `append` returns.
pub struct ResultsWriter {
    file: Appender,
    done: HashSet<RowKey>,
}

impl ResultsWriter {
    /// Open for appending, keeping the complete rows already there (and cutting off a torn
    /// last line left by a killed run).
    pub fn open(dir: &Path) -> Result<(Self, Vec<ResultRow>)> {
        let path = dir.join(RESULTS_FILE);
        let existing = if path.exists() {
            ReadResults::from(files::read_rows_for_append(&path, WHAT)?).rows
        } else {
            Vec::new()
        };
        let file = Appender::open(&path)?;
        let done = existing.iter().map(ResultRow::key).collect();
        Ok((Self { file, done }, existing))
    }

    pub fn is_done(&self, key: &RowKey) -> bool {
        self.done.contains(key)
    }

    /// Write a batch of rows and make them durable before returning.
    pub fn append(&mut self, rows: &[ResultRow]) -> Result<()> {
        self.file.append(rows)?;
        self.done.extend(rows.iter().map(ResultRow::key));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dimension::{Dimension, Tier};
    use std::fs::OpenOptions;
    use std::io::Write;

    pub(crate) fn row(country: &str, prompt: &str, p: f64) -> ResultRow {
        ResultRow {
            model: "m".into(),
            approach: "personas".into(),
            dimension: Dimension::Idv,
            country: country.into(),
            language: "x".into(),
            tier: Tier::High,
            prompt_id: prompt.into(),
            mode: MODE_LOGITS.into(),
            p_high: Some(p),
            p_high_by_order: Some([p, p]),
            label_mass: Some([0.9, 0.8]),
            hofstede_score: 60.0,
            high_side: true,
            rendered: None,
            lang: None,
            translation_bleu: None,
            low_bleu: false,
            response: None,
            round: None,
            tokens_generated: None,
            judge: None,
        }
    }

    #[test]
    fn resume_keeps_rows_and_cuts_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, existing) = ResultsWriter::open(dir.path()).unwrap();
        assert!(existing.is_empty());
        w.append(&[row("A", "p1", 0.7), row("B", "p1", 0.2)])
            .unwrap();
        drop(w);
        // Simulate a kill in the middle of writing the next row.
        let path = dir.path().join(RESULTS_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"model\":\"m\",\"appr").unwrap();
        drop(f);
        let (mut w, existing) = ResultsWriter::open(dir.path()).unwrap();
        assert_eq!(existing.len(), 2);
        assert!(w.is_done(&row("A", "p1", 0.0).key()));
        assert!(!w.is_done(&row("C", "p1", 0.0).key()));
        w.append(&[row("C", "p1", 0.6)]).unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.rows.len(), 3);
        assert!(!r.torn_tail);
    }

    #[test]
    fn a_row_torn_inside_a_multibyte_character_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = ResultsWriter::open(dir.path()).unwrap();
        let mut first = row("Japan", "p1", 0.7);
        first.response = Some("家族のそばにいなさい".into());
        w.append(&[first]).unwrap();
        drop(w);
        let path = dir.path().join(RESULTS_FILE);
        let mut next = row("Korea", "p1", 0.4);
        next.response = Some("가족 곁에 있어라".into());
        let line = serde_json::to_string(&next).unwrap();
        let start = line.find("가").unwrap();
        // A kill one byte into the three-byte "가".
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&line.as_bytes()[..start + 1]).unwrap();
        drop(f);
        let (mut w, existing) = ResultsWriter::open(dir.path()).unwrap();
        assert_eq!(existing.len(), 1);
        w.append(&[next]).unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert!(!r.torn_tail);
    }

    #[test]
    fn rows_without_the_multilingual_fields_still_read() {
        let old = r#"{"model":"m","approach":"personas","dimension":"idv","country":"A","language":"x","tier":"high","prompt_id":"p","p_high":0.5,"p_high_by_order":[0.5,0.5],"label_mass":[0.9,0.8],"hofstede_score":60.0,"high_side":true}"#;
        let r: ResultRow = serde_json::from_str(old).unwrap();
        assert_eq!(
            (r.lang, r.translation_bleu, r.low_bleu),
            (None, None, false)
        );
        assert!(!serde_json::to_string(&row("A", "p", 0.5))
            .unwrap()
            .contains("\"lang\""));
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        let good = serde_json::to_string(&row("A", "p", 0.5)).unwrap();
        std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
        let err = read(&path).err().unwrap().to_string();
        assert!(err.contains("results.jsonl:2:"), "{err}");
    }
}
