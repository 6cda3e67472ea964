//! `results.jsonl`: one object per (model, approach, dimension, country, prompt_id, mode,
//! round), appended
//! and flushed per batch so that a killed run loses nothing it finished and resumes.

use crate::dimension::{Dimension, Tier};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const RESULTS_FILE: &str = "results.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub model: String,
    pub approach: String,
    pub dimension: Dimension,
    pub country: String,
    pub language: String,
    pub tier: Tier,
    pub prompt_id: String,
    /// How the answer was obtained: "logits" (the option letters' probabilities), "generate"
    /// (a free-text reply, `run --mode generate`) or "imported" (`hofbench import-results`).
    /// Files written before this field are "logits".
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Mean of the two orders' P(high side); null for an inconclusive answer (imported or
    /// judged replies that pick neither side).
    pub p_high: Option<f64>,
    /// P(high side) with the high action shown as A, then shown as B (logits mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_high_by_order: Option<[f64; 2]>,
    /// The two labels' share of the whole next-token distribution, per order (logits mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_mass: Option<[f64; 2]>,
    pub hofstede_score: f64,
    /// The country's side of the dimension: score > 50.
    pub high_side: bool,
    /// The two rendered prompts (high first, low first), with --keep-text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<[String; 2]>,
    /// NLLB code of the language the prompt was asked in (multilingual approach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Round-trip BLEU (0–1) of the translated request (multilingual approach; absent for
    /// English and for translations made without back-translation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation_bleu: Option<f64>,
    /// `translation_bleu` is below the run's threshold (manifest `settings.bleu_threshold`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub low_bleu: bool,
    /// The model's free-text reply, where there is one (generate mode, imported results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Generate mode: which of the item's replies this is, 1-based (`--rounds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Generate mode: tokens in the reply, the stop token not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_generated: Option<usize>,
    /// Generate mode: the judge's reading of `response` (`judge::JudgeReading`), from which
    /// p_high comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<crate::judge::JudgeReading>,
}

pub const MODE_LOGITS: &str = "logits";
pub const MODE_IMPORTED: &str = "imported";
pub const MODE_GENERATE: &str = "generate";

fn default_mode() -> String {
    MODE_LOGITS.to_string()
}

/// Identifies a row; a rerun skips keys already present: model, approach, dimension,
/// country, prompt_id, mode and round (0 where there are no rounds), so that a logits row and
/// the generated replies of the same item never collide.
pub type RowKey = (String, String, Dimension, String, String, String, u32);

impl ResultRow {
    pub fn key(&self) -> RowKey {
        (
            self.model.clone(),
            self.approach.clone(),
            self.dimension,
            self.country.clone(),
            self.prompt_id.clone(),
            self.mode.clone(),
            self.round.unwrap_or(0),
        )
    }

    /// The hard choice: Some(true) when p_high > 0.5, None for an inconclusive answer.
    pub fn chose_high(&self) -> Option<bool> {
        self.p_high.map(|p| p > 0.5)
    }
}

/// Read every complete row of a results file. A last line without its newline is what a
/// killed writer leaves behind: it is reported in `torn_tail` and not returned.
pub struct ReadResults {
    pub rows: Vec<ResultRow>,
    /// Byte length of the complete lines (where a resumed writer must continue).
    pub complete_len: u64,
    pub torn_tail: bool,
}

pub fn read(path: &Path) -> Result<ReadResults> {
    parse(path, crate::jsonl::read_lines(path)?)
}

fn parse(path: &Path, lines: crate::jsonl::Lines) -> Result<ReadResults> {
    let mut rows = Vec::with_capacity(lines.lines.len());
    for (line_no, line) in &lines.lines {
        let row: ResultRow = serde_json::from_str(line)
            .map_err(|e| Error::bad_input_from(path, *line_no, "not a result row", e))?;
        rows.push(row);
    }
    Ok(ReadResults {
        rows,
        complete_len: lines.complete_len,
        torn_tail: lines.torn_tail,
    })
}

/// Appends rows to `DIR/results.jsonl`, flushing after every batch.
pub struct ResultsWriter {
    path: PathBuf,
    file: File,
    done: HashSet<RowKey>,
}

impl ResultsWriter {
    /// Open for appending, keeping the complete rows already there (and cutting off a torn
    /// last line left by a killed run).
    pub fn open(dir: &Path) -> Result<(Self, Vec<ResultRow>)> {
        let path = dir.join(RESULTS_FILE);
        let existing = if path.exists() {
            parse(&path, crate::jsonl::open_for_append(&path)?)?.rows
        } else {
            Vec::new()
        };
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if created {
            // The new file's directory entry must be on disk too, or a power cut could lose
            // the file with every row synced into it.
            sync_dir(dir)?;
        }
        let done = existing.iter().map(ResultRow::key).collect();
        Ok((Self { path, file, done }, existing))
    }

    pub fn is_done(&self, key: &RowKey) -> bool {
        self.done.contains(key)
    }

    /// Write a batch of rows and make them durable before returning.
    pub fn append(&mut self, rows: &[ResultRow]) -> Result<()> {
        let mut buf = Vec::new();
        for row in rows {
            serde_json::to_writer(&mut buf, row)?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .map_err(|e| Error::io(&self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io(&self.path, e))?;
        self.done.extend(rows.iter().map(ResultRow::key));
        Ok(())
    }
}

/// Make a directory's entries (a new or renamed file) durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Elsewhere a directory cannot be opened as a file; NTFS journals the entry itself.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
