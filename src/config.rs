//! What each command was asked to do, as typed, checked values: the high-level half of the
//! command line (ripgrep's low-args → high-args). `cli.rs` parses the flags with clap and
//! builds one of these through the constructors here; nothing below `main` sees clap. Every
//! check that needs no file written or model loaded happens here, so a bad `--devices`,
//! `--shard`, `--system-file` or a flag of the other mode fails before a run folder is touched.

use crate::countries::{self, Country};
use crate::dimension::Dimension;
use crate::domain::{Approach, Mode, Preset, Weights};
use crate::engine::device::{self, DeviceSpec};
use crate::engine::generate::Sampling;
use crate::shard::Shard;
use crate::{Error, Result};
use std::path::PathBuf;

/// Prompts per dimension in the quick preset: 36 countries × 5 dimensions × this many items
/// keeps the default run within minutes on a 2-core CPU.
pub const QUICK_LIMIT: usize = 3;

/// One command of the command line, configured.
#[derive(Debug)]
pub enum Command {
    Run(Box<RunConfig>),
    Stats {
        dir: PathBuf,
        options: crate::stats::Options,
    },
    Report {
        dir: PathBuf,
        options: crate::stats::Options,
    },
    Compare(CompareConfig),
    ImportResults {
        files: Vec<PathBuf>,
        model: String,
        out: PathBuf,
    },
    Merge(MergeConfig),
    Verify(VerifyConfig),
    Fetch {
        model: Option<String>,
    },
    Models,
    Translate(TranslateConfig),
    ImportTranslations(ImportTranslationsConfig),
    BenchPrefill(BenchPrefillConfig),
    Prompts {
        prompts: Option<PathBuf>,
        dimension: Option<Dimension>,
    },
}

/// `hofbench run`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Model card name, GGUF path, model folder or hub id (None: the default card).
    pub model: Option<String>,
    pub approach: Approach,
    pub preset: Preset,
    pub selection: Selection,
    /// Items (logits) or prompts (generate) per forward pass.
    pub batch_size: usize,
    pub max_batch_tokens: usize,
    pub keep_text: bool,
    pub weights: Weights,
    pub out: PathBuf,
    pub devices: Vec<DeviceSpec>,
    /// `cpu` or `cuda`: the one backend of `devices`.
    pub backend: &'static str,
    pub shard: Option<Shard>,
    /// `--system` / `--system-file`: the system turn before every prompt.
    pub system: Option<String>,
    pub mode: ModeConfig,
}

/// The settings only one mode has.
#[derive(Debug, Clone)]
pub enum ModeConfig {
    Logits {
        /// `--random-weights SHAPE` (GPU benchmarks): random weights of that shape.
        random_weights: Option<String>,
    },
    Generate(GenerateConfig),
}

/// `--mode generate`: how replies are sampled and judged.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    pub sampling: Sampling,
    pub max_new_tokens: usize,
    pub rounds: u32,
    pub seed: u64,
    /// `--judge`: the judge model (None: the model that wrote the replies).
    pub judge: Option<String>,
}

/// What part of the benchmark a run covers (its prompt set and translations are read by
/// `run::RunSelection`).
#[derive(Debug, Clone)]
pub struct Selection {
    pub countries: Vec<Country>,
    pub dimensions: Vec<Dimension>,
    /// Prompts per dimension: `--limit`, else the preset's.
    pub limit: Option<usize>,
    /// `--prompts` (None: the built-in set).
    pub prompts: Option<PathBuf>,
    /// Translation cache, read by the multilingual approach only.
    pub translations: PathBuf,
    pub bleu_threshold: f64,
}

impl RunConfig {
    pub fn mode(&self) -> Mode {
        match self.mode {
            ModeConfig::Logits { .. } => Mode::Logits,
            ModeConfig::Generate(_) => Mode::Generate,
        }
    }
}

/// `--countries` (None: all; none at all for the control approach, which asks without one).
pub fn countries(approach: Approach, list: Option<&str>) -> Result<Vec<Country>> {
    match (approach, list) {
        (Approach::Control, Some(_)) => Err(Error::Usage(
            "--approach control asks without any country: leave out --countries".into(),
        )),
        (Approach::Control, None) => Ok(vec![countries::control()]),
        (_, list) => countries::select(&countries::builtin(), list.unwrap_or("all")),
    }
}

