//! `run --system TEXT` / `--system-file PATH`: a system turn put before every prompt of a run
//! through the model's chat template (`ChatTemplate::render_turn`). It changes every result,
//! so the manifest records it (`settings.system`), and a resume with another one is refused
//! like any result-changing setting (crate::result_fields).

use crate::{Error, Result};
use std::path::Path;

/// The system text of the command line: `--system` (`system`), or the contents of
/// `--system-file` (`system_file`, a trailing newline dropped). An empty text is an error
/// rather than silently no turn.
pub fn read(system: Option<&str>, system_file: Option<&Path>) -> Result<Option<String>> {
    let text = match (system, system_file) {
        (Some(text), _) => text.to_string(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            text.strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text)
                .to_string()
        }
        (None, None) => return Ok(None),
    };
    if text.trim().is_empty() {
        return Err(Error::Usage(match system_file {
            Some(path) if system.is_none() => {
                format!("--system-file {}: the file is empty", path.display())
            }
            _ => "--system: the text is empty".into(),
        }));
    }
    Ok(Some(text))
}
