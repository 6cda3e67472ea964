//! What free-text replies say besides their choice (issue 7): the language and script they
//! are written in (whatlang), whether they mention the persona's country or its people
//! (`prompts/demonyms.csv`), and whether they refuse or weigh both sides instead of choosing
//! (`prompts/reply_markers.csv`). The word lists are data, in English and the languages the
//! benchmark asks in where a marker is known; they find the common phrasings, not all.

use crate::{Error, Result};
use std::path::Path;
use std::sync::OnceLock;
use whatlang::{Lang, Script};

const DEMONYMS_CSV: &str = include_str!("../prompts/demonyms.csv");
const MARKERS_CSV: &str = include_str!("../prompts/reply_markers.csv");

/// A reply's language as detected, against the language its prompt was asked in.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageCheck {
    /// whatlang's ISO 639-3 code, None when it cannot tell (too little text).
    pub detected_lang: Option<&'static str>,
    pub detected_script: Option<Script>,
    /// Whether the reply is in the prompt's language: by language where whatlang knows the
    /// prompt's language, otherwise by script. None when nothing was detected.
    pub in_prompt_language: Option<bool>,
    pub basis: Basis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Basis {
    Language,
    Script,
}

impl Basis {
    pub fn code(self) -> &'static str {
        match self {
            Basis::Language => "language",
            Basis::Script => "script",
        }
    }
}

/// whatlang's language for an NLLB code (`eng_Latn`), where whatlang has that language. NLLB
/// codes start with the ISO 639-3 code, which whatlang uses too, except for a few variants.
pub fn whatlang_lang(nllb_code: &str) -> Option<Lang> {
    let iso = nllb_code.split('_').next().unwrap_or_default();
    let iso = match iso {
        "zho" => "cmn",
        "azj" => "aze",
        other => other,
    };
    Lang::from_code(iso)
}

/// The scripts an NLLB code's script suffix may be detected as.
fn scripts(nllb_code: &str) -> &'static [Script] {
    match nllb_code.rsplit('_').next().unwrap_or_default() {
        "Latn" => &[Script::Latin],
        "Cyrl" => &[Script::Cyrillic],
        "Arab" => &[Script::Arabic],
        "Hans" | "Hant" => &[Script::Mandarin],
        // Japanese mixes kanji and kana.
        "Jpan" => &[Script::Hiragana, Script::Katakana, Script::Mandarin],
        "Hang" => &[Script::Hangul],
        "Grek" => &[Script::Greek],
        "Hebr" => &[Script::Hebrew],
        "Thai" => &[Script::Thai],
        "Armn" => &[Script::Armenian],
        "Geor" => &[Script::Georgian],
        "Deva" => &[Script::Devanagari],
        "Sinh" => &[Script::Sinhala],
        _ => &[],
    }
}

/// Detect a reply's language and compare it with the prompt's (`prompt_nllb`: the NLLB code
/// of the language the prompt was asked in, `eng_Latn` for the personas approach).
pub fn check_language(reply: &str, prompt_nllb: &str) -> LanguageCheck {
    let info = whatlang::detect(reply);
    let detected_lang = info.as_ref().map(|i| i.lang().code());
    let detected_script = whatlang::detect_script(reply);
    let (in_prompt_language, basis) = match whatlang_lang(prompt_nllb) {
        Some(lang) => (info.map(|i| i.lang() == lang), Basis::Language),
        None => (
            detected_script.map(|s| scripts(prompt_nllb).contains(&s)),
            Basis::Script,
        ),
    };
    LanguageCheck {
        detected_lang,
        detected_script,
        in_prompt_language,
        basis,
    }
}

/// Scripts written without spaces: a term may start anywhere in a word there.
fn unspaced(c: char) -> bool {
    matches!(c as u32, 0x0E00..=0x0E7F | 0x3040..=0x30FF | 0x3400..=0x9FFF | 0xAC00..=0xD7AF)
}

/// Whether `text` (lower-cased) holds `term` (lower-case) at the start of a word, so that
/// "japan" finds "Japanese" but "iran" does not find "tirana"; anywhere for unspaced scripts.
fn has_term(text: &str, term: &str) -> bool {
    let anywhere = term.chars().next().is_some_and(unspaced);
    text.match_indices(term).any(|(i, _)| {
        anywhere
            || text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric())
    })
}

fn table(csv_text: &'static str, name: &str) -> Result<Vec<(String, String)>> {
    let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::bad_input_from(Path::new(name), line, "malformed CSV row", e)
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        match (rec.get(0), rec.get(1)) {
            (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                out.push((a.to_string(), b.to_lowercase()))
            }
            _ => {
                return Err(Error::bad_input(
                    Path::new(name),
                    line,
                    "expected two non-empty fields",
                ))
            }
        }
    }
    Ok(out)
}

/// country → its terms, from prompts/demonyms.csv (embedded; checked by a test).
fn demonyms() -> &'static [(String, Vec<String>)] {
    static TABLE: OnceLock<Vec<(String, Vec<String>)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        table(DEMONYMS_CSV, "prompts/demonyms.csv")
            .expect("prompts/demonyms.csv is valid (tested)")
            .into_iter()
            .map(|(c, terms)| (c, terms.split('|').map(str::to_string).collect()))
            .collect()
    })
}

