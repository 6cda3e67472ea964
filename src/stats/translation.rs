//! Translation quality of multilingual runs, from the result rows' round-trip BLEU
//! (`translation_bleu`, 0–1) and `low_bleu` flag (set by `hofbench run` against its
//! `--bleu-threshold`, recorded as `settings.bleu_threshold` in the run's manifest.json).
//! Only rows that carry `lang` take part; English rows carry no BLEU and are counted in
//! `rows` only.

use crate::dimension::Tier;
use crate::manifest::translations::{read_cache_manifest, LanguageSummary, CACHE_MANIFEST_FILE};
use crate::results::ResultRow;
use crate::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// One row of translation_quality.csv: per model × approach × language × country, and per
/// model × approach × tier over every language (`lang` and `country` "all"; `tier` None =
/// all tiers).
#[derive(Debug, Clone, PartialEq)]
pub struct TranslationQuality {
    pub model: String,
    pub approach: String,
    /// NLLB code; None = every language.
    pub lang: Option<String>,
    /// None = every country.
    pub country: Option<String>,
    /// None = every tier.
    pub tier: Option<Tier>,
    /// Answers asked in the language(s).
    pub rows: usize,
    /// Answers whose request carries a round-trip BLEU (not English, back-translated).
    pub rows_with_bleu: usize,
    /// Mean round-trip BLEU of the requests over those answers.
    pub mean_bleu: Option<f64>,
    pub low_bleu_rows: usize,
    /// low_bleu_rows / rows_with_bleu.
    pub low_bleu_share: Option<f64>,
}

fn quality(
    key: &(String, String),
    lang: Option<String>,
    country: Option<String>,
    tier: Option<Tier>,
    rows: &[&ResultRow],
) -> TranslationQuality {
    let bleu: Vec<f64> = rows.iter().filter_map(|r| r.translation_bleu).collect();
    let low = rows.iter().filter(|r| r.low_bleu).count();
    let n_bleu = bleu.len();
    TranslationQuality {
        model: key.0.clone(),
        approach: key.1.clone(),
        lang,
        country,
        tier,
        rows: rows.len(),
        rows_with_bleu: n_bleu,
        mean_bleu: (n_bleu > 0).then(|| bleu.iter().sum::<f64>() / n_bleu as f64),
        low_bleu_rows: low,
        low_bleu_share: (n_bleu > 0).then(|| low as f64 / n_bleu as f64),
    }
}

/// Per model × approach: a row per (language, country) in first-seen order, then a row per
/// tier present and one for all tiers. Model × approach pairs without `lang` rows give none.
pub fn translation_quality(rows: &[ResultRow]) -> Vec<TranslationQuality> {
    let mut groups: BTreeMap<(String, String), Vec<&ResultRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.lang.is_some()) {
        groups
            .entry((r.model.clone(), r.approach.clone()))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for (key, rs) in &groups {
        let mut by_country: Vec<((&str, &str), Vec<&ResultRow>)> = Vec::new();
        for r in rs {
            let id = (r.lang.as_deref().expect("filtered"), r.country.as_str());
            match by_country.iter_mut().find(|(k, _)| *k == id) {
                Some((_, v)) => v.push(r),
                None => by_country.push((id, vec![r])),
            }
        }
        for ((lang, country), cr) in &by_country {
            out.push(quality(
                key,
                Some(lang.to_string()),
                Some(country.to_string()),
                Some(cr[0].tier),
                cr,
            ));
        }
        for tier in Tier::ALL {
            let in_tier: Vec<&ResultRow> = rs.iter().copied().filter(|r| r.tier == tier).collect();
            if !in_tier.is_empty() {
                out.push(quality(key, None, None, Some(tier), &in_tier));
            }
        }
        out.push(quality(key, None, None, None, rs));
    }
    out
}

/// Whether a model × approach × dimension group has translation quality to filter on.
pub fn has_bleu(rows: &[&ResultRow]) -> bool {
    rows.iter().any(|r| r.translation_bleu.is_some())
}

/// A language of a multilingual run's translation cache as the cache's manifest.json
/// reports it: corpus figures over every cached text of the language (requests, actions,
/// instructions), beside the per-request figures above.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheQuality {
    pub model: String,
    pub approach: String,
    /// The cache folder (the run's settings.translations).
    pub cache: String,
    pub lang: String,
    pub summary: LanguageSummary,
}

/// The cache figures of the languages in `quality`, for every run under `dir` whose
/// manifest names a translation cache. A run folder without a manifest, or a cache that is no
/// longer where the run found it, is left out (the per-request figures come from the rows and
/// need no cache); a manifest that is there but unreadable is an error naming it.
pub fn cache_quality(dir: &Path, quality: &[TranslationQuality]) -> Result<Vec<CacheQuality>> {
    let mut out = Vec::new();
    for results in super::results_files(dir)? {
        let Some(run) = results
            .parent()
            .map(crate::manifest::read_if_present)
            .transpose()?
            .flatten()
        else {
            continue;
        };
        let Some(cache) = run.settings.translations else {
            continue;
        };
        let cache_dir = Path::new(&cache);
        if !cache_dir.join(CACHE_MANIFEST_FILE).exists() {
            continue;
        }
        let manifest = read_cache_manifest(cache_dir)?;
        let (model, approach) = (run.model.name, run.settings.approach);
        let mut langs: Vec<&str> = quality
            .iter()
            .filter(|q| q.model == model && q.approach == approach)
            .filter_map(|q| q.lang.as_deref())
            .collect();
        langs.dedup();
        for lang in langs {
            if let Some(summary) = manifest.languages.get(lang) {
                out.push(CacheQuality {
                    model: model.clone(),
                    approach: approach.clone(),
                    cache: cache.clone(),
                    lang: lang.to_string(),
                    summary: summary.clone(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_run_manifest_is_an_error_and_a_missing_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("results.jsonl"), "").unwrap();
        assert!(cache_quality(dir.path(), &[]).unwrap().is_empty());
        std::fs::write(run.join("manifest.json"), "{\"tool\": ").unwrap();
        let err = cache_quality(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("manifest.json"), "{err}");
    }
}
