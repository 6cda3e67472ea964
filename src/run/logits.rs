//! `hofbench run` in logits mode: encode the whole grid, cut it into the batches every run of
//! the folder shares, score the batches with unfinished items on the replicas, write their rows.

use super::grid::{batch_work, encode_work, grid, score_batch, shard_batches, Work};
use super::session::Session;
use crate::config::RunConfig;
use crate::engine::parallel::run_on_replicas;
use crate::manifest::{DeviceUse, Diagnostics};
use crate::results::ResultRow;
use crate::Result;
use std::ops::Range;
use std::time::Instant;

pub(crate) fn run(config: &RunConfig, random_weights: Option<&str>, quiet: bool) -> Result<()> {
    let mut session = Session::open(config, quiet)?;
    let t_load = Instant::now();
    let scorers = session.load_scorers(random_weights)?;
    let scorer = &scorers[0];
    if let Some(shape) = random_weights {
        session.model.name = format!("random-{}", crate::engine::models::random::config(shape)?.1);
    }
    let load_secs = t_load.elapsed().as_secs_f64();
    if !quiet {
        eprintln!(
            "loaded {} ({}) on {} in {:.1}s",
            session.model.name,
            scorer.model.describe(),
            super::load::device_list(&config.devices),
            load_secs
        );
    }
    let mut manifest = session.manifest(scorer, None, load_secs)?;

    let model = session.model.name.clone();
    let approach = config.approach.code();
    // The whole grid, batched as an unsharded run batches it (see `batch_work`); a shard
    // takes whole batches of it (see `shard`), and the finished items are skipped batch by
    // batch below.
    let t_encode = Instant::now();
    let full_grid = grid(&session.selection.items, session.countries());
    let grid_items = full_grid.len();
    let mut work = Vec::with_capacity(grid_items);
    for &(item, country) in &full_grid {
        work.push(encode_work(
            scorer,
            item,
            country,
            session.selection.translations.as_deref(),
        )?);
    }
    let encode_secs = t_encode.elapsed().as_secs_f64();
    let (batches, padded) = batch_work(&mut work, config.batch_size, config.max_batch_tokens);
    let batches = shard_batches(batches, config.shard);
    let items_total: usize = batches.iter().map(Range::len).sum();
    let writer = &mut session.writer;
    let key = |w: &Work| w.key(&model, approach);
    let pending: Vec<Range<usize>> = batches
        .iter()
        .filter(|b| work[(*b).clone()].iter().any(|w| !writer.is_done(&key(w))))
        .cloned()
        .collect();
    let to_score = batches
        .iter()
        .flat_map(|b| &work[b.clone()])
        .filter(|w| !writer.is_done(&key(w)))
        .count();

    manifest.items_total = items_total;
    manifest.grid_items = grid_items;
    manifest.timing.encode = encode_secs;
    manifest.devices = (config.devices.iter())
        .map(|d| DeviceUse {
            device: d.to_string(),
            ..DeviceUse::default()
        })
        .collect();
    let mut progress = session.start(&manifest, to_score, "items")?;
    let writer = &mut session.writer;
    let mut tokens = 0usize;
    let mut scored = 0usize;
    run_on_replicas(
        &scorers,
        &pending,
        |scorer, range| {
            let t_score = Instant::now();
            let scores = score_batch(scorer, &work[range.clone()])?;
            Ok((scores, t_score.elapsed().as_secs_f64()))
        },
        |replica, b, (scores, secs)| {
            let batch = &work[pending[b].clone()];
            let used = &mut manifest.devices[replica];
            used.batches += 1;
            used.items += batch.len();
            used.score_seconds += secs;
            manifest.timing.score += secs;
            manifest.timing.forward_passes += 1;
            tokens += batch
                .iter()
                .map(|w| w.ids[0].len() + w.ids[1].len())
                .sum::<usize>();
            // A batch cut by a kill is scored whole again; only its missing rows are written.
            let out: Vec<ResultRow> = batch
                .iter()
                .zip(&scores)
                .filter(|(w, _)| !writer.is_done(&key(w)))
                .map(|(w, s)| {
                    w.result_row(
                        &model,
                        approach,
                        s,
                        config.keep_text,
                        config.selection.bleu_threshold,
                    )
                })
                .collect();
            let t_write = Instant::now();
            writer.append(&out)?;
            manifest.timing.write += t_write.elapsed().as_secs_f64();
            scored += out.len();
            progress.advance(out.len());
            Ok(())
        },
    )?;
    let secs = progress.finish();
    Session::finish(&mut manifest, secs, scored, tokens);
    // Of the whole grid's batches: a property of the batching, the same on a resume.
    let grid_tokens: usize = work.iter().map(|w| w.ids[0].len() + w.ids[1].len()).sum();
    manifest.timing.computed_token_ratio = if grid_tokens > 0 {
        padded as f64 / grid_tokens as f64
    } else {
        0.0
    };
    let all_rows = crate::results::read(&config.out.join(crate::results::RESULTS_FILE))?.rows;
    let mine: Vec<ResultRow> = all_rows
        .into_iter()
        .filter(|r| r.model == model && r.approach == approach)
        .collect();
    manifest.diagnostics = Diagnostics::from_rows(&mine);
    let warnings = manifest
        .diagnostics
        .as_ref()
        .map_or_else(Vec::new, |d| d.warnings(&model));
    for warning in warnings {
        // Printed even with --quiet: it changes how the results should be read.
        eprintln!("{warning}");
        manifest.warnings.push(warning);
    }
    session.write_manifest(&manifest)?;
    if !quiet {
        let t = &manifest.timing;
        eprintln!(
            "scored {} items ({} prompts, {tokens} tokens) in {secs:.1}s: {:.1} items/s, {:.0} tok/s",
            scored,
            2 * scored,
            manifest.items_per_second,
            manifest.tokens_per_second
        );
        eprintln!(
            "time: load {:.1}s, encode {:.1}s, score {:.1}s ({} passes computing {:.2}x the prompt tokens), write {:.2}s",
            t.load, t.encode, t.score, t.forward_passes, t.computed_token_ratio, t.write
        );
        if let Some(d) = &manifest.diagnostics {
            eprintln!(
                "position bias: P(A) = {:.3} averaged over {} items and both orders (0.5 = none); \
                 mean label mass {:.3}",
                d.position_bias_p_a, d.rows, d.mean_label_mass
            );
        }
    }
    session.stats()
}
