//! Every on-disk schema of hofbench, and the one way each is read and written:
//! - `run`: a run folder's manifest.json (`Manifest`, with its `Settings`, the
//!   `GenerationSettings` of a generate run and the `MergeInfo` of a merged one);
//! - `results`: a row of results.jsonl (`ResultRow`, its `RowKey`, the judge's reading);
//! - `translations`: the translation cache's `<lang>.jsonl` rows and its manifest.json.
//!
//! A leaf: it imports the small domain types its schemas hold (`dimension`, `shard`,
//! `generate::sampling`) and nothing of the commands that build or read them. What turns
//! command-line settings or run state into these structs lives with the command.
//!
//! Manifests are read with `read` (typed; an error names the file and line) and written with
//! `write` (through `files::write_atomic`: a kill or power cut never leaves half a manifest).

pub mod results;
pub mod run;
pub mod translations;

pub use results::{JudgeReading, ResultRow, RowKey, Verdict, VerdictSource, RESULTS_FILE};
pub use run::{
    DeviceUse, Diagnostics, GenerationSettings, JudgeInfo, LabelsInfo, Manifest, MergeInfo,
    MergedShard, ModelInfo, PromptsInfo, Settings, Timing,
};

use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// A run folder's manifest, beside its results.jsonl.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Read the manifest of the run folder `dir`.
pub fn read(dir: &Path) -> Result<Manifest> {
    read_json(&dir.join(MANIFEST_FILE))
}

/// Read the manifest of `dir` where there is one: a folder of imported or hand-made results
/// has none, and that is not an error; an unreadable or corrupt manifest is.
pub fn read_if_present(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}

/// The time stamps of manifests (`started`, `finished`): RFC 3339, to the second, UTC.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Write the manifest of the run folder `dir`, atomically and durably.
pub fn write(dir: &Path, manifest: &Manifest) -> Result<()> {
    write_json(&dir.join(MANIFEST_FILE), manifest)
}

/// Read a JSON document of one of the schemas here; an error names the file and line.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::bad_input_from(path, e.line(), "malformed JSON", e))
}

/// Write a JSON document (pretty-printed, as every manifest is) atomically and durably.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    crate::files::write_atomic(path, &serde_json::to_vec_pretty(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Manifests written by main's binary before the schemas moved here (bench/before_after.sh,
    // commit 6281c45): a merged logits run, a generate run, a translation cache.
    const MERGED: &str = include_str!("../../tests/fixtures/manifest/merged.json");
    const GENERATE: &str = include_str!("../../tests/fixtures/manifest/generate.json");
    const CACHE: &str = include_str!("../../tests/fixtures/manifest/translation_cache.json");

    #[test]
    fn manifests_written_before_read_and_write_back_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        for text in [MERGED, GENERATE] {
            std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
            let m = read(dir.path()).unwrap();
            write(dir.path(), &m).unwrap();
            let again = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
            assert_eq!(again, text);
        }
        let merged: Manifest = serde_json::from_str(MERGED).unwrap();
        assert_eq!(merged.merge.unwrap().merged_from.len(), 2);
        let generate: Manifest = serde_json::from_str(GENERATE).unwrap();
        assert!(generate.settings.generation.unwrap().judge.is_some());
        std::fs::write(dir.path().join(MANIFEST_FILE), CACHE).unwrap();
        let cache = translations::read_cache_manifest(dir.path()).unwrap();
        translations::write_cache_manifest(dir.path(), &cache).unwrap();
        let again = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert_eq!(again, CACHE);
    }

    #[test]
    fn a_corrupt_or_missing_manifest_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path()).err().unwrap().to_string();
        assert!(err.contains("manifest.json"), "{err}");
        assert!(read_if_present(dir.path()).unwrap().is_none());
        // A manifest cut short by hand (the writer never leaves one: `files::write_atomic`).
        let path = dir.path().join(MANIFEST_FILE);
        std::fs::write(&path, &MERGED[..MERGED.len() / 2]).unwrap();
        for err in [
            read(dir.path()).err().unwrap().to_string(),
            read_if_present(dir.path()).err().unwrap().to_string(),
        ] {
            assert!(err.contains(&format!("{}:", path.display())), "{err}");
        }
    }
}