/// Prompts per dimension: `--limit`, else the preset's.
pub fn limit(preset: Preset, limit: Option<usize>) -> Option<usize> {
    limit.or(match preset {
        Preset::Quick => Some(QUICK_LIMIT),
        Preset::Paper => None,
    })
}

/// `--devices`: parsed, and all of one backend.
pub fn devices(text: &str) -> Result<(Vec<DeviceSpec>, &'static str)> {
    let devices = DeviceSpec::parse_list(text)?;
    let backend = device::backend(&devices)?;
    Ok((devices, backend))
}

/// `--shard i/n`.
pub fn shard(text: Option<&str>) -> Result<Option<Shard>> {
    text.map(str::parse).transpose()
}

/// Refuse the flags of the other mode, which would otherwise be silently ignored.
/// `given` lists the flags (as `--name`) the command line set; `mode_of` names the mode each
/// mode-specific flag belongs to.
pub fn check_mode_flags(mode: Mode, given: &[&str], mode_of: &[(&str, Mode)]) -> Result<()> {
    for &(flag, flag_mode) in mode_of {
        if flag_mode != mode && given.contains(&flag) {
            return Err(Error::Usage(format!(
                "{flag} applies to --mode {flag_mode} only, not to --mode {mode}"
            )));
        }
    }
    Ok(())
}

/// `hofbench compare`.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    pub a: PathBuf,
    pub b: PathBuf,
    /// Where comparison.csv and comparison.md go.
    pub out: PathBuf,
    pub stats: crate::stats::Options,
}

/// `hofbench merge`.
#[derive(Debug, Clone)]
pub struct MergeConfig {
    pub dirs: Vec<PathBuf>,
    pub out: PathBuf,
    pub allow_incomplete: bool,
}

/// `hofbench verify`.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub dir: PathBuf,
    /// Rows to re-score.
    pub sample: usize,
    pub seed: u64,
    /// Checked to be of one backend.
    pub devices: Vec<DeviceSpec>,
    /// Where the run's model is now, when it moved.
    pub model: Option<PathBuf>,
}

/// `hofbench translate`.
#[derive(Debug, Clone)]
pub struct TranslateConfig {
    pub model: PathBuf,
    /// `all` or comma-separated NLLB codes (checked against the model's tokenizer at load).
    pub languages: String,
    pub prompts: Option<PathBuf>,
    pub beams: usize,
    /// None: min(200, 1.5 x source + 10).
    pub max_length: Option<usize>,
    pub batch_size: usize,
    pub back_translation: bool,
    pub out: PathBuf,
}

/// `hofbench import-translations`.
#[derive(Debug, Clone)]
pub struct ImportTranslationsConfig {
    pub files: Vec<PathBuf>,
    pub out: PathBuf,
    pub prompts: Option<PathBuf>,
    /// An NLLB-200 checkpoint to translate what the files lack.
    pub model: Option<PathBuf>,
}

/// `hofbench bench-prefill`.
#[derive(Debug, Clone)]
pub struct BenchPrefillConfig {
    /// `llama3-8b` or a Llama config.json.
    pub random_weights: String,
    pub device: DeviceSpec,
    pub weights: Weights,
    /// (batch, length) cells.
    pub grid: Vec<(usize, usize)>,
    pub repeats: usize,
    pub peak_tflops: Option<f64>,
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_of_the_other_mode_is_named_in_the_error() {
        let mode_of = [
            ("--rounds", Mode::Generate),
            ("--random-weights", Mode::Logits),
        ];
        assert!(check_mode_flags(Mode::Generate, &["--rounds"], &mode_of).is_ok());
        let e = check_mode_flags(Mode::Logits, &["--out", "--rounds"], &mode_of).unwrap_err();
        assert!(e.to_string().contains("--rounds"), "{e}");
        let e = check_mode_flags(Mode::Generate, &["--random-weights"], &mode_of).unwrap_err();
        assert!(e.to_string().contains("--random-weights"), "{e}");
    }
}
