//! Tables over free-text replies (generate and imported rows): agreement of the judged replies
//! with the logit scorer on the same items (`agreement.csv`), the share of replies written in
//! the prompt's language (`language_fidelity.csv`) and the share that mention the persona's
//! country, refuse, or weigh both sides (`persona_use.csv`).

use super::format::{csv_table, float_or_nan, fmt_opt, or_all, pct, tier_code};
use crate::dimension::{Dimension, Tier};
use crate::replies::{self, Basis};
use crate::results::{ResultRow, MODE_LOGITS};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Cohen's kappa of two raters' binary labels: (p_o − p_e) / (1 − p_e), with p_e from each
/// rater's marginal shares (scikit-learn's `cohen_kappa_score`). None for no pairs, or when
/// chance agreement is 1 (both raters always gave the same single label), where kappa is 0/0.
pub fn cohen_kappa(pairs: &[(bool, bool)]) -> Option<f64> {
    let n = pairs.len() as f64;
    if pairs.is_empty() {
        return None;
    }
    let agree = pairs.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let a1 = pairs.iter().filter(|p| p.0).count() as f64 / n;
    let b1 = pairs.iter().filter(|p| p.1).count() as f64 / n;
    let chance = a1 * b1 + (1.0 - a1) * (1.0 - b1);
    (chance < 1.0).then(|| (agree - chance) / (1.0 - chance))
}

/// One row of agreement.csv: replies of `mode` (judged) against the logit scorer's answers
/// to the same model, approach, dimension, country and item; every round of a reply pairs
/// with the one logits row.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreementRow {
    pub model: String,
    pub mode: String,
    pub approach: String,
    /// None = all dimensions.
    pub dimension: Option<Dimension>,
    /// Replies with a logits row to pair with.
    pub n_pairs: usize,
    /// Of those, replies the judge found inconclusive (left out of the figures below).
    pub n_inconclusive: usize,
    pub n_agree: usize,
    /// n_agree / decided pairs.
    pub agreement: Option<f64>,
    pub kappa: Option<f64>,
}

/// The pairing key: a generate row of any round meets the logits row of its item.
type Key<'a> = (&'a str, &'a str, Dimension, &'a str, &'a str);

fn key(r: &ResultRow) -> Key<'_> {
    (&r.model, &r.approach, r.dimension, &r.country, &r.prompt_id)
}

pub fn agreement(rows: &[ResultRow]) -> Vec<AgreementRow> {
    let logits: HashMap<Key, &ResultRow> = rows
        .iter()
        .filter(|r| r.mode == MODE_LOGITS)
        .map(|r| (key(r), r))
        .collect();
    // (model, mode, approach, dimension) → (pairs, inconclusive)
    type Group = (Vec<(bool, bool)>, usize);
    let mut groups: BTreeMap<(&str, &str, &str, Option<Dimension>), Group> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.mode != MODE_LOGITS) {
        let Some(l) = logits.get(&key(r)) else {
            continue;
        };
        let Some(scored) = l.chose_high() else {
            continue;
        };
        for dim in [Some(r.dimension), None] {
            let g = groups
                .entry((&r.model, &r.mode, &r.approach, dim))
                .or_default();
            match r.chose_high() {
                Some(judged) => g.0.push((judged, scored)),
                None => g.1 += 1,
            }
        }
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    // Per dimension, then the "all" row.
    groups.sort_by_key(|((model, mode, approach, dim), _)| {
        (*model, *mode, *approach, dim.is_none(), *dim)
    });
    groups
        .into_iter()
        .map(
            |((model, mode, approach, dimension), (pairs, n_inconclusive))| {
                let n_agree = pairs.iter().filter(|(a, b)| a == b).count();
                AgreementRow {
                    model: model.to_string(),
                    mode: mode.to_string(),
                    approach: approach.to_string(),
                    dimension,
                    n_pairs: pairs.len() + n_inconclusive,
                    n_inconclusive,
                    n_agree,
                    agreement: (!pairs.is_empty()).then(|| n_agree as f64 / pairs.len() as f64),
                    kappa: cohen_kappa(&pairs),
                }
            },
        )
        .collect()
}

/// The NLLB code of the language a row's prompt was asked in: its `lang` (multilingual), else
/// English (personas).
pub fn prompt_language(r: &ResultRow) -> &str {
    r.lang.as_deref().unwrap_or("eng_Latn")
}

/// One row of language_fidelity.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageFidelity {
    pub model: String,
    pub approach: String,
    /// NLLB code of the prompt language; None = all languages of the tier.
    pub language: Option<String>,
    pub tier: Option<Tier>,
    /// How replies were compared: by language, or by script where whatlang lacks the language
    /// (None for a row over several languages).
    pub basis: Option<Basis>,
    pub n: usize,
    /// Replies whose language or script could be detected.
    pub n_detected: usize,
    pub n_in_language: usize,
    /// n_in_language / n_detected.
    pub share_in_language: Option<f64>,
    /// The language detected most often (ISO 639-3).
    pub top_detected: Option<String>,
}

