//! `hofbench verify DIR [--sample N]`: re-score a seeded sample of a finished run with the
//! model it recorded (sha256 checked) and its recorded settings, and report the largest
//! difference in P. The run's batches are rebuilt exactly as `run` cut them (from the whole
//! grid of the folder, see `run::batch_work`), and each sampled row's whole batch is
//! re-scored, so on the same machine and backend the figures come back bit for bit; on
//! another backend (a CPU run checked on a GPU) they agree within `CROSS_BACKEND_TOLERANCE`.

use crate::config::VerifyConfig;
use crate::countries;
use crate::engine::device::{self, DeviceSpec};
use crate::engine::models::WeightFormat;
use crate::engine::parallel::run_on_replicas;
use crate::fetch;
use crate::manifest::{self, Manifest};
use crate::prompts::PromptSet;
use crate::results::{self, ResultRow, RowKey, MODE_LOGITS};
use crate::run;
use crate::shard::Shard;
use crate::stats::correlation::SplitMix64;
use crate::{Error, Result};
use candle_core::Device;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Largest |ΔP| accepted between backends (CPU vs CUDA): the bound for GPU results.
pub const CROSS_BACKEND_TOLERANCE: f64 = 2e-3;
/// Largest |ΔP| accepted on the same backend. Re-scoring rebuilds the run's batches, so a run
/// made in one go comes back identical (ΔP = 0); a run resumed with other batch or grid
/// settings scored some rows in other batches, whose padding moves P at the 1e-7 level.
pub const SAME_BACKEND_TOLERANCE: f64 = 1e-6;

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub sampled: usize,
    /// Rows compared: every recorded row in the sampled rows' batches.
    pub compared: usize,
    pub batches: usize,
    pub max_delta: f64,
    /// `country/prompt_id (field)` of the row with the largest difference.
    pub worst: Option<String>,
    pub recorded_backend: String,
    pub backend: String,
    pub tolerance: f64,
    /// Rows with nothing to re-score by logits (imported or generated answers).
    pub skipped_mode: usize,
    /// Logits rows outside the recorded grid (written by an earlier run with other settings).
    pub outside_grid: usize,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.max_delta <= self.tolerance
    }

    pub fn lines(&self, dir: &Path) -> Vec<String> {
        let mut lines = vec![format!(
            "re-scored {} rows of {} ({} sampled, their {} batches) on {} (recorded on {})",
            self.compared,
            dir.display(),
            self.sampled,
            self.batches,
            self.backend,
            self.recorded_backend
        )];
        if self.skipped_mode > 0 {
            lines.push(format!(
                "skipped {} rows that were not scored by logits (imported or generated answers)",
                self.skipped_mode
            ));
        }
        if self.outside_grid > 0 {
            lines.push(format!(
                "skipped {} rows outside the recorded grid (an earlier run into this folder \
                 with other countries, dimensions or limit)",
                self.outside_grid
            ));
        }
        let identical = if self.max_delta == 0.0 {
            " (bit-identical)"
        } else {
            ""
        };
        lines.push(format!(
            "largest |ΔP| = {:e}{identical}{}",
            self.max_delta,
            self.worst
                .as_ref()
                .filter(|_| self.max_delta > 0.0)
                .map(|w| format!(" at {w}"))
                .unwrap_or_default()
        ));
        lines.push(format!(
            "tolerance {:e} ({}): {}",
            self.tolerance,
            if self.recorded_backend == self.backend {
                "same backend"
            } else {
                "across backends"
            },
            if self.passed() { "OK" } else { "FAILED" }
        ));
        lines
    }
}

pub fn verify_command(args: &VerifyConfig, quiet: bool) -> Result<()> {
    let report = verify(
        &args.dir,
        args.sample,
        args.seed,
        &args.devices,
        args.model.as_deref(),
        quiet,
    )?;
    for line in report.lines(&args.dir) {
        println!("{line}");
    }
    if !report.passed() {
        return Err(Error::Mismatch(format!(
            "{}: largest |ΔP| {:e} is over the tolerance {:e}",
            args.dir.display(),
            report.max_delta,
            report.tolerance
        )));
    }
    Ok(())
}

