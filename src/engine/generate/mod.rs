//! Free-text generation for `hofbench run --mode generate`: batched decoding with a KV cache
//! (`CausalLm::prefill` then one `decode_step` per new token over the rows still running),
//! Hugging Face's sampling processors ([`sampling`]) and one RNG stream per result row, so a
//! row's reply does not depend on the batch it ran in, its neighbours or a resume.

pub mod sampling;

use crate::engine::models::CausalLm;
use crate::engine::tokenizer::ModelTokenizer;
use crate::Result;
pub use sampling::{RowRng, Sampling};
use std::collections::HashSet;

/// Tokens that end a reply: the end-of-turn markers of the chat formats hofbench knows
/// (ChatML `<|im_end|>`, Gemma `<end_of_turn>`, Llama 3 `<|eot_id|>`, Phi `<|end|>`) where the
/// vocabulary has them as one token, and the model's EOS.
pub fn stop_tokens(tokenizer: &ModelTokenizer) -> Vec<u32> {
    const END_OF_TURN: [&str; 4] = ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>"];
    let mut stop: Vec<u32> = tokenizer.eos_id.into_iter().collect();
    for id in 0..tokenizer.vocab_size() as u32 {
        let is_end = tokenizer
            .token_text(id)
            .is_some_and(|t| END_OF_TURN.contains(&t.as_str()));
        if is_end && !stop.contains(&id) {
            stop.push(id);
        }
    }
    stop
}

/// When a reply ends.
#[derive(Clone, Copy, Default)]
pub struct Stop<'a> {
    /// Token ids that end a reply; they are not part of it.
    pub tokens: &'a [u32],
    /// Texts that end a reply, with the tokenizer that reads it: for chat formats whose turns
    /// end in text, not in a token (the plain format's "\nUser:"). The reply keeps the tokens
    /// up to the one that completes the text; [`cut_at_stop_text`] removes the text itself.
    pub texts: Option<(&'a ModelTokenizer, &'a [&'a str])>,
}

/// `text` up to the first of `stops` in it.
pub fn cut_at_stop_text<'t>(text: &'t str, stops: &[&str]) -> &'t str {
    let end = stops
        .iter()
        .filter_map(|s| text.find(s))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

/// One prompt to continue.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub prompt: &'a [u32],
    /// This row's random stream (unused when greedy).
    pub rng: RowRng,
}

/// What one prompt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The new tokens, without the stop token.
    pub tokens: Vec<u32>,
    /// Ended on a stop token (false: ran out of `max_new_tokens`).
    pub stopped: bool,
}

/// Continue every prompt by up to `max_new_tokens` tokens in one batch: one prefill pass,
/// then one step per token over the rows still running; a row leaves the batch when it
/// produces a stop token or reaches the limit. Replies come back in request order.
pub fn generate(
    model: &dyn CausalLm,
    requests: &[Request],
    sampling: &Sampling,
    max_new_tokens: usize,
    stop: Stop,
) -> Result<Vec<Reply>> {
    let mut replies: Vec<Reply> = requests
        .iter()
        .map(|_| Reply {
            tokens: Vec::new(),
            stopped: false,
        })
        .collect();
    if requests.is_empty() || max_new_tokens == 0 {
        return Ok(replies);
    }
    let prompts: Vec<&[u32]> = requests.iter().map(|r| r.prompt).collect();
    let mut rngs: Vec<RowRng> = requests.iter().map(|r| r.rng.clone()).collect();
    // What the repetition penalty looks at: prompt and generated ids.
    let mut seen: Vec<HashSet<u32>> = prompts
        .iter()
        .map(|p| p.iter().copied().collect())
        .collect();
    let (mut cache, mut logits) = model.prefill(&prompts, max_new_tokens)?;
    // Request index of each cache row.
    let mut live: Vec<usize> = (0..requests.len()).collect();
    loop {
        let rows = logits.to_vec2::<f32>()?;
        let mut keep = Vec::with_capacity(live.len());
        let mut next = Vec::with_capacity(live.len());
        for (row, (&r, mut l)) in live.iter().zip(rows).enumerate() {
            let token = sampling::next_token(&mut l, &seen[r], sampling, &mut rngs[r]);
            if stop.tokens.contains(&token) {
                replies[r].stopped = true;
                continue;
            }
            replies[r].tokens.push(token);
            seen[r].insert(token);
            if let Some((tokenizer, texts)) = stop.texts {
                let text = tokenizer.decode(&replies[r].tokens)?;
                if texts.iter().any(|t| text.contains(t)) {
                    replies[r].stopped = true;
                    continue;
                }
            }
            if replies[r].tokens.len() < max_new_tokens {
                keep.push(row);
                next.push(token);
            }
        }
        if keep.is_empty() {
            return Ok(replies);
        }
        cache.retain(&keep)?;
        live = keep.iter().map(|&k| live[k]).collect();
        logits = model.decode_step(&mut cache, &next)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_text_cuts_at_the_first_stop() {
        let stops = ["\nUser:", "###"];
        assert_eq!(cut_at_stop_text("Go.\n\nUser: and", &stops), "Go.\n");
        assert_eq!(cut_at_stop_text("a ### b\nUser:", &stops), "a ");
        assert_eq!(cut_at_stop_text("plain", &stops), "plain");
    }
}
