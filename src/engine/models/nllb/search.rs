//! Decoding translations as transformers' `generate` does for NLLB: greedy and beam search,
//! the target language forced as the first generated token, `</s>` forced at the maximum
//! length.

use super::model::{DecoderCache, NllbModel};
use crate::{Error, Result};

impl NllbModel {
    /// Translate tokenized sources into the target language `tgt_lang` (a token id).
    /// Returns, per row, the generated ids after the decoder start token: the target language
    /// code, the translation and `</s>` (absent when the row reached the maximum length).
    pub fn generate(
        &self,
        sources: &[Vec<u32>],
        tgt_lang: u32,
        opts: &GenerateOptions,
    ) -> Result<Vec<Vec<u32>>> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        for s in sources {
            if s.len() > self.config.max_position_embeddings {
                return Err(Error::ModelLimit(format!(
                    "a source of {} tokens exceeds the model's {} positions",
                    s.len(),
                    self.config.max_position_embeddings
                )));
            }
        }
        let longest = sources.iter().map(Vec::len).max().unwrap_or(0);
        let max_length = opts
            .max_length
            .resolve(longest)
            .min(self.config.max_position_embeddings);
        // The decoder prompt is [decoder start]; the target language is the first generated
        // token, forced (log-probability 0), as `forced_bos_token_id` does in the reference.
        // Both are fed in one pass.
        if max_length < 3 {
            return Err(Error::Usage(format!(
                "max length {max_length} leaves no room for a translation"
            )));
        }
        let (_, cache) = self.encode(sources)?;
        if opts.beams <= 1 {
            self.greedy(cache, sources.len(), tgt_lang, max_length)
        } else {
            self.beam_search(cache, sources.len(), tgt_lang, max_length, opts)
        }
    }

    /// Log-probabilities of one row of logits, in f32 like the reference's log_softmax.
    fn log_softmax(row: &[f32]) -> Vec<f32> {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        let lse = max + sum.ln();
        row.iter().map(|&v| v - lse).collect()
    }

    fn force_eos_if_last(&self, scores: &mut [f32], cur_len: usize, max_length: usize) {
        if let Some(eos) = self.config.forced_eos_token_id {
            if cur_len + 1 == max_length {
                for (i, s) in scores.iter_mut().enumerate() {
                    *s = if i as u32 == eos {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    };
                }
            }
        }
    }

    fn greedy(
        &self,
        mut cache: DecoderCache,
        n: usize,
        tgt_lang: u32,
        max_length: usize,
    ) -> Result<Vec<Vec<u32>>> {
        let eos = self.config.eos_token_id;
        let start = self.config.decoder_start_token_id;
        let mut out: Vec<Vec<u32>> = vec![vec![tgt_lang]; n];
        // Rows still generating, as indices into `out`; finished rows leave the batch.
        let mut live: Vec<usize> = (0..n).collect();
        let mut step_ids: Vec<Vec<u32>> = vec![vec![start, tgt_lang]; n];
        let mut cur_len = 2; // start token + language code
        while !live.is_empty() && cur_len < max_length {
            let logits = self.decode_last(&step_ids, &mut cache)?.to_vec2::<f32>()?;
            let mut keep = Vec::new();
            let mut next_live = Vec::new();
            for (r, row) in logits.into_iter().enumerate() {
                let mut scores = row;
                self.force_eos_if_last(&mut scores, cur_len, max_length);
                let tok = argmax(&scores);
                let o = live[r];
                out[o].push(tok);
                if tok != eos {
                    keep.push(r as u32);
                    next_live.push(o);
                }
            }
            cur_len += 1;
            if next_live.len() != live.len() && !next_live.is_empty() {
                cache = cache.select_rows(&keep)?;
            }
            step_ids = next_live
                .iter()
                .map(|&o| vec![*out[o].last().unwrap()])
                .collect();
            live = next_live;
        }
        Ok(out)
    }

    /// Beam search as the reference's `_beam_search` with `early_stopping=False`: at each
    /// step the top 2·beams continuations; those ending in `</s>` among the top `beams` become
    /// hypotheses scored by sum(log p) / generated_len^length_penalty; a source is done when
    /// its best running beam cannot beat its worst kept hypothesis.
    fn beam_search(
        &self,
        cache: DecoderCache,
        n: usize,
        tgt_lang: u32,
        max_length: usize,
        opts: &GenerateOptions,
    ) -> Result<Vec<Vec<u32>>> {
        const NEG: f32 = -1.0e9;
        let beams = opts.beams;
        let k_keep = 2 * beams;
        let eos = self.config.eos_token_id;
        let start = self.config.decoder_start_token_id;
        let prompt_len = 1usize;
        let lp = opts.length_penalty;
        let vocab = self.vocab_size();
        if vocab < k_keep {
            return Err(Error::Usage(format!(
                "{beams} beams need a vocabulary of at least {k_keep} tokens"
            )));
        }

        struct Item {
            /// Running beams: generated ids (after the start token) and accumulated log-prob.
            running: Vec<(Vec<u32>, f32)>,
            /// Kept hypotheses: ids, score, finished flag (placeholders start at NEG).
            finished: Vec<(Vec<u32>, f32, bool)>,
            improvable: bool,
        }
        let mut items: Vec<Item> = (0..n)
            .map(|_| Item {
                running: (0..beams)
                    .map(|b| (vec![tgt_lang], if b == 0 { 0.0 } else { NEG }))
                    .collect(),
                finished: (0..beams).map(|_| (Vec::new(), NEG, false)).collect(),
                improvable: true,
            })
            .collect();

        // Every beam of a source starts from the same prefix: run it once per source, then
        // repeat the cache rows.
        let mut cache = cache;
        let prefix: Vec<Vec<u32>> = vec![vec![start, tgt_lang]; n];
        let first = self.decode_last(&prefix, &mut cache)?.to_vec2::<f32>()?;
        let repeat: Vec<u32> = (0..n as u32)
            .flat_map(|i| std::iter::repeat_n(i, beams))
            .collect();
        cache = cache.select_rows(&repeat)?;
        let mut logits: Vec<Vec<f32>> = repeat.iter().map(|&i| first[i as usize].clone()).collect();
        let mut live: Vec<usize> = (0..n).collect();
        let mut cur_len = 2usize;

        loop {
            // Rows of `logits` are live items × beams, in `live` order.
            let mut next_rows: Vec<u32> = Vec::new();
            let mut next_tokens: Vec<Vec<u32>> = Vec::new();
            let mut still_live = Vec::new();
            let mut all_hit = true;
            for (li, &it) in live.iter().enumerate() {
                let item = &mut items[it];
                // Accumulated scores over beams × vocab.
                let mut cand: Vec<(f32, usize, u32)> = Vec::with_capacity(beams * vocab);
                for b in 0..beams {
                    let mut lps = Self::log_softmax(&logits[li * beams + b]);
                    self.force_eos_if_last(&mut lps, cur_len, max_length);
                    let base = item.running[b].1;
                    cand.extend(
                        lps.iter()
                            .enumerate()
                            .map(|(v, &l)| (l + base, b, v as u32)),
                    );
                }
                let top = top_k(cand, k_keep);
                let hits: Vec<bool> = top
                    .iter()
                    .map(|&(_, _, tok)| tok == eos || cur_len + 1 >= max_length)
                    .collect();
                all_hit &= hits.iter().all(|&h| h);
                // Next running beams: the best non-finished continuations.
                let run_scores: Vec<(f32, usize)> = top
                    .iter()
                    .zip(&hits)
                    .enumerate()
                    .map(|(k, (&(s, _, _), &h))| (s + if h { NEG } else { 0.0 }, k))
                    .collect();
                let chosen = top_k_indexed(run_scores, beams);
                let new_running: Vec<(Vec<u32>, f32)> = chosen
                    .iter()
                    .map(|&(s, k)| {
                        let (_, b, tok) = top[k];
                        let mut ids = item.running[b].0.clone();
                        ids.push(tok);
                        (ids, s)
                    })
                    .collect();
                // Finished hypotheses: merge the newly finished among the top `beams`.
                let gen_len = (cur_len + 1 - prompt_len) as f32;
                let mut merged = item.finished.clone();
                for (k, &(s, b, tok)) in top.iter().enumerate() {
                    let just_finished = hits[k] && k < beams;
                    let mut score = s / gen_len.powf(lp);
                    if !item.improvable {
                        score += NEG;
                    }
                    if !just_finished {
                        score += NEG;
                    }
                    let mut ids = item.running[b].0.clone();
                    ids.push(tok);
                    merged.push((ids, score, just_finished));
                }
                let order = top_k_indexed(
                    merged.iter().enumerate().map(|(i, m)| (m.1, i)).collect(),
                    beams,
                );
                item.finished = order.iter().map(|&(_, i)| merged[i].clone()).collect();
                // Which old beam each new running beam continues, for the cache.
                for &(_, k) in &chosen {
                    next_rows.push((li * beams + top[k].1) as u32);
                    next_tokens.push(vec![top[k].2]);
                }
                item.running = new_running;
                // Early-stop heuristic (early_stopping=False): can the best running beam,
                // at the current length, still beat the worst kept hypothesis?
                let next_len = cur_len + 1;
                let best = item.running[0].1 / ((next_len - prompt_len) as f32).powf(lp);
                let worst = item
                    .finished
                    .iter()
                    .map(|f| f.1)
                    .fold(f32::INFINITY, f32::min);
                let improvable_now = item
                    .finished
                    .iter()
                    .any(|f| best > if f.2 { worst } else { NEG });
                item.improvable &= improvable_now;
                still_live.push((li, it));
            }
            cur_len += 1;
            // Items that cannot improve are final; the rest continue.
            let mut keep_rows = Vec::new();
            let mut keep_tokens = Vec::new();
            let mut new_live = Vec::new();
            for (li, it) in still_live {
                if items[it].improvable {
                    new_live.push(it);
                    keep_rows.extend_from_slice(&next_rows[li * beams..(li + 1) * beams]);
                    keep_tokens.extend_from_slice(&next_tokens[li * beams..(li + 1) * beams]);
                }
            }
            if all_hit || new_live.is_empty() || cur_len >= max_length {
                break;
            }
            cache = cache.select_rows(&keep_rows)?;
            logits = self
                .decode_last(&keep_tokens, &mut cache)?
                .to_vec2::<f32>()?;
            live = new_live;
        }
        Ok(items
            .into_iter()
            .map(|it| {
                it.finished
                    .into_iter()
                    .next()
                    .map(|f| f.0)
                    .unwrap_or_default()
            })
            .collect())
    }
}

