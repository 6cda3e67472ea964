//! The loaded model the scorer and the judge run: weights, tokenizer, chat template, the A/B
//! label tokens and the run's system turn (`LoadedModel`), with prompt encoding (`encode_with_bos`)
//! and the batching of items under a token budget (`token_budget_batches`). What an item
//! scores is `item_scorer`'s; how labels are read off logits is `readout`'s.

use crate::engine::chat_template::ChatTemplate;
use crate::engine::gguf::GgufFile;
use crate::engine::models::{self, CausalLm, PrefixGroup, WeightFormat};
use crate::engine::readout::LabelTokens;
use crate::engine::tokenizer::{HfPromptConfig, ModelTokenizer};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use std::path::Path;

/// Tokenize rendered prompt text with exactly one BOS where the model wants one: a template
/// that already writes the BOS token does not get a second.
pub fn encode_with_bos(tokenizer: &ModelTokenizer, text: &str) -> Result<Vec<u32>> {
    let mut ids = tokenizer.encode(text)?;
    if let (true, Some(bos)) = (tokenizer.add_bos, tokenizer.bos_id) {
        if ids.first() != Some(&bos) {
            ids.insert(0, bos);
        }
    }
    Ok(ids)
}

/// Tokens the forward passes compute for a batch of items whose two orders share a prefix,
/// padding included: the prefixes as one padded pass, then both orders' continuations as
/// another (see `CausalLm::next_token_logits_grouped`).
fn padded_tokens(items: usize, longest_prefix: usize, longest_rest: usize) -> usize {
    items * (longest_prefix + 2 * longest_rest)
}

/// Cut length-sorted items (each the two option orders' token ids) into consecutive batches of
/// at most `max_items` items whose padded token count stays within `max_tokens` (a single
/// item always makes a batch): short prompts run many to a pass, long ones few, at a steady
/// memory cost. Returns the batches and the padded tokens they compute.
pub fn token_budget_batches(
    items: &[[&[u32]; 2]],
    max_items: usize,
    max_tokens: usize,
) -> (Vec<std::ops::Range<usize>>, usize) {
    let shapes: Vec<(usize, usize)> = items
        .iter()
        .map(|pair| {
            let prefix = PrefixGroup::split(pair).prefix.len();
            (prefix, pair[0].len().max(pair[1].len()) - prefix)
        })
        .collect();
    let mut out = Vec::new();
    let mut padded = 0;
    let mut start = 0;
    while start < items.len() {
        let (mut prefix, mut rest) = shapes[start];
        let mut end = start + 1;
        while end < items.len() && end - start < max_items.max(1) {
            let (p, r) = (prefix.max(shapes[end].0), rest.max(shapes[end].1));
            if padded_tokens(end + 1 - start, p, r) > max_tokens {
                break;
            }
            (prefix, rest) = (p, r);
            end += 1;
        }
        padded += padded_tokens(end - start, prefix, rest);
        out.push(start..end);
        start = end;
    }
    (out, padded)
}

/// A loaded model with everything needed to turn a user turn into next-token logits
/// (`item_scorer::ItemScorer` reads them into an item's score).
pub struct LoadedModel {
    pub model: Box<dyn CausalLm>,
    pub tokenizer: ModelTokenizer,
    pub chat: ChatTemplate,
    pub labels: LabelTokens,
    /// `run --system`: a system turn before every prompt of the run (not the judge's).
    pub system: Option<String>,
}

/// A model file's loading error that does not say which file (a shape the forward pass
/// refuses, a tokenizer error) gets the file's path: the file is untrusted input, and the user
/// must know which one to replace.
fn naming(path: &Path, e: Error) -> Error {
    match e {
        Error::Io { .. } | Error::BadInput { .. } | Error::Model { .. } => e,
        other => Error::model_from(path, "cannot load the model", other),
    }
}

impl LoadedModel {
    /// Load a GGUF file, or a Hugging Face model folder (config.json, safetensors,
    /// tokenizer.json, tokenizer_config.json).
    pub fn load(path: &Path, device: &Device, format: WeightFormat) -> Result<Self> {
        if path.is_dir() {
            return Self::load_hf(path, device, format);
        }
        let mut gguf = GgufFile::open(path)?;
        let tokenizer =
            ModelTokenizer::from_gguf(&gguf.content, path).map_err(|e| naming(path, e))?;
        let template = gguf.optional("tokenizer.chat_template", GgufFile::string)?;
        let token = |id: Option<u32>| id.and_then(|i| tokenizer.token_text(i)).unwrap_or_default();
        let chat = ChatTemplate::new(
            template.as_deref(),
            &token(tokenizer.bos_id),
            &token(tokenizer.eos_id),
        )
        .map_err(|e| Error::model_from(path, "unusable chat template", e))?;
        let model = models::load_gguf(&mut gguf, device, format).map_err(|e| naming(path, e))?;
        Self::new(path, model, tokenizer, chat)
    }