/// Draw `n` distinct indices below `len` (all of them when `n >= len`), in draw order:
/// a partial Fisher–Yates shuffle driven by SplitMix64.
fn sample_indices(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    let mut all: Vec<usize> = (0..len).collect();
    let n = n.min(len);
    for i in 0..n {
        let j = i + (rng.next_u64() % (len - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(n);
    all
}

pub fn verify(
    dir: &Path,
    sample: usize,
    seed: u64,
    devices: &[DeviceSpec],
    model_path: Option<&Path>,
    quiet: bool,
) -> Result<VerifyReport> {
    let manifest: Manifest = manifest::read(dir)?;
    let backend = device::backend(devices)?;
    let recorded = results::read(&dir.join(results::RESULTS_FILE))?.rows;
    let (rows, other): (Vec<ResultRow>, Vec<ResultRow>) = recorded
        .into_iter()
        .partition(|r| r.mode == MODE_LOGITS && r.p_high_by_order.is_some());
    if !quiet && !other.is_empty() {
        eprintln!(
            "skipping {} rows that were not scored by logits (imported or generated answers)",
            other.len()
        );
    }

    // The model: where the manifest says, or where the user says it is now; the same bytes.
    let path = model_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(&manifest.model.path));
    if !path.exists() {
        return Err(Error::model(
            &path,
            "not found: pass --model with where the run's model is now",
        ));
    }
    let sha = fetch::model_sha256(&path)?;
    if sha != manifest.model.sha256 {
        return Err(Error::model(
            &path,
            format!(
                "sha256 {sha} is not the run's model {} (sha256 {}): verify needs the very \
                 file the run was made with",
                manifest.model.name, manifest.model.sha256
            ),
        ));
    }

    // The recorded settings: prompts (hash checked), grid, shard, batching, weights, template.
    let s = &manifest.settings;
    let prompt_set = PromptSet::from_option(
        (manifest.prompts.source != "builtin").then(|| Path::new(&manifest.prompts.source)),
    )?;
    if prompt_set.hash() != manifest.prompts.sha256 {
        return Err(Error::Incompatible(format!(
            "the prompt set {} has changed since the run (sha256 {} now, {} then)",
            manifest.prompts.source,
            prompt_set.hash(),
            manifest.prompts.sha256
        )));
    }
    let countries = countries::recorded(&s.approach, &s.countries)?;
    let items = prompt_set.select(&s.dimensions, s.limit);
    let translations = match &s.translations {
        None => None,
        Some(cache) => Some(run::load_translations(
            Path::new(cache),
            &countries,
            &items,
        )?),
    };
    // `run --random-weights` (a GPU benchmark) names its model `random-<shape>`: its scores
    // come from seeded random weights, not from the recorded file.
    if manifest.model.name.starts_with("random-") {
        return Err(Error::Incompatible(format!(
            "{}: a --random-weights benchmark run ({}); there is nothing to verify",
            dir.display(),
            manifest.model.name
        )));
    }
    // As `run` records it: `WeightFormat::name`.
    let Some(format) = WeightFormat::from_name(&s.weights) else {
        return Err(Error::bad_input(
            dir.join(manifest::MANIFEST_FILE),
            0,
            format!(
                "settings.weights {:?} is not a weight format this hofbench knows",
                s.weights
            ),
        ));
    };
    let template = (manifest.model.chat_template == "plain").then_some("plain");
    let opened: Vec<Device> = devices.iter().map(|d| d.open()).collect::<Result<_>>()?;
    let mut scorers = run::load_replicas(&path, &opened, format, template, None)?;
    for scorer in &mut scorers {
        scorer.system.clone_from(&s.system);
    }
    if run::labels_info(&scorers[0]) != manifest.labels {
        return Err(Error::model(
            &path,
            "its label tokens differ from the run's (manifest.json `labels`)",
        ));
    }
    // The batches as the run cut them: the whole grid's, of the run's shard if it is one. A
    // merged run's shards share their batch settings (merge compares them) and were cut from
    // these very batches, so it is rebuilt as the unsharded run.
    let shard: Option<Shard> = match &manifest.merge {
        Some(_) => None,
        None => manifest.shard,
    };
    let full_grid = run::grid(&items, &countries);
    let mut work = Vec::with_capacity(full_grid.len());
    for &(item, country) in &full_grid {
        work.push(run::encode_work(
            &scorers[0],
            item,
            country,
            translations.as_deref(),
        )?);
    }
    let (cut, _) = run::batch_work(&mut work, s.batch_size, s.max_batch_tokens);
    let batches = run::shard_batches(cut, shard);
    let key_of = |w: &run::Work| w.key(&manifest.model.name, &s.approach);
    let mut batch_of: HashMap<RowKey, usize> = HashMap::new();
    for (b, range) in batches.iter().enumerate() {
        for w in &work[range.clone()] {
            batch_of.insert(key_of(w), b);
        }
    }
    let recorded: HashMap<RowKey, &ResultRow> = rows.iter().map(|r| (r.key(), r)).collect();
    let in_grid: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| batch_of.contains_key(&r.key()))
        .collect();
    let outside_grid = rows.len() - in_grid.len();
    if in_grid.is_empty() {
        return Err(Error::Incompatible(format!(
            "{} has no logits rows of its recorded grid to verify",
            dir.display()
        )));
    }
    let picked = sample_indices(in_grid.len(), sample, seed);
    let chosen: BTreeSet<usize> = picked
        .iter()
        .map(|&i| batch_of[&in_grid[i].key()])
        .collect();
    let chosen: Vec<usize> = chosen.into_iter().collect();

    let mut report = VerifyReport {
        sampled: picked.len(),
        compared: 0,
        batches: chosen.len(),
        max_delta: 0.0,
        worst: None,
        recorded_backend: s.backend.clone(),
        backend: backend.to_string(),
        tolerance: if s.backend == backend {
            SAME_BACKEND_TOLERANCE
        } else {
            CROSS_BACKEND_TOLERANCE
        },
        skipped_mode: other.len(),
        outside_grid,
    };
    run_on_replicas(
        &scorers,
        &chosen,
        |scorer, &b| run::score_batch(scorer, &work[batches[b].clone()]),
        |_, j, scores| {
            for (w, s2) in work[batches[chosen[j]].clone()].iter().zip(&scores) {
                let Some(old) = recorded.get(&key_of(w)) else {
                    continue; // not finished in the run: nothing to compare
                };
                let new = w.result_row(&old.model, &old.approach, s2, false, 0.0);
                // Through JSON as the recorded row went, so that equal scores compare equal.
                let new: ResultRow = serde_json::from_str(&serde_json::to_string(&new)?)?;
                report.compared += 1;
                let pairs = [
                    ("p_high", old.p_high, new.p_high),
                    (
                        "p_high_by_order[0]",
                        old.p_high_by_order.map(|p| p[0]),
                        new.p_high_by_order.map(|p| p[0]),
                    ),
                    (
                        "p_high_by_order[1]",
                        old.p_high_by_order.map(|p| p[1]),
                        new.p_high_by_order.map(|p| p[1]),
                    ),
                ];
                for (field, a, b) in pairs {
                    let delta = match (a, b) {
                        (Some(a), Some(b)) => (a - b).abs(),
                        (None, None) => 0.0,
                        _ => f64::INFINITY,
                    };
                    // A NaN counts as the worst difference.
                    let delta = if delta.is_nan() { f64::INFINITY } else { delta };
                    if report.worst.is_none() || delta > report.max_delta {
                        report.max_delta = delta;
                        report.worst = Some(format!(
                            "{} / {} / {} ({field})",
                            old.country, old.prompt_id, old.dimension
                        ));
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_distinct_seeded_and_capped() {
        let a = sample_indices(100, 10, 7);
        assert_eq!(a, sample_indices(100, 10, 7));
        assert_ne!(a, sample_indices(100, 10, 8));
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
        assert!(a.iter().all(|&i| i < 100));
        let mut all = sample_indices(5, 50, 1);
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
    }
}
