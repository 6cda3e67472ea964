//! Round-trip quality of a translation: BLEU and chrF computed exactly as the `sacrebleu`
//! package does (checked against it by `tests/it/bleu_sacrebleu.rs`), reported on a 0–1 scale
//! like the paper's released files (sacrebleu's 0–100 divided by 100).
//!
//! - BLEU: 13a tokenisation (mteval-v13a, WMT's default), 4-gram, one reference.
//!   Corpus BLEU uses sacrebleu's `BLEU()` defaults (exp smoothing, no effective order);
//!   sentence BLEU uses `sentence_bleu` defaults (exp smoothing, effective order).
//! - chrF: sacrebleu's `CHRF()` defaults: character 6-grams, whitespace removed, β = 2.

use std::collections::HashMap;
use std::hash::Hash;

const MAX_ORDER: usize = 4;
const CHAR_ORDER: usize = 6;
const BETA: f64 = 2.0;

/// Python's `str.split()` whitespace: Unicode White_Space plus the ASCII separators \x1c–\x1f.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|w| !w.is_empty())
}

/// The mteval-v13a tokeniser as sacrebleu's `Tokenizer13a` (applied to the right-stripped line).
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .trim_end_matches(is_py_space)
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {line} ").chars().collect();
    // 1. Pad ASCII punctuation and symbols: [{-~[-` -&(-+:-@/]
    let punct =
        |c: char| matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/');
    let mut s1 = Vec::with_capacity(chars.len() * 2);
    for c in chars {
        if punct(c) {
            s1.extend([' ', c, ' ']);
        } else {
            s1.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let dot = |c: char| c == '.' || c == ',';
    // 2.–4. Two-character substitutions, left to right without overlap, as re.sub does.
    let sub = |s: &[char],
               first: &dyn Fn(char) -> bool,
               second: &dyn Fn(char) -> bool,
               repl: &dyn Fn(char, char, &mut Vec<char>)| {
        let mut out = Vec::with_capacity(s.len() * 2);
        let mut i = 0;
        while i < s.len() {
            if i + 1 < s.len() && first(s[i]) && second(s[i + 1]) {
                repl(s[i], s[i + 1], &mut out);
                i += 2;
            } else {
                out.push(s[i]);
                i += 1;
            }
        }
        out
    };
    // period and comma unless preceded by a digit: ([^0-9])([\.,]) -> "\1 \2 "
    let s2 = sub(&s1, &|c| !digit(c), &dot, &|a, b, o| {
        o.extend([a, ' ', b, ' '])
    });
    // period and comma unless followed by a digit: ([\.,])([^0-9]) -> " \1 \2"
    let s3 = sub(&s2, &dot, &|c| !digit(c), &|a, b, o| {
        o.extend([' ', a, ' ', b])
    });
    // dash preceded by a digit: ([0-9])(-) -> "\1 \2 "
    let s4 = sub(&s3, &digit, &|c| c == '-', &|a, b, o| {
        o.extend([a, ' ', b, ' '])
    });
    let joined: String = s4.into_iter().collect();
    py_split(&joined).collect::<Vec<_>>().join(" ")
}

fn count<T: Eq + Hash>(items: impl Iterator<Item = T>) -> HashMap<T, u64> {
    let mut m = HashMap::new();
    for it in items {
        *m.entry(it).or_insert(0) += 1;
    }
    m
}

/// BLEU's sufficient statistics; corpus BLEU sums them over segments.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BleuStats {
    pub sys_len: u64,
    pub ref_len: u64,
    pub correct: [u64; MAX_ORDER],
    pub total: [u64; MAX_ORDER],
}

impl BleuStats {
    pub fn segment(hypothesis: &str, reference: &str) -> Self {
        let hyp = tokenize_13a(hypothesis);
        let rf = tokenize_13a(reference);
        let h: Vec<&str> = py_split(&hyp).collect();
        let r: Vec<&str> = py_split(&rf).collect();
        let mut s = BleuStats {
            sys_len: h.len() as u64,
            ref_len: r.len() as u64,
            ..Default::default()
        };
        for n in 1..=MAX_ORDER {
            let hc = count(h.windows(n));
            let rc = count(r.windows(n));
            for (g, c) in hc {
                s.total[n - 1] += c;
                s.correct[n - 1] += c.min(rc.get(g).copied().unwrap_or(0));
            }
        }
        s
    }

    pub fn add(&mut self, o: &BleuStats) {
        self.sys_len += o.sys_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }

    /// sacrebleu's `compute_bleu` with exp smoothing, on a 0–1 scale.
    pub fn score(&self, effective_order: bool) -> f64 {
        let (sys, rf) = (self.sys_len as f64, self.ref_len as f64);
        let bp = if self.sys_len < self.ref_len {
            if self.sys_len > 0 {
                (1.0 - rf / sys).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        if self.correct.iter().all(|&c| c == 0) {
            return 0.0;
        }
        let mut precisions = [0.0f64; MAX_ORDER];
        let mut smooth = 1.0;
        let mut eff_order = MAX_ORDER;
        for n in 1..=MAX_ORDER {
            if self.total[n - 1] == 0 {
                break;
            }
            if effective_order {
                eff_order = n;
            }
            precisions[n - 1] = if self.correct[n - 1] == 0 {
                smooth *= 2.0;
                100.0 / (smooth * self.total[n - 1] as f64)
            } else {
                100.0 * self.correct[n - 1] as f64 / self.total[n - 1] as f64
            };
        }
        let log = |p: f64| if p == 0.0 { -9999999999.0 } else { p.ln() };
        let sum: f64 = precisions[..eff_order].iter().map(|&p| log(p)).sum();
        bp * (sum / eff_order as f64).exp() / 100.0
    }
}

/// sacrebleu's `sentence_bleu(hyp, [ref])`, 0–1.
pub fn sentence_bleu(hypothesis: &str, reference: &str) -> f64 {
    BleuStats::segment(hypothesis, reference).score(true)
}

/// sacrebleu's `BLEU().corpus_score(hyps, [refs])`, 0–1.
pub fn corpus_bleu<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let mut total = BleuStats::default();
    for (h, r) in pairs {
        total.add(&BleuStats::segment(h, r));
    }
    total.score(false)
}

/// chrF statistics: per character order, [hypothesis n-grams, reference n-grams, matches].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChrfStats(pub [[u64; 3]; CHAR_ORDER]);

impl ChrfStats {
    pub fn segment(hypothesis: &str, reference: &str) -> Self {
        let squash = |s: &str| -> Vec<char> { py_split(s).flat_map(str::chars).collect() };
        let (h, r) = (squash(hypothesis), squash(reference));
        let mut s = ChrfStats::default();
        for n in 1..=CHAR_ORDER {
            let hc = count(h.windows(n));
            let rc = count(r.windows(n));
            let hyp_count: u64 = hc.values().sum();
            let matches: u64 = hc
                .iter()
                .map(|(g, &c)| c.min(rc.get(g).copied().unwrap_or(0)))
                .sum();
            // sacrebleu does not count hypothesis n-grams of an order the reference lacks.
            s.0[n - 1] = [
                if rc.is_empty() { 0 } else { hyp_count },
                rc.values().sum(),
                matches,
            ];
        }
        s
    }

    pub fn add(&mut self, o: &ChrfStats) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            for k in 0..3 {
                a[k] += b[k];
            }
        }
    }

    /// sacrebleu's `CHRF._compute_f_score` (effective-order averaging), on a 0–1 scale.
    pub fn score(&self) -> f64 {
        let factor = BETA * BETA;
        let (mut avg_p, mut avg_r, mut eff) = (0.0, 0.0, 0);
        for &[n_hyp, n_ref, n_match] in &self.0 {
            if n_hyp > 0 && n_ref > 0 {
                avg_p += n_match as f64 / n_hyp as f64;
                avg_r += n_match as f64 / n_ref as f64;
                eff += 1;
            }
        }
        if eff == 0 {
            return 0.0;
        }
        avg_p /= eff as f64;
        avg_r /= eff as f64;
        if avg_p + avg_r == 0.0 {
            return 0.0;
        }
        (1.0 + factor) * avg_p * avg_r / (factor * avg_p + avg_r)
    }
}

/// sacrebleu's `sentence_chrf(hyp, [ref])`, 0–1.
pub fn sentence_chrf(hypothesis: &str, reference: &str) -> f64 {
    ChrfStats::segment(hypothesis, reference).score()
}

/// sacrebleu's `CHRF().corpus_score(hyps, [refs])`, 0–1.
pub fn corpus_chrf<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let mut total = ChrfStats::default();
    for (h, r) in pairs {
        total.add(&ChrfStats::segment(h, r));
    }
    total.score()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sentences_score_one() {
        let s = "The cat sat on the mat.";
        assert!((sentence_bleu(s, s) - 1.0).abs() < 1e-12);
        assert!((sentence_chrf(s, s) - 1.0).abs() < 1e-12);
        assert_eq!(sentence_bleu("", s), 0.0);
    }

    #[test]
    fn tokenizer_splits_punctuation_but_not_numbers() {
        assert_eq!(tokenize_13a("Hello, world."), "Hello , world .");
        assert_eq!(
            tokenize_13a("1,000.50 in 2019-2020"),
            "1,000.50 in 2019 - 2020"
        );
    }
}