    /// A Hugging Face folder: the tokenizer from tokenizer.json, the chat template and the
    /// BOS/EOS tokens from tokenizer_config.json (or chat_template.jinja).
    fn load_hf(dir: &Path, device: &Device, format: WeightFormat) -> Result<Self> {
        let prompt = HfPromptConfig::read(dir)?;
        let tokenizer = ModelTokenizer::from_hf_dir(dir, &prompt).map_err(|e| naming(dir, e))?;
        let chat = ChatTemplate::new(
            prompt.chat_template.as_deref(),
            prompt.bos_token.as_deref().unwrap_or_default(),
            prompt.eos_token.as_deref().unwrap_or_default(),
        )
        .map_err(|e| Error::model_from(dir, "unusable chat template", e))?;
        let model = models::load_hf(dir, device, format).map_err(|e| naming(dir, e))?;
        Self::new(dir, model, tokenizer, chat)
    }

    fn new(
        path: &Path,
        model: Box<dyn CausalLm>,
        tokenizer: ModelTokenizer,
        chat: ChatTemplate,
    ) -> Result<Self> {
        // The template is the file's code: try it once here, so that one that loops, blows
        // up or raises fails the load with the file's name, not a run midway.
        chat.render_user_turn("Should I stay or go?")
            .map_err(|e| Error::model_from(path, "the chat template fails", e))?;
        // One token through the model: shapes its config claims but its weights do not
        // back fail here, naming the file, rather than in the first batch of a run.
        model
            .next_token_logits(&[&[0]])
            .map_err(|e| naming(path, e))?;
        let labels = LabelTokens::from_tokenizer(&tokenizer)?;
        if tokenizer.vocab_size() > model.vocab_size() {
            return Err(Error::model(
                path,
                format!(
                    "tokenizer has {} tokens but the model only {}",
                    tokenizer.vocab_size(),
                    model.vocab_size()
                ),
            ));
        }
        Ok(Self {
            model,
            tokenizer,
            chat,
            labels,
            system: None,
        })
    }

    /// Render a user turn (after the run's system turn, if any) through the chat template and
    /// tokenize it, with exactly one BOS where the model wants one.
    pub fn encode_user_turn(&self, content: &str) -> Result<(String, Vec<u32>)> {
        self.encode_turn(self.system.as_deref(), content)
    }

    /// As `encode_user_turn`, with the given system turn instead of the run's.
    pub fn encode_turn(&self, system: Option<&str>, content: &str) -> Result<(String, Vec<u32>)> {
        let text = self.chat.render_turn(system, content)?;
        let ids = encode_with_bos(&self.tokenizer, &text)?;
        Ok((text, ids))
    }

    /// Next-token logits at the last position of each row, a (rows, vocab) f32 tensor on the
    /// model's device. With `share_prefix`, consecutive rows in runs of `share_prefix` (the
    /// option orders of one item) run their common prefix once.
    pub fn next_token_logits(&self, rows: &[&[u32]], share_prefix: usize) -> Result<Tensor> {
        if share_prefix > 1 {
            let groups: Vec<PrefixGroup> =
                rows.chunks(share_prefix).map(PrefixGroup::split).collect();
            self.model.next_token_logits_grouped(&groups)
        } else {
            self.model.next_token_logits(rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_item_and_token_budgets() {
        // Items of 10 shared + 2 own tokens, then longer ones of 10 + 20.
        let short: Vec<u32> = (0..12).collect();
        let short_b: Vec<u32> = (0..10).chain([90, 91]).collect();
        let long: Vec<u32> = (0..30).collect();
        let long_b: Vec<u32> = (0..10).chain(50..70).collect();
        let mut items = vec![[&short[..], &short_b[..]]; 5];
        items.extend(vec![[&long[..], &long_b[..]]; 3]);
        // A short item costs 10 + 2 * 2 = 14 tokens, a long one 10 + 2 * 20 = 50.
        let (b, padded) = token_budget_batches(&items, 4, 60);
        assert_eq!(b, vec![0..4, 4..5, 5..6, 6..7, 7..8]);
        assert_eq!(padded, 4 * 14 + 14 + 3 * 50);
        // Mixing a short and a long item pads the short one to the long one's length.
        let (b, padded) = token_budget_batches(&items, 8, 100);
        assert_eq!(b, vec![0..5, 5..7, 7..8]);
        assert_eq!(padded, 5 * 14 + 2 * 50 + 50);
        // One item over the budget still runs, alone.
        let (b, _) = token_budget_batches(&items, 8, 1);
        assert_eq!(b.len(), 8);
    }
}
