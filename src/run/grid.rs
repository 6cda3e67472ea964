//! The item grid of a run and the logits mode's item: the canonical (prompt, country) order
//! shards are cut from, each item's two option orders rendered and tokenized (`Work`), the
//! batches every run of a folder shares, one forward pass per batch and the row it becomes.

use crate::countries::{self, Country};
use crate::engine::loaded_model::{token_budget_batches, LoadedModel};
use crate::item_scorer::{EncodedItem, ItemScore, ItemScorer};
use crate::prompts::PromptItem;
use crate::results::{self, ResultRow};
use crate::shard::Shard;
use crate::template::{multilingual_user_turn, personas_user_turn, Order};
use crate::translate::LanguageTexts;
use crate::Result;
use std::ops::Range;

/// One (country, prompt) pair with its two tokenized prompts.
pub(crate) struct Work<'a> {
    pub country: &'a Country,
    pub item: &'a PromptItem,
    pub texts: [String; 2],
    pub ids: [Vec<u32>; 2],
    /// Multilingual approach: the prompt's NLLB language and its request's round-trip BLEU.
    pub lang: Option<String>,
    pub bleu: Option<f64>,
}

impl Work<'_> {
    /// The key of this item's row in results.jsonl.
    pub(crate) fn key(&self, model: &str, approach: &str) -> results::RowKey {
        results::row_key(
            model,
            approach,
            self.item.dimension,
            &self.country.name,
            &self.item.id,
            results::MODE_LOGITS,
            0,
        )
    }

    /// The row of this item's `score` (see `ItemScorer::score`).
    pub(crate) fn result_row(
        &self,
        model: &str,
        approach: &str,
        score: &ItemScore,
        keep_text: bool,
        bleu_threshold: f64,
    ) -> ResultRow {
        let dim = self.item.dimension;
        ResultRow {
            model: model.to_string(),
            approach: approach.to_string(),
            dimension: dim,
            country: self.country.name.clone(),
            language: self.country.language.clone(),
            tier: self.country.tier,
            prompt_id: self.item.id.clone(),
            mode: results::MODE_LOGITS.to_string(),
            p_high: Some(score.p_high),
            p_high_by_order: Some(score.p_high_by_order),
            label_mass: Some(score.label_mass),
            hofstede_score: self.country.score(dim),
            high_side: self.country.high_side(dim),
            rendered: keep_text.then(|| self.texts.clone()),
            lang: self.lang.clone(),
            translation_bleu: self.bleu,
            low_bleu: self.bleu.is_some_and(|b| b < bleu_threshold),
            response: None,
            round: None,
            tokens_generated: None,
            judge: None,
        }
    }
}

/// The item grid in its canonical order: dimensions in their fixed order, prompts in
/// prompt-set order, countries in the built-in table's order, whatever order the command line
/// listed them in. Shards (`--shard`) are cut from this order.
pub(crate) fn grid<'a>(
    items: &'a [PromptItem],
    countries: &'a [Country],
) -> Vec<(&'a PromptItem, &'a Country)> {
    let table = countries::builtin();
    let table_position = |c: &Country| {
        table
            .iter()
            .position(|t| t.name == c.name)
            .unwrap_or(usize::MAX)
    };
    let mut items: Vec<&PromptItem> = items.iter().collect();
    items.sort_by_key(|i| i.dimension); // stable: prompt-set order within a dimension
    let mut countries: Vec<&Country> = countries.iter().collect();
    countries.sort_by_key(|c| table_position(c));
    items
        .iter()
        .flat_map(|&item| countries.iter().map(move |&country| (item, country)))
        .collect()
}

/// Render and tokenize both option orders of one (country, prompt) pair.
pub(crate) fn encode_work<'a>(
    scorer: &LoadedModel,
    item: &'a PromptItem,
    country: &'a Country,
    translations: Option<&[LanguageTexts]>,
) -> Result<Work<'a>> {
    let mut texts: [String; 2] = Default::default();
    let mut ids: [Vec<u32>; 2] = Default::default();
    let translated = translations.map(|all| {
        let lang = all
            .iter()
            .find(|t| t.lang == country.nllb_code)
            .expect("load_for_run covers every selected country's language");
        (lang, &lang.items[&item.id])
    });
    for (k, order) in Order::BOTH.into_iter().enumerate() {
        let turn = match translated {
            None => personas_user_turn(&country.persona_name, item, order)?,
            Some((lang, _)) => multilingual_user_turn(&lang.translated_item(item), order)?,
        };
        (texts[k], ids[k]) = scorer.encode_user_turn(&turn)?;
    }
    Ok(Work {
        country,
        item,
        texts,
        ids,
        lang: translated.map(|(l, _)| l.lang.clone()),
        bleu: translated.and_then(|(_, rows)| rows[0].bleu),
    })
}

/// Sort work by length and cut it into batches under the token budget. Runs (and `verify`)
/// always batch a folder's whole grid this way, whatever was finished before: a row's
/// probabilities depend on its batch neighbours' padding at the float-rounding level, so
/// keeping the batches fixed makes a resumed run and a re-score bit-identical to a run made
/// in one go.
pub(crate) fn batch_work(
    work: &mut [Work],
    batch_size: usize,
    max_batch_tokens: usize,
) -> (Vec<Range<usize>>, usize) {
    // Similar lengths together waste less on padding; the sort is stable, so runs repeat.
    work.sort_by_key(|w| w.ids[0].len().max(w.ids[1].len()));
    let pairs: Vec<[&[u32]; 2]> = work
        .iter()
        .map(|w| [&w.ids[0][..], &w.ids[1][..]])
        .collect();
    token_budget_batches(&pairs, batch_size, max_batch_tokens)
}

/// The batches of `shard` among the whole grid's `batches` (all of them without a shard).
pub(crate) fn shard_batches(batches: Vec<Range<usize>>, shard: Option<Shard>) -> Vec<Range<usize>> {
    batches
        .into_iter()
        .enumerate()
        .filter(|(b, _)| shard.is_none_or(|s| s.contains_batch(*b)))
        .map(|(_, range)| range)
        .collect()
}

/// One forward pass over a batch of items: each item's score, in item order.
pub(crate) fn score_batch(scorer: &LoadedModel, batch: &[Work]) -> Result<Vec<ItemScore>> {
    let items: Vec<EncodedItem> = batch
        .iter()
        .map(|w| EncodedItem {
            orders: [&w.ids[0][..], &w.ids[1][..]],
            name: format!("{}/{}", w.country.name, w.item.id),
        })
        .collect();
    ItemScorer::new(scorer).score(&items)
}
