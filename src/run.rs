//! `hofbench run`: build the item grid, score what is not done yet, batch by batch, then stats.

use crate::cli::{Approach, Mode, Preset, RunArgs, Weights};
use crate::countries::{self, Country};
use crate::device::DeviceSpec;
use crate::dimension::Dimension;
use crate::fetch::{self, ResolvedModel};
use crate::models::WeightFormat;
use crate::prompts::{PromptItem, PromptSet};
use crate::results::{self, ResultRow, ResultsWriter};
use crate::scorer::{token_budget_batches, OptionScore, Scorer};
use crate::template::{multilingual_user_turn, personas_user_turn, Order, TranslatedItem};
use crate::translate::{self, LanguageTexts};
use crate::{stats, Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Instant, SystemTime};

/// Prompts per dimension in the quick preset: 36 countries × 5 dimensions × this many items
/// keeps the default run within minutes on a 2-core CPU.
pub const QUICK_LIMIT: usize = 3;

pub const MANIFEST_FILE: &str = "manifest.json";

/// Everything a run was made with; a resumed run must match on the parts that change results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub model: ModelInfo,
    pub prompts: PromptsInfo,
    pub settings: Settings,
    pub labels: LabelsInfo,
    pub started: String,
    pub finished: Option<String>,
    pub items_total: usize,
    pub items_scored_this_run: usize,
    pub tokens_this_run: usize,
    pub seconds: f64,
    pub tokens_per_second: f64,
    pub items_per_second: f64,
    /// Where this run's time went, in seconds.
    #[serde(default)]
    pub timing: Timing,
    /// How informative the model's answers are, over every row in results.jsonl.
    #[serde(default)]
    pub diagnostics: Option<Diagnostics>,
    /// Warnings printed during the run.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    pub load: f64,
    /// Rendering the chat template and tokenizing.
    pub encode: f64,
    /// Forward passes and reading the label probabilities.
    pub score: f64,
    /// Writing results.jsonl.
    pub write: f64,
    pub forward_passes: usize,
    /// Tokens the passes computed (shared prefixes once, padding included) over the prompt
    /// tokens: below 1 when prefix sharing saves more than padding costs.
    pub computed_token_ratio: f64,
}

/// Mean label mass below this: the model's next token is mostly not an option letter, so its
/// A/B preference says little.
pub const LOW_LABEL_MASS: f64 = 0.1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Diagnostics {
    pub rows: usize,
    /// Mean over rows and both orders of P(A) + P(B) in the whole next-token distribution.
    pub mean_label_mass: f64,
    /// Mean over rows and both orders of P(A) / (P(A) + P(B)), whatever A says: 0.5 is
    /// unbiased, above prefers the first option shown.
    pub position_bias_p_a: f64,
}

impl Diagnostics {
    pub fn from_rows(rows: &[ResultRow]) -> Option<Self> {
        let rows: Vec<&ResultRow> = rows.iter().collect();
        // The same definitions as stats/diagnostics.csv (which reports the bias minus 0.5).
        let d = stats::diagnostics::diagnostics(&rows);
        Some(Self {
            rows: d.n,
            mean_label_mass: d.mean_label_mass?,
            position_bias_p_a: d.position_bias? + 0.5,
        })
    }

