//! Reading the results under a folder (its own results.jsonl or its run folders') into the
//! rows the analysis takes, refusing a row counted twice.

use crate::results::{self, ResultRow, RESULTS_FILE};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The results files under `dir`: its own `results.jsonl`, or else those of the run folders
/// directly inside it (one per model, say), in name order.
pub fn results_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let own = dir.join(RESULTS_FILE);
    if own.is_file() {
        return Ok(vec![own]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let candidate = entry.path().join(RESULTS_FILE);
        if candidate.is_file() {
            files.push(candidate);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::bad_input(
            dir,
            0,
            format!("no {RESULTS_FILE} in this folder or in the folders directly inside it"),
        ));
    }
    Ok(files)
}

/// Read every row under `dir` (see `results_files`). The same row twice, in one file or in
/// two, is an error: it would be counted twice.
pub fn load(dir: &Path) -> Result<Vec<ResultRow>> {
    let mut rows = Vec::new();
    let mut seen: HashMap<results::RowKey, usize> = HashMap::new();
    let files = results_files(dir)?;
    for (i, path) in files.iter().enumerate() {
        let file_rows = results::read(path)?.rows;
        for r in &file_rows {
            if let Some(&other) = seen.get(&r.key()) {
                let place = match other == i {
                    true => "twice in this file".to_string(),
                    false => format!("also in {}", files[other].display()),
                };
                return Err(Error::bad_input(
                    path,
                    0,
                    format!(
                        "row {}/{}/{}/{}/{}{} is {place}",
                        r.model,
                        r.approach,
                        r.dimension,
                        r.country,
                        r.prompt_id,
                        r.round.map_or(String::new(), |k| format!(" round {k}")),
                    ),
                ));
            }
            seen.insert(r.key(), i);
        }
        rows.extend(file_rows);
    }
    if rows.is_empty() {
        return Err(Error::bad_input(
            &files[0],
            0,
            "no results to compute statistics from",
        ));
    }
    Ok(rows)
}
