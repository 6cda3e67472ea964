//! Append-only JSON Lines files written by a process that may be killed at any byte
//! (results.jsonl, the translation cache's `<lang>.jsonl`): the complete lines, and whether a
//! torn last line follows them.
//!
//! Lines are split on bytes, not read as text: a kill can cut a line inside a multi-byte UTF-8
//! character, and such a torn tail must resume like any other. A complete line that is not
//! UTF-8 is corrupt and is reported with its line number.

use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::Path;

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
}
