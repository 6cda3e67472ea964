//! `hofbench run --mode generate`: the paper's method, free-text advice. Every (item,
//! country) gets `--rounds` replies, sampled with the paper's settings by default, written to
//! results.jsonl with `mode: "generate"`, `round`, `response` and `tokens_generated`.
//!
//! Round k shows the two actions high side first when k is odd and low side first when it
//! is even, so that the default two rounds balance the order the actions are listed in.
//! Each batch's replies are judged (`crate::judge`, `--judge MODEL`, by default the model that
//! wrote them, loaded once) before the batch is written, so a killed run never leaves an
//! unjudged row: `p_high` is 1 or 0 for the side the judge found, null when inconclusive, and
//! the judge's reading is kept in the row's `judge`.

use super::grid::grid;
use super::load::{load_replicas, weight_format};
use super::session::Session;
use crate::config::{GenerateConfig, RunConfig};
use crate::countries::Country;
use crate::engine::generate::{cut_at_stop_text, generate, stop_tokens, Request, RowRng, Stop};
use crate::fetch;
use crate::judge::{self, Judge, JudgeItem};
use crate::manifest::{GenerationSettings, JudgeInfo};
use crate::prompts::PromptItem;
use crate::results::{self, ResultRow};
use crate::template::{multilingual_generate_turn, personas_generate_turn, Order};
use crate::Result;
use std::time::Instant;

/// Where a model writing in the plain chat format starts the next turn.
const PLAIN_NEXT_TURN: &str = "\nUser:";

/// One reply to make.
struct Work<'a> {
    country: &'a Country,
    item: &'a PromptItem,
    round: u32,
    text: String,
    ids: Vec<u32>,
    lang: Option<String>,
    bleu: Option<f64>,
    /// What the judge reads: the request and the two actions in the prompt's language.
    request: &'a str,
    high_action: &'a str,
    low_action: &'a str,
}

/// Which way round the actions are listed in a round (1-based).
pub fn round_order(round: u32) -> Order {
    if round % 2 == 1 {
        Order::HighFirst
    } else {
        Order::LowFirst
    }
}