/// One row of persona_use.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonaUse {
    pub model: String,
    pub approach: String,
    /// None = all countries of the tier.
    pub country: Option<String>,
    pub tier: Option<Tier>,
    pub n: usize,
    pub n_mentions: usize,
    pub n_refusals: usize,
    pub n_both_sides: usize,
    pub n_inconclusive: usize,
}

impl PersonaUse {
    pub fn share(&self, count: usize) -> Option<f64> {
        (self.n > 0).then(|| count as f64 / self.n as f64)
    }
}

/// What one reply says, computed once per row.
struct ReplyFacts {
    language: replies::LanguageCheck,
    mentions: bool,
    refuses: bool,
    both_sides: bool,
}

fn facts(r: &ResultRow, text: &str) -> ReplyFacts {
    ReplyFacts {
        language: replies::check_language(text, prompt_language(r)),
        mentions: replies::mentions_country(text, &r.country).unwrap_or(false),
        refuses: replies::refuses(text),
        both_sides: replies::offers_both_sides(text),
    }
}

/// model, approach, language or country (None = all), tier (None = all).
type TableKey = (String, String, Option<String>, Option<Tier>);

/// Language fidelity and persona use over every row with a reply (rows keyed by
/// `stats::analysis_model`, as the other tables).
pub fn reply_tables(rows: &[ResultRow]) -> (Vec<LanguageFidelity>, Vec<PersonaUse>) {
    let mut lang: BTreeMap<TableKey, Vec<&replies::LanguageCheck>> = BTreeMap::new();
    let mut persona: BTreeMap<TableKey, PersonaUse> = BTreeMap::new();
    let all_facts: Vec<(&ResultRow, ReplyFacts)> = rows
        .iter()
        .filter_map(|r| Some((r, facts(r, r.response.as_deref()?))))
        .collect();
    for (r, f) in &all_facts {
        let model = &r.model;
        let language = prompt_language(r).to_string();
        for (l, t) in [
            (Some(language.clone()), Some(r.tier)),
            (None, Some(r.tier)),
            (None, None),
        ] {
            lang.entry((model.clone(), r.approach.clone(), l, t))
                .or_default()
                .push(&f.language);
        }
        for (c, t) in [
            (Some(r.country.clone()), Some(r.tier)),
            (None, Some(r.tier)),
            (None, None),
        ] {
            let p = persona
                .entry((model.clone(), r.approach.clone(), c.clone(), t))
                .or_insert_with(|| PersonaUse {
                    model: model.clone(),
                    approach: r.approach.clone(),
                    country: c,
                    tier: t,
                    n: 0,
                    n_mentions: 0,
                    n_refusals: 0,
                    n_both_sides: 0,
                    n_inconclusive: 0,
                });
            p.n += 1;
            p.n_mentions += usize::from(f.mentions);
            p.n_refusals += usize::from(f.refuses);
            p.n_both_sides += usize::from(f.both_sides);
            p.n_inconclusive += usize::from(r.p_high.is_none());
        }
    }
    let fidelity = lang
        .into_iter()
        .map(|((model, approach, language, tier), checks)| {
            let detected: Vec<&&replies::LanguageCheck> = checks
                .iter()
                .filter(|c| c.in_prompt_language.is_some())
                .collect();
            let n_in = detected
                .iter()
                .filter(|c| c.in_prompt_language == Some(true))
                .count();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for c in &checks {
                if let Some(l) = c.detected_lang {
                    *counts.entry(l).or_default() += 1;
                }
            }
            // Most frequent, ties to the alphabetically first code (BTreeMap order).
            let top = counts
                .iter()
                .fold(None::<(&str, usize)>, |best, (&l, &n)| match best {
                    Some((_, b)) if b >= n => best,
                    _ => Some((l, n)),
                })
                .map(|(l, _)| l.to_string());
            LanguageFidelity {
                basis: language.as_ref().map(|_| checks[0].basis),
                model,
                approach,
                language,
                tier,
                n: checks.len(),
                n_detected: detected.len(),
                n_in_language: n_in,
                share_in_language: (!detected.is_empty())
                    .then(|| n_in as f64 / detected.len() as f64),
                top_detected: top,
            }
        })
        .collect();
    (fidelity, persona.into_values().collect())
}

/// One line of agreement.csv.
#[derive(Serialize, Default)]
pub struct AgreementCsv<'a> {
    pub model: &'a str,
    pub mode: &'a str,
    pub approach: &'a str,
    #[serde(serialize_with = "or_all")]
    pub dimension: Option<Dimension>,
    pub n_pairs: usize,
    pub n_inconclusive: usize,
    pub n_agree: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub agreement: Option<f64>,
    #[serde(serialize_with = "float_or_nan")]
    pub kappa: Option<f64>,
}