    /// The warning to print when the model rarely answers with an option letter.
    pub fn warning(&self, model: &str) -> Option<String> {
        (self.mean_label_mass < LOW_LABEL_MASS).then(|| {
            format!(
                "warning: {model} puts only {:.3} of its next-token probability on the option \
                 letters on average (below {LOW_LABEL_MASS}): its A/B preferences say little",
                self.mean_label_mass
            )
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub description: String,
    pub chat_template: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PromptsInfo {
    pub source: String,
    pub sha256: String,
    pub items: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub approach: String,
    pub preset: String,
    pub countries: Vec<String>,
    pub dimensions: Vec<Dimension>,
    pub limit: Option<usize>,
    pub batch_size: usize,
    #[serde(default)]
    pub max_batch_tokens: usize,
    pub weights: String,
    pub keep_text: bool,
    pub device: String,
    /// Translation cache of a multilingual run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translations: Option<String>,
    /// Round-trip BLEU below which multilingual rows are flagged `low_bleu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bleu_threshold: Option<f64>,
    /// Sampling settings of a generate run (`--mode generate`); absent for a logits run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<crate::generate::run::GenerationSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelsInfo {
    pub a: Vec<u32>,
    pub b: Vec<u32>,
    pub a_text: Vec<String>,
    pub b_text: Vec<String>,
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub(crate) fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// One (country, prompt) pair with its two tokenized prompts.
struct Work<'a> {
    country: &'a Country,
    item: &'a PromptItem,
    texts: [String; 2],
    ids: [Vec<u32>; 2],
    /// Multilingual approach: the prompt's NLLB language and its request's round-trip BLEU.
    lang: Option<String>,
    bleu: Option<f64>,
}

impl Work<'_> {
    /// `scores` are the two orders' readings: order 0 shows the high action as A, order 1 as B.
    fn result_row(
        &self,
        model: &str,
        approach: &str,
        scores: &[OptionScore],
        keep_text: bool,
        bleu_threshold: f64,
    ) -> ResultRow {
        let by_order = [scores[0].p_a, 1.0 - scores[1].p_a];
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
            p_high: Some((by_order[0] + by_order[1]) / 2.0),
            p_high_by_order: Some(by_order),
            label_mass: Some([scores[0].label_mass, scores[1].label_mass]),
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

pub fn run(args: &RunArgs, quiet: bool) -> Result<()> {
    if args.mode == Mode::Generate {
        return crate::generate::run::run(args, quiet);
    }
    // Check everything the user typed before any slow work.
    let all_countries = countries::builtin();
    let countries = countries::select(&all_countries, args.countries.as_deref().unwrap_or("all"))?;
    let dimensions = Dimension::parse_list(args.dimensions.as_deref().unwrap_or("all"))?;
    let limit = args.limit.or(match args.preset {
        Preset::Quick => Some(QUICK_LIMIT),
        Preset::Paper => None,
    });
    let prompt_set = PromptSet::from_option(args.prompts.as_deref())?;
    let items = prompt_set.select(&dimensions, limit);
    if items.is_empty() {
        return Err(Error::Usage(format!(
            "the prompt set {} has no prompts for dimensions {:?}",
            prompt_set.source, dimensions
        )));
    }
    // The multilingual approach needs every text translated before any slow work.
    let translations: Option<Vec<LanguageTexts>> = match args.approach {
        Approach::Personas => None,
        Approach::Multilingual => {
            let mut langs: Vec<String> = Vec::new();
            for c in &countries {
                if !langs.contains(&c.nllb_code) {
                    langs.push(c.nllb_code.clone());
                }
            }
            Some(translate::load_for_run(&args.translations, &langs, &items)?)
        }
    };
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let (mut writer, existing) = ResultsWriter::open(&args.out)?;

    let model: ResolvedModel = fetch::resolve(args.model.as_deref(), quiet)?;
    let model_sha = fetch::model_sha256(&model.path)?;
    let devices = DeviceSpec::parse_list(&args.devices)?;
    if devices.len() > 1 {
        return Err(Error::Usage(
            "--devices: data-parallel runs over several devices are not implemented yet".into(),
        ));
    }
    let device = devices[0].open()?;
    let format = weight_format(args.weights, &model.path)?;
    let t_load = Instant::now();
    let mut scorer = Scorer::load(&model.path, &device, format)?;
    // A base model's card may ask for the plain format even if its tokenizer has a template.
    let card_template = model.card.as_ref().and_then(|c| c.template.as_deref());
    if card_template == Some("plain") && scorer.chat.from_model {
        scorer.chat = crate::template::ChatTemplate::new(None, "", "")?;
    }
    let load_secs = t_load.elapsed().as_secs_f64();
    if !quiet {
        eprintln!(
            "loaded {} ({}) in {:.1}s",
            model.name,
            scorer.model.describe(),
            t_load.elapsed().as_secs_f64()
        );
    }
    let labels = labels_info(&scorer);
    let model_info = ModelInfo {
        name: model.name.clone(),
        path: model.path.display().to_string(),
        sha256: model_sha,
        description: scorer.model.describe(),
        chat_template: match (scorer.chat.from_model, model.path.is_dir()) {
            (true, false) => "gguf",
            (true, true) => "tokenizer_config",
            (false, _) => "plain",
        }
        .to_string(),
    };
    let prompts_info = PromptsInfo {
        source: prompt_set.source.clone(),
        sha256: prompt_set.hash(),
        items: prompt_set.items.len(),
    };
    let started = now();
    check_resumable(
        &args.out,
        &model_info,
        &prompts_info,
        &labels,
        !existing.is_empty(),
    )?;
    crate::generate::run::check_generation_settings(&args.out, None)?;

    let approach = args.approach.code();
    // The grid, minus what an earlier run finished.
    let t_encode = Instant::now();
    let mut work = Vec::new();
    for item in &items {
        for country in &countries {
            let key = (
                model.name.clone(),
                approach.to_string(),
                item.dimension,
                country.name.clone(),
                item.id.clone(),
                results::MODE_LOGITS.to_string(),
                0,
            );
            if writer.is_done(&key) {
                continue;
            }
            let mut texts: [String; 2] = Default::default();
            let mut ids: [Vec<u32>; 2] = Default::default();
            let translated = translations.as_ref().map(|all| {
                let lang = all
                    .iter()
                    .find(|t| t.lang == country.nllb_code)
                    .expect("load_for_run covers every selected country's language");
                (lang, &lang.items[&item.id])
            });
            for (k, order) in Order::BOTH.into_iter().enumerate() {
                let turn = match translated {
                    None => personas_user_turn(&country.persona_name, item, order)?,
                    Some((lang, rows)) => multilingual_user_turn(
                        &TranslatedItem {
                            request: &rows[0].translation,
                            high_action: &rows[1].translation,
                            low_action: &rows[2].translation,
                            choose: &lang.instructions[0],
                            answer: &lang.instructions[1],
                            request_has_choice: item.request_has_choice,
                        },
                        order,
                    )?,
                };
                (texts[k], ids[k]) = scorer.encode_user_turn(&turn)?;
            }
            work.push(Work {
                country,
                item,
                texts,
                ids,
                lang: translated.map(|(l, _)| l.lang.clone()),
                bleu: translated.and_then(|(_, rows)| rows[0].bleu),
            });
        }
    }
    let encode_secs = t_encode.elapsed().as_secs_f64();
    let items_total = items.len() * countries.len();
    // Similar lengths together waste less on padding; the sort is stable, so runs repeat.
    work.sort_by_key(|w| w.ids[0].len().max(w.ids[1].len()));
    let pairs: Vec<[&[u32]; 2]> = work
        .iter()
        .map(|w| [&w.ids[0][..], &w.ids[1][..]])
        .collect();
    let (batches, padded) = token_budget_batches(
        &pairs,
        args.batch_size as usize,
        args.max_batch_tokens as usize,
    );

    let mut manifest = Manifest {
        tool: "hofbench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        model: model_info,
        prompts: prompts_info,
        settings: Settings {
            approach: approach.into(),
            preset: format!("{:?}", args.preset).to_lowercase(),
            countries: countries.iter().map(|c| c.name.clone()).collect(),
            dimensions: dimensions.clone(),
            limit,
            batch_size: args.batch_size as usize,
            max_batch_tokens: args.max_batch_tokens as usize,
            weights: format!("{format:?}").to_lowercase(),
            keep_text: args.keep_text,
            device: "cpu".into(),
            translations: translations
                .is_some()
                .then(|| args.translations.display().to_string()),
            bleu_threshold: translations.is_some().then_some(args.bleu_threshold),
            generation: None,
        },
        labels,
        started,
        finished: None,
        items_total,
        items_scored_this_run: 0,
        tokens_this_run: 0,
        seconds: 0.0,
        tokens_per_second: 0.0,
        items_per_second: 0.0,
        timing: Timing {
            load: load_secs,
            encode: encode_secs,
            ..Timing::default()
        },
        diagnostics: None,
        warnings: Vec::new(),
    };
    write_json_atomic(&args.out.join(MANIFEST_FILE), &manifest)?;
    if !quiet && items_total > work.len() {
        eprintln!(
            "resuming: {} of {items_total} items already done",
            items_total - work.len()
        );
    }

    let bar = progress_bar(work.len() as u64, quiet);
    // Without a terminal the bar is invisible: log a line every half minute instead.
    let log_lines = !quiet && bar.is_hidden();
    let mut last_log = Instant::now();
    let t0 = Instant::now();
    let mut tokens = 0usize;
    for range in batches {
        let batch = &work[range];
        let rows: Vec<&[u32]> = batch
            .iter()
            .flat_map(|w| [&w.ids[0][..], &w.ids[1][..]])
            .collect();
        let names: Vec<String> = batch
            .iter()
            .flat_map(|w| {
                ["high_first", "low_first"].map(|o| format!("{}/{}/{o}", w.country.name, w.item.id))
            })
            .collect();
        let t_score = Instant::now();
        let scores = scorer.score(&rows, 2, &names)?;
        manifest.timing.score += t_score.elapsed().as_secs_f64();
        manifest.timing.forward_passes += 1;
        tokens += rows.iter().map(|r| r.len()).sum::<usize>();
        let out: Vec<ResultRow> = batch
            .iter()
            .zip(scores.chunks(2))
            .map(|(w, s)| {
                w.result_row(
                    &model.name,
                    approach,
                    s,
                    args.keep_text,
                    args.bleu_threshold,
                )
            })
            .collect();
        let t_write = Instant::now();
        writer.append(&out)?;
        manifest.timing.write += t_write.elapsed().as_secs_f64();
        bar.inc(batch.len() as u64);
        if log_lines && last_log.elapsed().as_secs() >= 30 {
            last_log = Instant::now();
            eprintln!(
                "{}/{} items, {:.1} items/s, ETA {}s",
                bar.position(),
                work.len(),
                bar.per_sec(),
                bar.eta().as_secs()
            );
        }
    }
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    manifest.finished = Some(now());
    manifest.items_scored_this_run = work.len();
    manifest.tokens_this_run = tokens;
    manifest.seconds = secs;
    let rate = |n: usize| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    manifest.tokens_per_second = rate(tokens);
    manifest.items_per_second = rate(work.len());
    manifest.timing.computed_token_ratio = if tokens > 0 {
        padded as f64 / tokens as f64
    } else {
        0.0
    };
    let all_rows = crate::results::read(&args.out.join(crate::results::RESULTS_FILE))?.rows;
    let mine: Vec<ResultRow> = all_rows
        .into_iter()
        .filter(|r| r.model == model.name && r.approach == approach)
        .collect();
    manifest.diagnostics = Diagnostics::from_rows(&mine);
    if let Some(warning) = manifest
        .diagnostics
        .as_ref()
        .and_then(|d| d.warning(&model.name))
    {
        // Printed even with --quiet: it changes how the results should be read.
        eprintln!("{warning}");
        manifest.warnings.push(warning);
    }
    write_json_atomic(&args.out.join(MANIFEST_FILE), &manifest)?;
    if !quiet {
        let t = &manifest.timing;
        eprintln!(
            "scored {} items ({} prompts, {tokens} tokens) in {secs:.1}s: {:.1} items/s, {:.0} tok/s",
            work.len(),
            2 * work.len(),
            manifest.items_per_second,
            manifest.tokens_per_second
        );
        eprintln!(
            "time: load {:.1}s, encode {:.1}s, score {:.1}s ({} passes computing {:.2}x the prompt tokens), write {:.2}s",
            t.load, t.encode, t.score, t.forward_passes, t.computed_token_ratio, t.write
        );
        if let Some(d) = &manifest.diagnostics {
            eprintln!(
                "position bias: P(A) = {:.3} averaged over {} items and both orders (0.5 = none); \
                 mean label mass {:.3}",
                d.position_bias_p_a, d.rows, d.mean_label_mass
            );
        }
    }
    let summary = stats::run(&args.out)?;
    if !quiet {
        println!("{summary}");
        eprintln!("results in {}", args.out.display());
    }
    Ok(())
}

/// A folder may be resumed only by the same model, prompt set and labels.
pub(crate) fn check_resumable(
    dir: &Path,
    model: &ModelInfo,
    prompts: &PromptsInfo,
    labels: &LabelsInfo,
    has_rows: bool,
) -> Result<()> {
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() {
        if has_rows {
            return Err(Error::Usage(format!(
                "{} has results.jsonl but no manifest.json; use another --out",
                dir.display()
            )));
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let old: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(&path, e.line(), e.to_string()))?;
    if old.model.sha256 != model.sha256
        || old.prompts.sha256 != prompts.sha256
        || &old.labels != labels
    {
        return Err(Error::Usage(format!(
            "{} holds results of another model or prompt set ({} / {}); use another --out",
            dir.display(),
            old.model.name,
            old.prompts.source
        )));
    }
    Ok(())
}

/// `--weights auto`: f32 matmuls beat candle's quantized CPU kernels by far on small models
/// (bench/scorer.rs); above ~1 GiB of GGUF the memory cost of f32 is not worth it.
pub(crate) fn weight_format(choice: Weights, path: &Path) -> Result<WeightFormat> {
    Ok(match choice {
        Weights::F32 => WeightFormat::F32,
        Weights::Quantized => WeightFormat::Quantized,
        Weights::Auto if path.is_dir() => {
            // A folder's safetensors are f32 on CPU; Q8_0 above ~1B parameters (2 GiB bf16).
            let mut size = 0;
            for f in crate::models::weights::safetensors_files(path)? {
                size += std::fs::metadata(&f).map_err(|e| Error::io(&f, e))?.len();
            }
            if size < 2 << 30 {
                WeightFormat::F32
            } else {
                WeightFormat::Quantized
            }
        }
        Weights::Auto => {
            let size = std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .len();
            if size < 1 << 30 {
                WeightFormat::F32
            } else {
                WeightFormat::Quantized
            }
        }
    })
}

pub(crate) fn labels_info(scorer: &Scorer) -> LabelsInfo {
    let labels = &scorer.labels;
    let text = |ids: &[u32]| {
        ids.iter()
            .map(|&i| scorer.tokenizer.decode(&[i]).unwrap_or_default())
            .collect()
    };
    LabelsInfo {
        a: labels.a.clone(),
        b: labels.b.clone(),
        a_text: text(&labels.a),
        b_text: text(&labels.b),
    }
}

pub(crate) fn progress_bar(len: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    // Draws on stderr only when it is a terminal.
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} items  {per_sec}  ETA {eta}  [{elapsed_precise}]",
        )
        .expect("valid progress template"),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p_high_by_order: [f64; 2], label_mass: [f64; 2]) -> ResultRow {
        ResultRow {
            p_high: Some((p_high_by_order[0] + p_high_by_order[1]) / 2.0),
            p_high_by_order: Some(p_high_by_order),
            label_mass: Some(label_mass),
            ..crate::results::tests::row("Japan", "idv-001", 0.5)
        }
    }

    #[test]
    fn position_bias_averages_p_a_over_both_orders() {
        // A model that always says A: P(high) is 1 when high is A and 0 when high is B.
        let always_a = [row([1.0, 0.0], [0.5, 0.7]), row([1.0, 0.0], [0.5, 0.7])];
        let d = Diagnostics::from_rows(&always_a).unwrap();
        assert_eq!(d.position_bias_p_a, 1.0);
        assert!((d.mean_label_mass - 0.6).abs() < 1e-12);
        assert!(d.warning("m").is_none());
        // One that always prefers the high action, whatever its letter, has no position bias.
        let d = Diagnostics::from_rows(&[row([0.8, 0.8], [0.01, 0.03])]).unwrap();
        assert!((d.position_bias_p_a - 0.5).abs() < 1e-12);
        let w = d.warning("m").unwrap();
        assert!(w.contains("0.020") && w.contains("below 0.1"), "{w}");
        assert!(Diagnostics::from_rows(&[]).is_none());
    }
}
