//! Sentence splitting for translation: NLLB degrades on long inputs, so requests are
//! translated sentence by sentence and re-joined. Questions stay whole (a sentence ends at
//! its "?"), and the paper's closing "Choose one side…" sentence is kept whole with whatever
//! follows it in its paragraph, because its quoted options often contain full stops.

/// One piece of a text and the separator that followed it in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub text: String,
    /// "" after the last segment, " " between sentences, or the paragraph break ("\n", "\n\n").
    pub separator: String,
}

/// Words before a full stop that do not end a sentence.
const ABBREVIATIONS: [&str; 16] = [
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "approx", "no",
    "mt", "ft",
];

fn is_closing(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | ')' | ']' | '»')
}

fn starts_sentence(c: char) -> bool {
    c.is_uppercase() || c.is_ascii_digit() || matches!(c, '"' | '“' | '‘' | '\'' | '(' | '«')
}

fn is_choose_sentence(s: &str) -> bool {
    let lower = s.trim_start_matches(['"', '“', '\'', '(']).to_lowercase();
    lower.starts_with("choose one") || lower.starts_with("choose a side")
}

/// Split one paragraph (no newlines) into sentences.
fn split_paragraph(p: &str) -> Vec<String> {
    let chars: Vec<(usize, char)> = p.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0usize; // byte offset of the current sentence
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        if matches!(c, '.' | '!' | '?' | '…') {
            // Absorb repeated terminators and closing quotes/brackets.
            let mut j = i + 1;
            while j < chars.len()
                && (matches!(chars[j].1, '.' | '!' | '?' | '…') || is_closing(chars[j].1))
            {
                j += 1;
            }
            let end = chars.get(j).map_or(p.len(), |&(b, _)| b);
            let mut k = j;
            while k < chars.len() && chars[k].1.is_whitespace() {
                k += 1;
            }
            let boundary = k > j && k < chars.len() && starts_sentence(chars[k].1);
            let abbreviation = c == '.' && {
                let word: String = p[start..chars[i].0]
                    .rsplit(|ch: char| ch.is_whitespace())
                    .next()
                    .unwrap_or("")
                    .trim_start_matches(['(', '"', '“'])
                    .to_lowercase();
                ABBREVIATIONS.contains(&word.as_str())
                    || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
            };
            if boundary && !abbreviation {
                let sentence = p[start..end].trim();
                if !sentence.is_empty() {
                    out.push(sentence.to_string());
                }
                start = chars[k].0;
                // The choose-a-side sentence and everything after it stay one segment.
                if is_choose_sentence(&p[start..]) {
                    out.push(p[start..].trim().to_string());
                    return out;
                }
                i = k;
                continue;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    let rest = p[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Split a text into sentences, keeping paragraph breaks as separators.
pub fn split_sentences(text: &str) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (para, after) = match rest.find('\n') {
            Some(n) => (&rest[..n], &rest[n..]),
            None => (rest, ""),
        };
        let breaks: String = after.chars().take_while(|c| c.is_whitespace()).collect();
        let newlines = "\n".repeat(breaks.matches('\n').count());
        let sentences = split_paragraph(para);
        let n = sentences.len();
        for (k, s) in sentences.into_iter().enumerate() {
            let separator = if k + 1 < n {
                " ".to_string()
            } else {
                newlines.clone()
            };
            segments.push(Segment { text: s, separator });
        }
        rest = after[breaks.len()..].trim_start();
    }
    if let Some(last) = segments.last_mut() {
        last.separator.clear();
    }
    segments
}

/// Languages whose sentences follow each other without a space.
fn joins_without_space(lang: &str) -> bool {
    matches!(lang, "zho_Hans" | "zho_Hant" | "yue_Hant" | "jpn_Jpan")
}

/// Re-join translated segments with the source's separators (paragraph breaks kept).
pub fn join_segments(translated: &[String], separators: &[String], lang: &str) -> String {
    let mut out = String::new();
    for (t, sep) in translated.iter().zip(separators) {
        out.push_str(t.trim());
        if sep == " " && joins_without_space(lang) {
            continue;
        }
        out.push_str(sep);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split_sentences(s).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_sentences_and_keeps_questions_whole() {
        assert_eq!(
            texts("I'm 29. Mr. Smith, my boss, said no! Should I go, or stay here? Yes."),
            [
                "I'm 29.",
                "Mr. Smith, my boss, said no!",
                "Should I go, or stay here?",
                "Yes."
            ]
        );
        // No split before a lowercase word or inside numbers.
        assert_eq!(
            texts("It costs 1.5 million. ok then"),
            ["It costs 1.5 million. ok then"]
        );
        assert_eq!(
            texts("He said \"Stop.\" Then he left."),
            ["He said \"Stop.\"", "Then he left."]
        );
    }

    #[test]
    fn the_choose_one_side_sentence_stays_whole() {
        let t =
            "Should I save or spend? Choose one side: \"Save it. Invest.\" or \"Spend it now.\"";
        assert_eq!(
            texts(t),
            [
                "Should I save or spend?",
                "Choose one side: \"Save it. Invest.\" or \"Spend it now.\""
            ]
        );
    }

    #[test]
    fn paragraphs_survive_a_round_trip() {
        let t = "First one. Second one.\n\nNew paragraph.\nLast line";
        let segs = split_sentences(t);
        let seps: Vec<String> = segs.iter().map(|s| s.separator.clone()).collect();
        assert_eq!(seps, [" ", "\n\n", "\n", ""]);
        let parts: Vec<String> = segs.iter().map(|s| s.text.clone()).collect();
        assert_eq!(join_segments(&parts, &seps, "fra_Latn"), t);
        assert_eq!(
            join_segments(&parts[..2], &seps[..2], "jpn_Jpan"),
            "First one.Second one.\n\n"
        );
    }

    #[test]
    fn empty_text_has_no_segments() {
        assert!(split_sentences("  \n ").is_empty());
    }
}
