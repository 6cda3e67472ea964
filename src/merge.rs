//! `hofbench merge DIR… --out DIR`: combine the folders of `run --shard i/n` into one run
//! folder that `stats`, `report` and `verify` read like any other. Shards must come from the
//! same model, prompts and result-changing settings; a mixture, a shard given twice, rows in
//! two shards, or a missing or unfinished shard is refused with the folders it concerns.

use crate::config::MergeConfig;
use crate::manifest::{self, Diagnostics, Manifest, MergeInfo, MergedShard};
use crate::result_fields::{differences, Purpose, RunIdentity};
use crate::results::{self, ResultRow, RowKey};
use crate::shard::Shard;
use crate::{stats, Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn merge_command(args: &MergeConfig, quiet: bool) -> Result<()> {
    let (rows, info) = merge(&args.dirs, &args.out, args.allow_incomplete)?;
    let summary = stats::run(&args.out)?;
    if !quiet {
        println!("{summary}");
        eprintln!(
            "merged {rows} rows from {} shard(s) into {}",
            info.merged_from.len(),
            args.out.display()
        );
    }
    for line in incompleteness(&info) {
        // Printed even with --quiet: the merged run is not the whole grid.
        eprintln!("warning: {line}");
    }
    Ok(())
}

/// The fields of a manifest that change results or rows (`result_fields`, the list a resumed
/// run compares too), and the grid the shards cut.
fn result_fields(m: &Manifest) -> Vec<(String, String)> {
    let mut fields = RunIdentity::of(m).fields(Purpose::Merge);
    fields.push((
        "shard count".into(),
        m.shard.map_or("none".into(), |s| s.count.to_string()),
    ));
    fields.push(("grid_items".into(), m.grid_items.to_string()));
    fields
}

/// Merge shard folders into `out`. Returns the number of rows written and what was merged.
pub fn merge(dirs: &[PathBuf], out: &Path, allow_incomplete: bool) -> Result<(usize, MergeInfo)> {
    let manifests: Vec<Manifest> = dirs
        .iter()
        .map(|d| manifest::read(d))
        .collect::<Result<_>>()?;
    let mut by_index: HashMap<usize, &Path> = HashMap::new();
    for (dir, m) in dirs.iter().zip(&manifests) {
        let Some(shard) = m.shard else {
            return Err(Error::Incompatible(format!(
                "{} is not a shard: its manifest.json has no `shard` (made without --shard)",
                dir.display()
            )));
        };
        if let Some(other) = by_index.insert(shard.index, dir) {
            return Err(Error::Usage(format!(
                "{} and {} are both shard {shard}: give each shard once",
                other.display(),
                dir.display()
            )));
        }
    }
    let first = result_fields(&manifests[0]);
    for (dir, m) in dirs.iter().zip(&manifests).skip(1) {
        let differing: Vec<String> = differences(&result_fields(m), &first)
            .into_iter()
            .map(|(name, mine, theirs)| format!("{name} is {mine} there but {theirs}"))
            .collect();
        if !differing.is_empty() {
            return Err(Error::Incompatible(format!(
                "{} does not belong with {}: {} in {}; refusing to mix runs",
                dir.display(),
                dirs[0].display(),
                differing.join("; "),
                dirs[0].display()
            )));
        }
    }

    let count = manifests[0].shard.expect("checked above").count;
    let mut info = MergeInfo {
        missing_shards: (0..count)
            .filter(|i| !by_index.contains_key(i))
            .map(|index| Shard { index, count })
            .collect(),
        ..MergeInfo::default()
    };
    let mut rows: Vec<ResultRow> = Vec::new();
    let mut owner: HashMap<RowKey, &Path> = HashMap::new();
    for (dir, m) in dirs.iter().zip(&manifests) {
        let path = dir.join(results::RESULTS_FILE);
        let read = results::read(&path)?;
        let shard = m.shard.expect("checked above");
        for row in &read.rows {
            if row.model != m.model.name || row.approach != m.settings.approach {
                return Err(Error::Incompatible(format!(
                    "{}: a row of {} / {} in a run of {} / {}: not one run's output",
                    path.display(),
                    row.model,
                    row.approach,
                    m.model.name,
                    m.settings.approach
                )));
            }
            if let Some(other) = owner.insert(row.key(), dir) {
                return Err(Error::Incompatible(format!(
                    "{} / {} / {} is in both {} and {}: the shards overlap",
                    row.country,
                    row.prompt_id,
                    row.dimension,
                    other.display(),
                    dir.display()
                )));
            }
        }
        if read.rows.len() < m.items_total || m.finished.is_none() || read.torn_tail {
            info.incomplete.push(format!(
                "{} (shard {shard}) has {} of its {} items{}",
                dir.display(),
                read.rows.len(),
                m.items_total,
                if m.finished.is_none() {
                    ", its run did not finish"
                } else {
                    ""
                }
            ));
        }
        info.merged_from.push(MergedShard {
            dir: dir.display().to_string(),
            shard,
            rows: read.rows.len(),
            finished: m.finished.clone(),
            batch_size: m.settings.batch_size,
            max_batch_tokens: m.settings.max_batch_tokens,
        });
        rows.extend(read.rows);
    }
    if !allow_incomplete && (!info.missing_shards.is_empty() || !info.incomplete.is_empty()) {
        return Err(Error::Incompatible(format!(
            "{}; rerun those shards (the same command resumes) or pass --allow-incomplete",
            incompleteness(&info).join("; ")
        )));
    }
    info.merged_from.sort_by_key(|s| s.shard.index);

    let _lock = crate::lock::DirLock::acquire(out)?;
    let results_path = out.join(results::RESULTS_FILE);
    if std::fs::metadata(&results_path).is_ok_and(|m| m.len() > 0) {
        return Err(Error::Usage(format!(
            "{} already holds results; merge into an empty folder",
            out.display()
        )));
    }
    // The grid's order (dimension, prompt, country as in the built-in table), so that the
    // merged file and its stats tables read the same whatever the shards' timing was.
    let table = crate::countries::builtin();
    let position = |country: &str| table.iter().position(|c| c.name == country);
    rows.sort_by(|a, b| {
        (a.dimension, &a.prompt_id, position(&a.country), &a.country).cmp(&(
            b.dimension,
            &b.prompt_id,
            position(&b.country),
            &b.country,
        ))
    });
    write_rows(&results_path, &rows)?;
    manifest::write(out, &merged_manifest(&manifests, &rows, &info))?;
    Ok((rows.len(), info))
}

fn incompleteness(info: &MergeInfo) -> Vec<String> {
    let mut lines = Vec::new();
    if !info.missing_shards.is_empty() {
        let names: Vec<String> = info.missing_shards.iter().map(Shard::to_string).collect();
        lines.push(format!("missing shard(s) {}", names.join(", ")));
    }
    lines.extend(info.incomplete.iter().cloned());
    lines
}

/// Write all rows through a synced temporary file, then rename: the folder never holds a
/// partial merge.
fn write_rows(path: &Path, rows: &[ResultRow]) -> Result<()> {
    crate::files::write_atomic(path, &crate::files::to_lines(rows)?)
}

/// The first shard's manifest for the whole grid: counts and times summed over the shards,
/// diagnostics recomputed over all rows, and `merge` listing the shard folders.
fn merged_manifest(shards: &[Manifest], rows: &[ResultRow], info: &MergeInfo) -> Manifest {
    let mut m = shards[0].clone();
    m.shard = None;
    m.items_total = m.grid_items;
    m.started = shards.iter().map(|s| s.started.clone()).min().unwrap();
    m.finished = shards
        .iter()
        .map(|s| s.finished.clone())
        .collect::<Option<Vec<_>>>()
        .and_then(|f| f.into_iter().max());
    let sum = |f: fn(&Manifest) -> f64| shards.iter().map(f).sum::<f64>();
    m.items_scored_this_run = shards.iter().map(|s| s.items_scored_this_run).sum();
    m.tokens_this_run = shards.iter().map(|s| s.tokens_this_run).sum();
    m.seconds = sum(|s| s.seconds);
    let rate = |n: usize| {
        if m.seconds > 0.0 {
            n as f64 / m.seconds
        } else {
            0.0
        }
    };
    m.tokens_per_second = rate(m.tokens_this_run);
    m.items_per_second = rate(m.items_scored_this_run);
    m.timing.load = sum(|s| s.timing.load);
    m.timing.encode = sum(|s| s.timing.encode);
    m.timing.score = sum(|s| s.timing.score);
    m.timing.write = sum(|s| s.timing.write);
    m.timing.forward_passes = shards.iter().map(|s| s.timing.forward_passes).sum();
    m.devices = shards.iter().flat_map(|s| s.devices.clone()).collect();
    m.warnings = Vec::new();
    for w in shards.iter().flat_map(|s| &s.warnings) {
        if !m.warnings.contains(w) {
            m.warnings.push(w.clone());
        }
    }
    m.diagnostics = Diagnostics::from_rows(rows);
    m.merge = Some(info.clone());
    m
}
