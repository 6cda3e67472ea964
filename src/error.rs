//! One error type for the whole crate, grouped by where the problem comes from.
//! Every variant that is about a file names the file (and the line where there is one),
//! so that a user can fix bad input without reading the source.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- files and the file system ----
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
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

    // ---- user-supplied data (prompt sets, country tables, results files) ----
    /// A malformed record in a data file. `line` is 1-based; 0 means "the file as a whole".
    #[error("{}:{line}: {msg}", path.display())]
    BadInput {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("unknown country {name:?} (known: {known})")]
    UnknownCountry { name: String, known: String },
    #[error("unknown dimension {name:?} (expected one of idv, mas, uai, pdi, lto)")]
    UnknownDimension { name: String },
    #[error("invalid argument: {0}")]
    Usage(String),

    // ---- models: weights, tokenizer, templates, numerics ----
    /// A model file that is missing, truncated, corrupt or of an unsupported kind.
    #[error("{}: {msg}", path.display())]
    Model { path: PathBuf, msg: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    /// The model produced NaN/inf where a probability was expected.
    #[error("non-finite logits for item {item}: {detail}")]
    NonFinite { item: String, detail: String },
    #[error("fetching model {model}: {msg}")]
    Fetch { model: String, msg: String },

    // ---- reproducibility ----
    /// `hofbench verify` re-scored rows further from the recorded ones than the tolerance.
    #[error("verify: {0}")]
    Mismatch(String),

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
        }
    }

    pub fn model(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