/// (kind, phrase) from prompts/reply_markers.csv.
fn markers() -> &'static [(String, String)] {
    static TABLE: OnceLock<Vec<(String, String)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        table(MARKERS_CSV, "prompts/reply_markers.csv").expect("reply_markers.csv is valid")
    })
}

/// Whether a reply names the country or its people (English or the country's language).
/// None for a country without an entry in prompts/demonyms.csv.
pub fn mentions_country(reply: &str, country: &str) -> Option<bool> {
    let (_, terms) = demonyms().iter().find(|(c, _)| c == country)?;
    let lower = reply.to_lowercase();
    Some(terms.iter().any(|t| has_term(&lower, t)))
}

fn has_marker(reply: &str, kind: &str) -> bool {
    let lower = reply.to_lowercase().replace('’', "'");
    markers()
        .iter()
        .any(|(k, phrase)| k == kind && has_term(&lower, phrase))
}

/// The reply declines to advise ("I can't decide for you", "as an AI", "consult a …").
pub fn refuses(reply: &str) -> bool {
    has_marker(reply, "refusal")
}

/// The reply weighs both actions or proposes a middle way instead of choosing.
pub fn offers_both_sides(reply: &str) -> bool {
    has_marker(reply, "both_sides")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_lists_cover_every_country_and_parse() {
        let all = crate::countries::builtin();
        for c in &all {
            assert!(
                mentions_country("", &c.name).is_some(),
                "{} has no entry in prompts/demonyms.csv",
                c.name
            );
        }
        assert_eq!(demonyms().len(), all.len());
        assert!(markers()
            .iter()
            .all(|(k, _)| k == "refusal" || k == "both_sides"));
    }

    #[test]
    fn language_detection_on_known_texts() {
        let de = "Nimm das Jobangebot in der anderen Stadt an. Mit 29 ist das eine große Chance \
                  für deine Karriere, und deine Eltern kannst du am Wochenende besuchen.";
        let c = check_language(de, "deu_Latn");
        assert_eq!(
            (c.detected_lang, c.in_prompt_language),
            (Some("deu"), Some(true))
        );
        // The paper's finding: a multilingual prompt answered in English.
        let en = "Accept the job offer. A raise and a path into management is a rare chance, \
                  and you can still visit your parents on weekends.";
        let c = check_language(en, "deu_Latn");
        assert_eq!(
            (c.detected_lang, c.in_prompt_language),
            (Some("eng"), Some(false))
        );
        assert_eq!(
            check_language(en, "eng_Latn").in_prompt_language,
            Some(true)
        );
        let ja = "家族全員のために大きなお祝いをしてください。結婚は二つの家族を結ぶものです。";
        assert_eq!(
            check_language(ja, "jpn_Jpan").in_prompt_language,
            Some(true)
        );
        let ru = "Не записывайтесь на курсы. Оставьте вечера свободными для партнёра и футбола.";
        assert_eq!(check_language(ru, "rus_Cyrl").detected_lang, Some("rus"));
        // whatlang has no Kazakh: Cyrillic counts by script, Latin does not.
        let c = check_language(ru, "kaz_Cyrl");
        assert_eq!((c.basis, c.in_prompt_language), (Basis::Script, Some(true)));
        assert_eq!(
            check_language(en, "kaz_Cyrl").in_prompt_language,
            Some(false)
        );
        assert_eq!(whatlang_lang("zho_Hans"), Some(Lang::Cmn));
        assert_eq!(whatlang_lang("azj_Latn"), Some(Lang::Aze));
        assert_eq!(check_language("", "eng_Latn").in_prompt_language, None);
    }

    #[test]
    fn persona_mentions_in_english_and_the_countrys_language() {
        assert_eq!(
            mentions_country("As a Japanese person, I…", "Japan"),
            Some(true)
        );
        assert_eq!(
            mentions_country("日本では家族が大切です。", "Japan"),
            Some(true)
        );
        assert_eq!(
            mentions_country("In Deutschland sagt man…", "Germany"),
            Some(true)
        );
        assert_eq!(
            mentions_country("Мы, русские, ценим семью.", "Russia"),
            Some(true)
        );
        assert_eq!(mentions_country("Take the job.", "Japan"), Some(false));
        // Word starts only: "Tirana" is no mention of Iran.
        assert_eq!(mentions_country("Move to Tirana.", "Iran"), Some(false));
        assert_eq!(mentions_country("Iranian families…", "Iran"), Some(true));
        assert_eq!(mentions_country("x", "Atlantis"), None);
    }

    #[test]
    fn refusals_and_both_sides_answers() {
        assert!(refuses(
            "I’m sorry, but I can’t make this decision for you."
        ));
        assert!(refuses("As an AI, I don't have personal opinions."));
        assert!(refuses("Das kann ich nicht für Sie entscheiden."));
        assert!(!refuses("Accept the job offer; you can visit on weekends."));
        assert!(offers_both_sides(
            "Both options have merit; find a middle ground."
        ));
        assert!(offers_both_sides("On the one hand… on the other hand…"));
        assert!(offers_both_sides("Les deux options sont défendables."));
        assert!(!offers_both_sides("Take the full six months of leave."));
    }
}