impl<'a> From<&'a AgreementRow> for AgreementCsv<'a> {
    fn from(g: &'a AgreementRow) -> Self {
        Self {
            model: &g.model,
            mode: &g.mode,
            approach: &g.approach,
            dimension: g.dimension,
            n_pairs: g.n_pairs,
            n_inconclusive: g.n_inconclusive,
            n_agree: g.n_agree,
            agreement: g.agreement,
            kappa: g.kappa,
        }
    }
}

/// One line of language_fidelity.csv.
#[derive(Serialize, Default)]
pub struct LanguageFidelityCsv<'a> {
    pub model: &'a str,
    pub approach: &'a str,
    #[serde(serialize_with = "or_all")]
    pub language: Option<&'a str>,
    #[serde(serialize_with = "or_all")]
    pub tier: Option<Tier>,
    #[serde(serialize_with = "or_all")]
    pub basis: Option<&'static str>,
    pub n: usize,
    pub n_detected: usize,
    pub n_in_language: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub share_in_language: Option<f64>,
    /// Empty when no reply's language was detected.
    pub top_detected: Option<&'a str>,
}

impl<'a> From<&'a LanguageFidelity> for LanguageFidelityCsv<'a> {
    fn from(f: &'a LanguageFidelity) -> Self {
        Self {
            model: &f.model,
            approach: &f.approach,
            language: f.language.as_deref(),
            tier: f.tier,
            basis: f.basis.map(Basis::code),
            n: f.n,
            n_detected: f.n_detected,
            n_in_language: f.n_in_language,
            share_in_language: f.share_in_language,
            top_detected: f.top_detected.as_deref(),
        }
    }
}

/// One line of persona_use.csv.
#[derive(Serialize, Default)]
pub struct PersonaUseCsv<'a> {
    pub model: &'a str,
    pub approach: &'a str,
    #[serde(serialize_with = "or_all")]
    pub country: Option<&'a str>,
    #[serde(serialize_with = "or_all")]
    pub tier: Option<Tier>,
    pub n: usize,
    pub n_mentions: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub share_mentions: Option<f64>,
    pub n_refusals: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub share_refusals: Option<f64>,
    pub n_both_sides: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub share_both_sides: Option<f64>,
    pub n_inconclusive: usize,
    #[serde(serialize_with = "float_or_nan")]
    pub share_inconclusive: Option<f64>,
}

impl<'a> From<&'a PersonaUse> for PersonaUseCsv<'a> {
    fn from(p: &'a PersonaUse) -> Self {
        Self {
            model: &p.model,
            approach: &p.approach,
            country: p.country.as_deref(),
            tier: p.tier,
            n: p.n,
            n_mentions: p.n_mentions,
            share_mentions: p.share(p.n_mentions),
            n_refusals: p.n_refusals,
            share_refusals: p.share(p.n_refusals),
            n_both_sides: p.n_both_sides,
            share_both_sides: p.share(p.n_both_sides),
            n_inconclusive: p.n_inconclusive,
            share_inconclusive: p.share(p.n_inconclusive),
        }
    }
}

/// agreement.csv, language_fidelity.csv and persona_use.csv, each when it has rows.
pub fn tables(
    agreement: &[AgreementRow],
    language_fidelity: &[LanguageFidelity],
    persona_use: &[PersonaUse],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if !agreement.is_empty() {
        let rows = agreement.iter().map(AgreementCsv::from);
        out.push(("agreement.csv", csv_table(rows)));
    }
    if !language_fidelity.is_empty() {
        let rows = language_fidelity.iter().map(LanguageFidelityCsv::from);
        out.push(("language_fidelity.csv", csv_table(rows)));
    }
    if !persona_use.is_empty() {
        let rows = persona_use.iter().map(PersonaUseCsv::from);
        out.push(("persona_use.csv", csv_table(rows)));
    }
    out
}

