//! Which parts of a run's manifest change its results: the one definition that a resumed run
//! (`run::check_resumable`, logits and generate runs alike; [`check_same_mode`] for the mode)
//! and `merge` compare, so that neither a rerun into a folder nor a merge of shards mixes rows
//! scored two ways.
//!
//! Every `settings` field counts unless it is listed in [`NOT_RESULT_CHANGING`]: a field added
//! to `Settings` later is result-changing without anyone remembering to add it here. Nested
//! objects are compared field by field (`settings.generation.seed`), so that a refusal names
//! the very setting that differs.

use crate::manifest::{LabelsInfo, Manifest, ModelInfo, PromptsInfo, Settings};
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// Settings that change no result: where the work ran (`device`: replicas of one backend give
/// the very same rows; `backend` is compared), the preset's name (its `limit` is compared),
/// and the translation folder's path (its content, `translations_sha256`, is compared).
pub const NOT_RESULT_CHANGING: &[&str] = &[
    "settings.device",
    "settings.preset",
    "settings.translations",
];

/// What the comparison is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Rerunning into a folder: a generate run may add rounds (`settings.generation.rounds`
    /// may change; [`check_same_mode`] compares the rest of `settings.generation` even before
    /// a folder holds rows), and the shard is checked on its own.
    Resume,
    /// Combining shards: they must cut one grid into the same number of shards.
    Merge,
}

/// The parts of a run that identify how its rows were made.
pub struct RunIdentity<'a> {
    pub version: &'a str,
    pub model: &'a ModelInfo,
    pub prompts: &'a PromptsInfo,
    pub labels: &'a LabelsInfo,
    pub settings: &'a Settings,
}

impl<'a> RunIdentity<'a> {
    /// A run of this hofbench about to write into a folder.
    pub fn this_version(
        model: &'a ModelInfo,
        prompts: &'a PromptsInfo,
        labels: &'a LabelsInfo,
        settings: &'a Settings,
    ) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            model,
            prompts,
            labels,
            settings,
        }
    }

    /// The run a manifest records.
    pub fn of(m: &'a Manifest) -> Self {
        Self {
            version: &m.version,
            model: &m.model,
            prompts: &m.prompts,
            labels: &m.labels,
            settings: &m.settings,
        }
    }

    /// (name, value) of every result-changing field, in a fixed order.
    pub fn fields(&self, purpose: Purpose) -> Vec<(String, String)> {
        let mut out = vec![
            ("version".to_string(), self.version.to_string()),
            ("model.name".into(), self.model.name.clone()),
            ("model.sha256".into(), self.model.sha256.clone()),
            (
                "model.chat_template".into(),
                self.model.chat_template.clone(),
            ),
            ("prompts.sha256".into(), self.prompts.sha256.clone()),
            ("labels".into(), json(self.labels)),
        ];
        out.extend(settings_fields(self.settings, purpose));
        out
    }
}

/// (name, value) of every result-changing field of `settings`, in a fixed order.
fn settings_fields(settings: &Settings, purpose: Purpose) -> Vec<(String, String)> {
    let mut settings = serde_json::to_value(settings).expect("settings serialize");
    // Selections are sets: the command line's order changes nothing.
    for key in ["countries", "dimensions"] {
        if let Some(Value::Array(list)) = settings.get_mut(key) {
            list.sort_by_key(|v| v.to_string());
        }
    }
    let mut out = Vec::new();
    flatten("settings", &settings, &mut out);
    out.retain(|(name, _)| {
        let may_grow = purpose == Purpose::Resume && name == "settings.generation.rounds";
        !(may_grow || NOT_RESULT_CHANGING.contains(&name.as_str()))
    });
    out
}

