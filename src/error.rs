//! One error type for the whole crate, one enum with its variants grouped by kind, as in
//! candle-core's `error.rs`: **input files** (the user's data files and folders, the file
//! system), **model** (weights, tokenizer, chat template, model config, numerics, devices),
//! **usage** (the user's flags), **internal** (a broken invariant: a bug in hofbench).
//!
//! Every variant about a file names the file (and the line where there is one), so that a
//! user can fix bad input without reading the source. A variant with an underlying cause keeps
//! it as its `source()` and does not repeat it in its own message (the Rust API guidelines'
//! rule); [`Error::report`] prints the whole chain, as `main` does:
//! ```text
//! error: prompts/mine.csv:3: malformed CSV row
//!   caused by: CSV error: record 2 (line: 3, byte: 60): found record with 2 fields, but the previous record has 3 fields
//! ```

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

/// An underlying error kept as a cause (`source()`).
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- input files: the user's data files and folders, and the file system ----
    /// An operation on `path` failed; the `std::io::Error` is the cause.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process writes in this output folder (it holds `DIR/.lock`).
    #[error(
        "{}: in use by another hofbench process (pid {holder}, holding {}/.lock); wait for it \
         to finish or stop it, or use another folder",
        dir.display(),
        dir.display()
    )]
    Locked { dir: PathBuf, holder: String },
    /// A malformed record in a data file (prompt set, country table, results, translations).
    /// `line` is 1-based; 0 means "the file as a whole". `source` is the parser's error.
    #[error("{}:{line}: {msg}", path.display())]
    BadInput {
        path: PathBuf,
        line: usize,
        msg: String,
        #[source]
        source: Option<Source>,
    },
    #[error("unknown country {name:?} (known: {known})")]
    UnknownCountry { name: String, known: String },
    #[error("unknown dimension {name:?} (expected one of idv, mas, uai, pdi, lto)")]
    UnknownDimension { name: String },
    /// Input files or folders, each well-formed, that do not fit together as asked: shards of
    /// different runs, a prompt set changed since the run, an output folder holding a run made
    /// with other settings, two runs with nothing to compare. The message names them.
    #[error("{0}")]
    Incompatible(String),
    /// `hofbench verify` re-scored rows further from the recorded ones than the tolerance.
    #[error("verify: {0}")]
    Mismatch(String),

    // ---- models: weights, tokenizer, chat template, config, numerics, devices ----
    /// A model file that is missing, truncated, corrupt or of an unsupported kind.
    #[error("{}: {msg}", path.display())]
    Model {
        path: PathBuf,
        msg: String,
        #[source]
        source: Option<Source>,
    },
    /// A model configuration (config.json, GGUF metadata) that is inconsistent or that this
    /// engine does not support (a rope scaling type, a layer layout).
    #[error("model config: {0}")]
    ModelConfig(String),
    /// An input the model cannot take: a prompt longer than its context, a token outside its
    /// vocabulary, a language its tokenizer does not know.
    #[error("{0}")]
    ModelLimit(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    /// The model produced NaN/inf where a probability was expected.
    #[error("non-finite logits for item {item}: {detail}")]
    NonFinite { item: String, detail: String },
    #[error("fetching model {model}: {msg}")]
    Fetch { model: String, msg: String },
    /// A compute device (`--devices`) that cannot be opened.
    #[error("device {device}: cannot open it")]
    Device {
        device: String,
        #[source]
        source: candle_core::Error,
    },

    // ---- usage: the user's flags ----
    /// A flag, or a combination of flags, that cannot work; the message names the flag.
    #[error("invalid argument: {0}")]
    Usage(String),

    // ---- internal: an invariant of hofbench itself was broken ----
    /// A bug, not bad input: the message says which invariant.
    #[error("internal error (a bug in hofbench; please report it): {0}")]
    Internal(String),

    // ---- wrapped library errors ----
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Attach a path to an I/O error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn bad_input(path: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Self {
        Error::BadInput {
            path: path.into(),
            line,
            msg: msg.into(),
            source: None,
        }
    }

    /// [`Error::bad_input`] caused by a parser's error, kept as the source.
    pub fn bad_input_from(
        path: impl Into<PathBuf>,
        line: usize,
        msg: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Error::BadInput {
            path: path.into(),
            line,
            msg: msg.into(),
            source: Some(source.into()),
        }
    }

    pub fn model(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            msg: msg.into(),
            source: None,
        }
    }

    /// [`Error::model`] caused by a library's error, kept as the source.
    pub fn model_from(
        path: impl Into<PathBuf>,
        msg: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Error::Model {
            path: path.into(),
            msg: msg.into(),
            source: Some(source.into()),
        }
    }

    /// The error with its chain of causes, one per line:
    /// `MESSAGE` then `  caused by: CAUSE` for each. `main` prints it after `error: `.
    pub fn report(&self) -> Report<'_> {
        Report(self)
    }
}

/// [`Error::report`]: an error and its causes. A cause whose text the line above already
/// holds is left out (some libraries put their cause in their own message too).
pub struct Report<'a>(&'a Error);

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut above = self.0.to_string();
        f.write_str(&above)?;
        let mut cause = std::error::Error::source(self.0);
        while let Some(e) = cause {
            let text = e.to_string();
            if !above.contains(&text) {
                write!(f, "\n  caused by: {text}")?;
            }
            above = text;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_prints_each_cause_on_its_own_line() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Error::io("data/x.csv", io);
        assert_eq!(e.to_string(), "data/x.csv");
        assert_eq!(
            e.report().to_string(),
            "data/x.csv\n  caused by: no such file"
        );
        let parse = "x".parse::<u32>().unwrap_err();
        let e = Error::bad_input_from("p.csv", 3, "bad count", parse);
        assert_eq!(
            e.report().to_string(),
            "p.csv:3: bad count\n  caused by: invalid digit found in string"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn report_skips_a_cause_the_message_already_holds() {
        let json = serde_json::from_str::<u32>("x").unwrap_err();
        let text = json.to_string();
        let e = Error::bad_input_from("r.jsonl", 1, format!("not a row: {text}"), json);
        assert_eq!(
            e.report().to_string(),
            format!("r.jsonl:1: not a row: {text}")
        );
    }
}