pub(crate) fn run(config: &RunConfig, generate_config: &GenerateConfig, quiet: bool) -> Result<()> {
    let GenerateConfig {
        sampling,
        max_new_tokens,
        rounds,
        seed,
        judge: judge_name,
    } = generate_config;
    let (max_new_tokens, rounds, seed) = (*max_new_tokens, *rounds, *seed);
    let mut session = Session::open(config, quiet)?;
    let model = &session.model;
    let device = &session.devices[0];
    let t_load = Instant::now();
    let scorer = session.load_scorers(None)?.remove(0);
    // The judge: the scored model itself unless --judge names another one.
    let judge_model = match judge_name.as_deref() {
        None => None,
        Some(name) => {
            let resolved = fetch::resolve(Some(name), quiet)?;
            (resolved.path != model.path).then_some(resolved)
        }
    };
    let judge_scorer = match &judge_model {
        None => None,
        Some(m) => Some(
            load_replicas(
                &m.path,
                std::slice::from_ref(device),
                weight_format(config.weights, &m.path, device)?,
                m.card.as_ref().and_then(|c| c.template.as_deref()),
                None,
            )?
            .remove(0),
        ),
    };
    let judge_info = JudgeInfo {
        model: judge_model
            .as_ref()
            .map_or(&model.name, |m| &m.name)
            .clone(),
        sha256: match &judge_model {
            None => session.model_sha.clone(),
            Some(m) => fetch::model_sha256(&m.path)?,
        },
        neither_band: judge::NEITHER_BAND,
        side_band: judge::SIDE_BAND,
        overlap_margin: judge::OVERLAP_MARGIN,
    };
    let judge = Judge::new(judge_scorer.as_ref().unwrap_or(&scorer))?;
    let load_secs = t_load.elapsed().as_secs_f64();
    if !quiet {
        eprintln!(
            "loaded {} ({}) in {load_secs:.1}s; judge: {}",
            model.name,
            scorer.model.describe(),
            judge_info.model
        );
    }
    let generation = GenerationSettings {
        sampling: sampling.clone(),
        max_new_tokens,
        rounds,
        seed,
        stop_tokens: stop_tokens(&scorer.tokenizer),
        judge: Some(judge_info),
        // The plain format (prompts/templates/plain.jinja) has no end-of-turn token: a model
        // that goes on writes the next "User:" turn.
        stop_texts: match scorer.chat.from_model {
            true => Vec::new(),
            false => vec![PLAIN_NEXT_TURN.to_string()],
        },
    };
    let stop_texts: Vec<&str> = generation.stop_texts.iter().map(String::as_str).collect();
    let mut manifest = session.manifest(&scorer, Some(generation.clone()), load_secs)?;

    let approach = config.approach.code();
    let shard = config.shard;
    let translations = &session.selection.translations;
    let t_encode = Instant::now();
    let mut work = Vec::new();
    // Shards are cut from the same canonical grid as a logits run's.
    let full_grid = grid(&session.selection.items, session.countries());
    for (k, &(item, country)) in full_grid.iter().enumerate() {
        if shard.is_some_and(|s| !s.contains(k)) {
            continue;
        }
        {
            let translated = translations.as_ref().map(|all| {
                let lang = all
                    .iter()
                    .find(|t| t.lang == country.nllb_code)
                    .expect("load_for_run covers every selected country's language");
                (lang, &lang.items[&item.id])
            });
            for round in 1..=rounds {
                let key = results::row_key(
                    &model.name,
                    approach,
                    item.dimension,
                    &country.name,
                    &item.id,
                    results::MODE_GENERATE,
                    round,
                );
                if session.writer.is_done(&key) {
                    continue;
                }
                let order = round_order(round);
                let turn = match translated {
                    None => personas_generate_turn(&country.persona_name, item, order)?,
                    Some((lang, _)) => {
                        multilingual_generate_turn(&lang.translated_item(item), order)?
                    }
                };
                let (text, ids) = scorer.encode_user_turn(&turn)?;
                work.push(Work {
                    country,
                    item,
                    round,
                    text,
                    ids,
                    lang: translated.map(|(l, _)| l.lang.clone()),
                    bleu: translated.and_then(|(_, rows)| rows[0].bleu),
                    request: translated.map_or(&item.request, |(_, r)| &r[0].translation),
                    high_action: translated.map_or(&item.high_action, |(_, r)| &r[1].translation),
                    low_action: translated.map_or(&item.low_action, |(_, r)| &r[2].translation),
                });
            }
        }
    }
    let encode_secs = t_encode.elapsed().as_secs_f64();
    let grid_items = full_grid.len();
    let rows_total = shard.map_or(grid_items, |s| s.len_of(grid_items)) * rounds as usize;
    // Similar lengths together waste less on padding; the sort is stable, so runs repeat.
    work.sort_by_key(|w| w.ids.len());
    let batches = prompt_batches(
        &work.iter().map(|w| w.ids.len()).collect::<Vec<_>>(),
        config.batch_size,
        config.max_batch_tokens,
    );

    manifest.items_total = rows_total;
    manifest.grid_items = grid_items * rounds as usize;
    manifest.timing.encode = encode_secs;
    let mut progress = session.start(&manifest, work.len(), "replies")?;
    let mut generated = 0usize;
    let mut prompt_tokens = 0usize;
    let mut judge_secs = 0.0;
    for range in batches {
        let batch = &work[range];
        let requests: Vec<Request> = batch
            .iter()
            .map(|w| Request {
                prompt: &w.ids,
                rng: RowRng::for_row(
                    seed,
                    &model.name,
                    approach,
                    &w.country.name,
                    &w.item.id,
                    w.round,
                ),
            })
            .collect();
        let t_gen = Instant::now();
        let replies = generate(
            scorer.model.as_ref(),
            &requests,
            sampling,
            max_new_tokens,
            Stop {
                tokens: &generation.stop_tokens,
                texts: (!stop_texts.is_empty()).then_some((&scorer.tokenizer, &stop_texts[..])),
            },
        )?;
        manifest.timing.score += t_gen.elapsed().as_secs_f64();
        manifest.timing.forward_passes +=
            1 + replies.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        prompt_tokens += batch.iter().map(|w| w.ids.len()).sum::<usize>();
        let texts: Vec<String> = replies
            .iter()
            .map(|r| {
                let text = scorer.tokenizer.decode(&r.tokens)?;
                Ok(cut_at_stop_text(&text, &stop_texts).to_string())
            })
            .collect::<Result<_>>()?;
        let judge_items: Vec<JudgeItem> = batch
            .iter()
            .zip(&texts)
            .map(|(w, text)| JudgeItem {
                request: w.request,
                high_action: w.high_action,
                low_action: w.low_action,
                reply: text,
                name: format!("{}/{}/round {}", w.country.name, w.item.id, w.round),
            })
            .collect();
        let t_judge = Instant::now();
        let readings = judge.judge(&judge_items, config.batch_size, config.max_batch_tokens)?;
        judge_secs += t_judge.elapsed().as_secs_f64();
        let mut out = Vec::with_capacity(batch.len());
        for (((w, reply), text), reading) in batch.iter().zip(&replies).zip(texts).zip(readings) {
            generated += reply.tokens.len();
            out.push(ResultRow {
                model: model.name.clone(),
                approach: approach.to_string(),
                dimension: w.item.dimension,
                country: w.country.name.clone(),
                language: w.country.language.clone(),
                tier: w.country.tier,
                prompt_id: w.item.id.clone(),
                mode: results::MODE_GENERATE.to_string(),
                p_high: reading.verdict.p_high(),
                p_high_by_order: None,
                label_mass: None,
                hofstede_score: w.country.score(w.item.dimension),
                high_side: w.country.high_side(w.item.dimension),
                // The one prompt in its order's slot (high first, low first), the other empty.
                rendered: config.keep_text.then(|| match round_order(w.round) {
                    Order::HighFirst => [w.text.clone(), String::new()],
                    Order::LowFirst => [String::new(), w.text.clone()],
                }),
                lang: w.lang.clone(),
                translation_bleu: w.bleu,
                low_bleu: w.bleu.is_some_and(|b| b < config.selection.bleu_threshold),
                response: Some(text),
                round: Some(w.round),
                tokens_generated: Some(reply.tokens.len()),
                judge: Some(reading),
            });
        }
        let t_write = Instant::now();
        session.writer.append(&out)?;
        manifest.timing.write += t_write.elapsed().as_secs_f64();
        progress.advance(batch.len());
    }
    let secs = progress.finish();
    Session::finish(&mut manifest, secs, work.len(), generated);
    session.write_manifest(&manifest)?;
    if !quiet {
        eprintln!(
            "generated {} replies ({generated} new tokens, {prompt_tokens} prompt tokens) in \
             {secs:.1}s: {:.0} new tok/s",
            work.len(),
            manifest.tokens_per_second
        );
    }
    if !quiet {
        eprintln!("judged them in {judge_secs:.1}s");
    }
    session.stats()
}

/// Cut length-sorted prompts into consecutive batches of at most `max_rows` prompts whose
/// padded prefill (rows × longest) stays within `max_tokens` (one prompt always makes a batch).
pub fn prompt_batches(
    lens: &[usize],
    max_rows: usize,
    max_tokens: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < lens.len() {
        let mut end = start + 1;
        let mut longest = lens[start];
        while end < lens.len() && end - start < max_rows.max(1) {
            let l = longest.max(lens[end]);
            if (end + 1 - start) * l > max_tokens {
                break;
            }
            longest = l;
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_rows_and_tokens() {
        let lens = [10, 10, 10, 30, 30];
        assert_eq!(prompt_batches(&lens, 2, 1000), vec![0..2, 2..4, 4..5]);
        assert_eq!(prompt_batches(&lens, 8, 60), vec![0..3, 3..5]);
        assert_eq!(prompt_batches(&lens, 8, 1).len(), 5);
    }

    #[test]
    fn rounds_alternate_the_action_order() {
        assert_eq!(round_order(1), Order::HighFirst);
        assert_eq!(round_order(2), Order::LowFirst);
        assert_eq!(round_order(3), Order::HighFirst);
    }
}