/// Refuse to mix the two modes in one folder, even one whose run was killed before its first
/// row: a logits run (`generation` None) where a generate run wrote, a generate run where a
/// logits run wrote, or generate runs that make their replies differently (by the
/// `settings.generation` fields a resume compares: `rounds` may change).
pub fn check_same_mode(dir: &Path, old: &Settings, new: &Settings) -> Result<()> {
    let problem = match (&old.generation, &new.generation) {
        (None, None) => None,
        (Some(_), None) => Some("a generate run (--mode generate)".to_string()),
        (None, Some(_)) => Some("a logits run (--mode logits)".to_string()),
        (Some(_), Some(_)) => {
            let generation = |s: &Settings| -> Vec<(String, String)> {
                settings_fields(s, Purpose::Resume)
                    .into_iter()
                    .filter(|(name, _)| name.starts_with("settings.generation."))
                    .collect()
            };
            let differing: Vec<String> = differences(&generation(new), &generation(old))
                .into_iter()
                .map(|(name, mine, theirs)| format!("{name} is {mine} now but {theirs} there"))
                .collect();
            (!differing.is_empty()).then(|| {
                format!(
                    "a generate run with other settings ({})",
                    differing.join("; ")
                )
            })
        }
    };
    match problem {
        Some(what) => Err(Error::Incompatible(format!(
            "{} holds {what}; use another --out",
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// The fields that differ between `mine` and `theirs`, as (name, mine, theirs); a field only
/// one side has (a manifest written before the field existed) differs too, shown as "absent".
pub fn differences(
    mine: &[(String, String)],
    theirs: &[(String, String)],
) -> Vec<(String, String, String)> {
    let find = |list: &[(String, String)], name: &str| {
        list.iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| "absent".to_string(), |(_, v)| v.clone())
    };
    let mut names: Vec<&String> = mine.iter().map(|(n, _)| n).collect();
    for (n, _) in theirs {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
        .into_iter()
        .map(|name| (name.clone(), find(mine, name), find(theirs, name)))
        .filter(|(_, a, b)| a != b)
        .collect()
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("manifest fields serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: serde_json::Value) -> Settings {
        let mut v = serde_json::json!({
            "approach": "multilingual", "preset": "quick", "countries": ["Japan", "Albania"],
            "dimensions": ["idv"], "limit": 3, "batch_size": 8, "max_batch_tokens": 4096,
            "weights": "f32", "keep_text": false, "device": "cpu", "backend": "cpu",
            "translations": "prompts/translations", "translations_sha256": "ab",
            "bleu_threshold": 0.2
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn fields(s: &Settings, purpose: Purpose) -> Vec<(String, String)> {
        let model = ModelInfo {
            name: "m".into(),
            path: "m.gguf".into(),
            sha256: "00".into(),
            description: String::new(),
            chat_template: "gguf".into(),
        };
        let prompts = PromptsInfo {
            source: "builtin".into(),
            sha256: "11".into(),
            items: 1,
        };
        let labels = LabelsInfo {
            a: vec![1],
            b: vec![2],
            a_text: vec!["A".into()],
            b_text: vec!["B".into()],
        };
        RunIdentity {
            version: "0.1.0",
            model: &model,
            prompts: &prompts,
            labels: &labels,
            settings: s,
        }
        .fields(purpose)
    }

    /// Every field `Settings` serializes is compared unless it is listed as not changing
    /// results: a field added later is covered without being named here.
    #[test]
    fn every_settings_field_but_the_listed_ones_is_compared() {
        let s = settings(serde_json::json!({}));
        let names: Vec<String> = fields(&s, Purpose::Resume)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let serialized = serde_json::to_value(&s).unwrap();
        for key in serialized.as_object().unwrap().keys() {
            let name = format!("settings.{key}");
            assert_eq!(
                names.contains(&name),
                !NOT_RESULT_CHANGING.contains(&name.as_str()),
                "{name}"
            );
        }
        let base = fields(&s, Purpose::Resume);
        for (change, field) in [
            (
                serde_json::json!({"weights": "quantized"}),
                "settings.weights",
            ),
            (serde_json::json!({"backend": "cuda"}), "settings.backend"),
            (serde_json::json!({"keep_text": true}), "settings.keep_text"),
            (
                serde_json::json!({"bleu_threshold": 0.3}),
                "settings.bleu_threshold",
            ),
            (
                serde_json::json!({"translations_sha256": "cd"}),
                "settings.translations_sha256",
            ),
        ] {
            let diff = differences(&fields(&settings(change), Purpose::Resume), &base);
            assert_eq!(diff.len(), 1, "{field}: {diff:?}");
            assert_eq!(diff[0].0, field);
        }
        // What changes no result: the device list, the preset's name, the cache's path, and
        // the order of a selection.
        let same = settings(serde_json::json!({
            "device": "cpu,cpu", "preset": "paper", "translations": "elsewhere",
            "countries": ["Albania", "Japan"]
        }));
        assert!(differences(&fields(&same, Purpose::Resume), &base).is_empty());
    }
}