/// The summary's sections on replies: agreement with the scorer, language fidelity (by tier)
/// and persona use (by tier); each only when the analysis has such rows.
pub fn summary(
    agreement: &[AgreementRow],
    language_fidelity: &[LanguageFidelity],
    persona_use: &[PersonaUse],
    md: &mut String,
) {
    if !agreement.is_empty() {
        writeln!(
            md,
            "## Generate + judge vs the logit scorer\n\nEach judged reply (every round) against \
             the scorer's answer to the same model, approach, dimension, country and item; \
             inconclusive replies are counted and left out of agreement and Cohen's kappa \
             (agreement.csv).\n"
        )
        .unwrap();
        writeln!(
            md,
            "| model | mode | approach | dim | pairs | inconclusive | agreement | kappa |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|---|").unwrap();
        for g in agreement {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                g.model,
                g.mode,
                g.approach,
                g.dimension.map_or("all", Dimension::code),
                g.n_pairs,
                g.n_inconclusive,
                pct(g.agreement),
                fmt_opt(g.kappa, 3)
            )
            .unwrap();
        }
        writeln!(md).unwrap();
    }
    if !language_fidelity.is_empty() {
        writeln!(
            md,
            "## Language fidelity\n\nShare of replies written in the prompt's language \
             (whatlang; by script where it lacks the language), by tier; per language in \
             language_fidelity.csv.\n"
        )
        .unwrap();
        writeln!(
            md,
            "| model | approach | tier | replies | detected | in the prompt's language | most detected |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|").unwrap();
        for f in language_fidelity.iter().filter(|f| f.language.is_none()) {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                f.model,
                f.approach,
                tier_code(f.tier),
                f.n,
                f.n_detected,
                pct(f.share_in_language),
                f.top_detected.as_deref().unwrap_or("–")
            )
            .unwrap();
        }
        writeln!(md).unwrap();
    }
    if !persona_use.is_empty() {
        writeln!(
            md,
            "## Persona use\n\nShare of replies that name the country or its people \
             (prompts/demonyms.csv), that refuse, or that weigh both sides \
             (prompts/reply_markers.csv), and the judge's inconclusive share, by tier; per \
             country in persona_use.csv.\n"
        )
        .unwrap();
        writeln!(
            md,
            "| model | approach | tier | replies | mention the country | refuse | both sides | inconclusive |"
        )
        .unwrap();
        writeln!(md, "|---|---|---|---|---|---|---|---|").unwrap();
        for p in persona_use.iter().filter(|p| p.country.is_none()) {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                p.model,
                p.approach,
                tier_code(p.tier),
                p.n,
                pct(p.share(p.n_mentions)),
                pct(p.share(p.n_refusals)),
                pct(p.share(p.n_both_sides)),
                pct(p.share(p.n_inconclusive))
            )
            .unwrap();
        }
        writeln!(md).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_of_known_tables() {
        // Perfect agreement with both labels present.
        assert_eq!(cohen_kappa(&[(true, true), (false, false)]), Some(1.0));
        // Perfect disagreement, balanced: −1.
        assert_eq!(cohen_kappa(&[(true, false), (false, true)]), Some(-1.0));
        // One rater constant, the other not: agreement is chance, kappa 0.
        let k = cohen_kappa(&[(true, true), (true, false)]).unwrap();
        assert!(k.abs() < 1e-12);
        // Both constant and equal: 0/0.
        assert_eq!(cohen_kappa(&[(true, true), (true, true)]), None);
        assert_eq!(cohen_kappa(&[]), None);
    }

    #[test]
    fn reply_tables_count_language_mentions_and_refusals() {
        let reply = |country: &str, lang: Option<&str>, text: &str, p: Option<f64>| ResultRow {
            mode: "generate".into(),
            response: Some(text.into()),
            lang: lang.map(str::to_string),
            p_high: p,
            ..crate::results::tests::row(country, "idv-001", 0.5)
        };
        let rows = vec![
            reply(
                "Germany",
                Some("deu_Latn"),
                "Nimm das Jobangebot an, in Deutschland ist das eine gute Chance für dich.",
                Some(1.0),
            ),
            reply(
                "Germany",
                Some("deu_Latn"),
                "Accept the offer; it is a good chance for your career and your future.",
                Some(1.0),
            ),
            reply(
                "Japan",
                Some("jpn_Jpan"),
                "I'm sorry, but I can't make this decision for you, it is your own life.",
                None,
            ),
        ];
        let (fidelity, persona) = reply_tables(&rows);
        let de = fidelity
            .iter()
            .find(|f| f.language.as_deref() == Some("deu_Latn"))
            .unwrap();
        assert_eq!((de.n, de.n_detected, de.n_in_language), (2, 2, 1));
        assert_eq!(de.basis, Some(Basis::Language));
        let all = fidelity
            .iter()
            .find(|f| f.language.is_none() && f.tier.is_none())
            .unwrap();
        assert_eq!((all.n, all.n_in_language), (3, 1));
        assert_eq!(all.top_detected.as_deref(), Some("eng"));
        let total = persona
            .iter()
            .find(|p| p.country.is_none() && p.tier.is_none())
            .unwrap();
        assert_eq!(
            (
                total.n,
                total.n_mentions,
                total.n_refusals,
                total.n_inconclusive
            ),
            (3, 1, 1, 1)
        );
        let germany = persona
            .iter()
            .find(|p| p.country.as_deref() == Some("Germany"))
            .unwrap();
        assert_eq!(germany.share(germany.n_mentions), Some(0.5));
    }
}