/// Index of the largest value; the first on ties (like torch.argmax).
fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// The k best candidates by score, best first; earlier candidates first on ties.
fn top_k(mut cand: Vec<(f32, usize, u32)>, k: usize) -> Vec<(f32, usize, u32)> {
    let cmp = |a: &(f32, usize, u32), b: &(f32, usize, u32)| {
        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
    };
    if cand.len() > k {
        cand.select_nth_unstable_by(k - 1, cmp);
        cand.truncate(k);
    }
    cand.sort_by(cmp);
    cand
}

fn top_k_indexed(mut v: Vec<(f32, usize)>, k: usize) -> Vec<(f32, usize)> {
    v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    v.truncate(k);
    v
}

/// How long a translation may get, counting the decoder start and language tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxLength {
    /// Exactly this many decoder tokens at most (the reference's `max_length`).
    Fixed(usize),
    /// min(200, 1.5 × the longest source + 10): long enough for any real translation, short
    /// enough that a degenerate repeat stops soon.
    Auto,
}

impl MaxLength {
    pub const DEFAULT_CAP: usize = 200;

    pub fn resolve(self, longest_source: usize) -> usize {
        match self {
            MaxLength::Fixed(n) => n,
            MaxLength::Auto => {
                Self::DEFAULT_CAP.min((longest_source as f64 * 1.5).ceil() as usize + 10)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// 1 = greedy.
    pub beams: usize,
    pub max_length: MaxLength,
    pub length_penalty: f32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            beams: 4,
            max_length: MaxLength::Auto,
            length_penalty: 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_length_auto_is_capped() {
        assert_eq!(MaxLength::Auto.resolve(10), 25);
        assert_eq!(MaxLength::Auto.resolve(500), 200);
        assert_eq!(MaxLength::Fixed(7).resolve(500), 7);
    }

    #[test]
    fn top_k_prefers_earlier_on_ties() {
        let c = vec![(1.0, 1, 5), (2.0, 0, 3), (1.0, 0, 9), (0.5, 0, 1)];
        let t = top_k(c, 3);
        assert_eq!(t, vec![(2.0, 0, 3), (1.0, 0, 9), (1.0, 1, 5)]);
    }
}
