//! Hugging Face checkpoints on this machine, offline: the hub cache's location (hf-hub's
//! rules), a repository's snapshot in it, hub ids told from paths, and checkpoint folders
//! found from what a user typed. hofbench never downloads from the hub; `crate::fetch` (model
//! cards) and the NLLB loader both resolve through here.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The Hugging Face hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub` (hf-hub's rules).
pub fn hub_cache() -> hf_hub::Cache {
    match std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        Some(dir) => hf_hub::Cache::new(PathBuf::from(dir)),
        None => hf_hub::Cache::from_env(),
    }
}

/// A model repository's folder in the hub cache (`models--org--name`), whether or not it exists.
pub fn repo_dir(cache: &hf_hub::Cache, repo: &str) -> PathBuf {
    cache
        .path()
        .join(hf_hub::Repo::model(repo.to_string()).folder_name())
}

/// Find a model repository's snapshot in the hub cache, offline: the pinned `revision`'s
/// snapshot when present, else the one `refs/main` points to. Returns the folder and, when
/// it is not the pinned revision, a note saying so. The error lists where it looked.
pub fn hub_snapshot(repo: &str, revision: Option<&str>) -> Result<(PathBuf, Option<String>)> {
    let cache = hub_cache();
    let repo_dir = repo_dir(&cache, repo);
    let mut looked = Vec::new();
    if let Some(rev) = revision {
        let dir = repo_dir.join("snapshots").join(rev);
        if dir.join("config.json").is_file() {
            return Ok((dir, None));
        }
        looked.push(dir);
    }
    let main = cache.model(repo.to_string());
    if let Some(config) = main.get("config.json") {
        let dir = config
            .parent()
            .expect("a cached file has a snapshot folder")
            .to_path_buf();
        let note = revision.map(|rev| {
            format!(
                "{repo}: pinned revision {rev} is not in the hub cache; using {} (refs/main)",
                dir.display()
            )
        });
        return Ok((dir, note));
    }
    looked.push(repo_dir.join("refs").join("main"));
    let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    let get = match revision {
        Some(rev) => format!("huggingface-cli download {repo} --revision {rev}"),
        None => format!("huggingface-cli download {repo}"),
    };
    Err(Error::Fetch {
        model: repo.to_string(),
        msg: format!(
            "not in the Hugging Face cache (looked in {}); hofbench never downloads from the hub: \
             fetch it with `{get}` (set HF_HOME or HF_HUB_CACHE if your cache is elsewhere)",
            looked.join(", ")
        ),
    })
}

/// "owner/name": a hub repository id rather than a path.
pub fn looks_like_hub_id(m: &str) -> bool {
    let mut parts = m.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none() && !m.ends_with(".gguf")
}

/// A checkpoint folder found from a user path: a plain folder with config.json, a hub-cache
/// snapshot folder, or a hub-cache model entry (`models--org--name`, using refs/main).
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    pub dir: PathBuf,
    /// The hub revision (snapshot commit) when the folder is a hub-cache entry.
    pub revision: Option<String>,
    /// e.g. "facebook/nllb-200-3.3B" for hub-cache entries, else the folder's name.
    pub name: String,
}

/// Find a checkpoint folder from a user path: a folder with config.json (a hub-cache snapshot
/// folder among them), a hub-cache model entry (`models--org--name`, through refs/main), or
/// a hub id (`facebook/nllb-200-3.3B`) in the hub cache. None when the path is none of these;
/// an error when it is a hub id the cache does not hold.
pub fn find_checkpoint(path: &Path) -> Result<Option<CheckpointDir>> {
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let hub_name = |entry: &Path| {
        name_of(entry)
            .strip_prefix("models--")
            .map(|n| n.replacen("--", "/", 1))
    };
    if path.join("config.json").is_file() {
        // A snapshot folder: .../models--org--name/snapshots/<revision>/
        let parent = path.parent();
        if parent.is_some_and(|p| p.file_name().is_some_and(|n| n == "snapshots")) {
            let entry = parent.and_then(Path::parent).unwrap_or(path);
            return Ok(Some(CheckpointDir {
                dir: path.to_path_buf(),
                revision: Some(name_of(path)),
                name: hub_name(entry).unwrap_or_else(|| name_of(path)),
            }));
        }
        return Ok(Some(CheckpointDir {
            dir: path.to_path_buf(),
            revision: None,
            name: name_of(path),
        }));
    }
    let refs = path.join("refs").join("main");
    if refs.is_file() {
        let rev = std::fs::read_to_string(&refs)
            .map_err(|e| Error::io(&refs, e))?
            .trim()
            .to_string();
        let dir = path.join("snapshots").join(&rev);
        if dir.join("config.json").is_file() {
            return Ok(Some(CheckpointDir {
                dir,
                revision: Some(rev),
                name: hub_name(path).unwrap_or_else(|| name_of(path)),
            }));
        }
    }
    if !path.exists() {
        // `facebook/nllb-200-3.3B`: the same offline hub-cache lookup as `run --model`.
        if let Some(repo) = path.to_str().filter(|p| looks_like_hub_id(p)) {
            let (dir, _) = hub_snapshot(repo, None)?;
            return Ok(Some(CheckpointDir {
                revision: Some(name_of(&dir)),
                dir,
                name: repo.to_string(),
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_are_told_from_paths() {
        assert!(looks_like_hub_id("meta-llama/Meta-Llama-3-8B-Instruct"));
        assert!(looks_like_hub_id("google/gemma-3-1b-it"));
        assert!(!looks_like_hub_id("./models/x"));
        assert!(!looks_like_hub_id("/abs/path"));
        assert!(!looks_like_hub_id("dir/model.gguf"));
        assert!(!looks_like_hub_id("a/b/c"));
        assert!(!looks_like_hub_id("smollm2"));
    }
}
