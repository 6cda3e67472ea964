//! Files written by a process that may be killed at any byte, or lose power: the one way to
//! replace a whole file (`write_atomic`: a synced temporary file renamed over it, the folder
//! synced after), and append-only JSON Lines files (results.jsonl, the translation cache's
//! `<lang>.jsonl`): their complete rows and whether a torn last line follows them
//! (`read_rows`), and the durable appender (`Appender`).
//!
//! Lines are split on bytes, not read as text: a kill can cut a line inside a multi-byte UTF-8
//! character, and such a torn tail must resume like any other. A complete line that is not
//! UTF-8, or not a row, is corrupt and is reported with its line number.

use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Replace `path` with `bytes` so that neither a kill nor a power cut leaves it half-written
/// or empty: write `<name>.tmp` beside it, sync it, rename it over `path`, sync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    rename_durably(&tmp, path)
}

/// Rename a complete, synced file to its final name and make the new directory entry
/// durable: the last step of `write_atomic`, and of a download streamed into a temporary file.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io(to, e))?;
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Make a directory's entries (a new or renamed file) durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Elsewhere a directory cannot be opened as a file; NTFS journals the entry itself.
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

/// `rows` as JSON Lines: one object a line, each line ended.
pub fn to_lines<T: Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut buf, row)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

pub struct Lines {
    /// (1-based line number, text) of every complete, non-blank line.
    pub lines: Vec<(usize, String)>,
    /// Byte length of the complete lines: where a resumed writer must continue.
    pub complete_len: u64,
    /// A last line without its newline (what a killed writer leaves) follows them.
    pub torn_tail: bool,
}

/// Read the complete lines of `path`, leaving the file as it is.
pub fn read_lines(path: &Path) -> Result<Lines> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut out = Lines {
        lines: Vec::new(),
        complete_len: 0,
        torn_tail: false,
    };
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            out.torn_tail = true;
            break;
        }
        out.complete_len += n as u64;
        let text = String::from_utf8(std::mem::take(&mut buf))
            .map_err(|e| Error::bad_input_from(path, line_no, "not UTF-8 text", e.utf8_error()))?;
        if !text.trim().is_empty() {
            out.lines.push((line_no, text));
        }
    }
    Ok(out)
}

/// For the file's one writer, before it appends: cut off a torn last line, so that the next
/// row starts on a line of its own. Returns the complete lines.
pub fn open_for_append(path: &Path) -> Result<Lines> {
    let lines = read_lines(path)?;
    if lines.torn_tail {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        f.set_len(lines.complete_len)
            .and_then(|()| f.sync_data())
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(lines)
}

/// The complete rows of a JSON Lines file.
pub struct Rows<T> {
    /// (1-based line number, row) of every complete, non-blank line.
    pub rows: Vec<(usize, T)>,
    /// Byte length of the complete lines: where a resumed writer must continue.
    pub complete_len: u64,
    /// A last line without its newline (what a killed writer leaves) follows them.
    pub torn_tail: bool,
}

/// Read the complete rows of `path`, leaving the file as it is; a line that is not a `T` is
/// an error naming the file and line, `what` saying what it should have been ("result row").
pub fn read_rows<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Rows<T>> {
    parse_rows(path, read_lines(path)?, what)
}

/// `read_rows` for the file's one writer: cuts off a torn last line first
/// (`open_for_append`).
pub fn read_rows_for_append<T: DeserializeOwned>(path: &Path, what: &str) -> Result<Rows<T>> {
    parse_rows(path, open_for_append(path)?, what)
}

fn parse_rows<T: DeserializeOwned>(path: &Path, lines: Lines, what: &str) -> Result<Rows<T>> {
    let mut rows = Vec::with_capacity(lines.lines.len());
    for (line_no, line) in lines.lines {
        let row = serde_json::from_str(&line)
            .map_err(|e| Error::bad_input_from(path, line_no, format!("not a {what}"), e))?;
        rows.push((line_no, row));
    }
    Ok(Rows {
        rows,
        complete_len: lines.complete_len,
        torn_tail: lines.torn_tail,
    })
}

/// Appends rows to a JSON Lines file, each call's rows durable before it returns.
pub struct Appender {
    path: PathBuf,
    file: File,
}

impl Appender {
    /// Open `path` for appending, creating it (and making its directory entry durable: a
    /// power cut must not lose the file with every row synced into it). A torn last line must
    /// have been cut before (`read_rows_for_append`).
    pub fn open(path: &Path) -> Result<Self> {
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        if created {
            match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir)?,
                _ => sync_dir(Path::new("."))?,
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Write `rows`, one line each, and sync them to disk.
    pub fn append<T: Serialize>(&mut self, rows: &[T]) -> Result<()> {
        let buf = to_lines(rows)?;
        self.file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_torn_inside_a_multibyte_character_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let whole = "{\"t\":\"日本\"}\n";
        // "日" is three bytes: cut after the first of them.
        let cut = &"{\"t\":\"日本\"}".as_bytes()[..7];
        let mut bytes = whole.as_bytes().to_vec();
        bytes.extend_from_slice(cut);
        std::fs::write(&path, &bytes).unwrap();
        let r = read_lines(&path).unwrap();
        assert!(r.torn_tail);
        assert_eq!(r.lines, vec![(1, whole.to_string())]);
        assert_eq!(r.complete_len, whole.len() as u64);
        // Reading leaves the file alone; the writer cuts the tail.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        open_for_append(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), whole.as_bytes());
    }

    #[test]
    fn a_complete_line_that_is_not_utf8_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, b"{}\n\xe6\x97\n").unwrap();
        let err = read_lines(&path).err().unwrap().to_string();
        assert!(err.contains("x.jsonl:2:") && err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("manifest.json")]);
    }

    #[test]
    fn an_atomic_write_into_a_missing_folder_names_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("manifest.json");
        let err = write_atomic(&path, b"x").err().unwrap().to_string();
        assert!(err.contains("manifest.json.tmp"), "{err}");
    }

    #[test]
    fn appended_rows_read_back_with_their_lines_and_a_torn_tail_is_cut_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let mut w = Appender::open(&path).unwrap();
        w.append(&[1u32, 2]).unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"3").unwrap(); // a kill before the newline
        drop(f);
        let r: Rows<u32> = read_rows(&path, "number").unwrap();
        assert_eq!(r.rows, vec![(1, 1), (2, 2)]);
        assert!(r.torn_tail);
        let r: Rows<u32> = read_rows_for_append(&path, "number").unwrap();
        assert!(r.torn_tail);
        Appender::open(&path).unwrap().append(&[4u32]).unwrap();
        let r: Rows<u32> = read_rows(&path, "number").unwrap();
        assert_eq!(r.rows, vec![(1, 1), (2, 2), (3, 4)]);
        assert!(!r.torn_tail);
    }

    #[test]
    fn a_line_that_is_not_a_row_names_the_file_line_and_what_it_should_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        std::fs::write(&path, "1\n\"two\"\n").unwrap();
        let err = read_rows::<u32>(&path, "number").err().unwrap().to_string();
        assert!(
            err.contains("rows.jsonl:2:") && err.contains("not a number"),
            "{err}"
        );
    }
}
