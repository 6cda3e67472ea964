//! `hofbench run`: build the item grid, score what is not done yet, batch by batch, then stats.

use crate::cli::{Approach, Mode, Preset, RunArgs, Weights};
use crate::countries::{self, Country};
use crate::device::{self, DeviceSpec};
use crate::dimension::Dimension;
use crate::fetch::{self, ResolvedModel};
use crate::models::WeightFormat;
use crate::parallel::run_on_replicas;
use crate::prompts::{PromptItem, PromptSet};
use crate::result_fields::{differences, Purpose, RunIdentity};
use crate::results::{self, ResultRow, ResultsWriter};
use crate::scorer::{token_budget_batches, OptionScore, Scorer};
use crate::shard::Shard;
use crate::template::{multilingual_user_turn, personas_user_turn, Order, TranslatedItem};
use crate::translate::{self, LanguageTexts};
use crate::{stats, Error, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::ops::Range;
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
    /// Items of this run's grid (of its shard, with `--shard`).
    pub items_total: usize,
    /// `--shard i/n`: which slice of the grid this folder holds (`hofbench merge` combines them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Items of the whole grid, all shards together.
    #[serde(default)]
    pub grid_items: usize,
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
    /// What each replica of `--devices` did in this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceUse>,
    /// Set by `hofbench merge`: the shard folders this run was combined from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<crate::merge::MergeInfo>,
}

/// One replica's share of a data-parallel run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceUse {
    pub device: String,
    pub batches: usize,
    pub items: usize,
    /// Seconds in forward passes.
    pub score_seconds: f64,
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

pub use crate::stats::position::LOW_LABEL_MASS;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Diagnostics {
    pub rows: usize,
    /// Mean over rows and both orders of P(A) + P(B) in the whole next-token distribution.
    pub mean_label_mass: f64,
    /// Mean over rows and both orders of P(A) / (P(A) + P(B)), whatever A says: 0.5 is
    /// unbiased, above prefers the first option shown.
    pub position_bias_p_a: f64,
    /// Share of items whose choice changes side when the options swap places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_flip_share: Option<f64>,
    /// Share of choices (both orders) that pick the first option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_first_option: Option<f64>,
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
            order_flip_share: d.order_flip_share,
            share_first_option: d.share_first_option,
        })
    }

    /// The warnings to print: the model rarely answers with an option letter, or its answers
    /// follow the options' position rather than their content (`stats::position`).
    pub fn warnings(&self, model: &str) -> Vec<String> {
        let d = stats::Diagnostics {
            n: self.rows,
            mean_label_mass: Some(self.mean_label_mass),
            order_flip_share: self.order_flip_share,
            share_first_option: self.share_first_option,
            ..stats::Diagnostics::default()
        };
        [
            stats::position::label_mass_warning(model, &d),
            stats::position::position_warning(model, &d),
        ]
        .into_iter()
        .flatten()
        .collect()
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
    /// Whether every product ran in f32 on the weights exactly as stored (false for
    /// `fast-quantized`'s 8-bit activations and for bf16); absent in runs recorded before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<bool>,
    pub keep_text: bool,
    /// The `--devices` list, e.g. `cpu` or `cuda:0,cuda:1`.
    pub device: String,
    /// `cpu` or `cuda`: results of different backends differ by float rounding (within 2e-3),
    /// those of more or fewer replicas of one backend do not at all.
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Translation cache of a multilingual run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translations: Option<String>,
    /// sha256 of the cached texts the run asks (`translate::texts_sha256`): what a resumed
    /// or merged run compares instead of the cache's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translations_sha256: Option<String>,
    /// Round-trip BLEU below which multilingual rows are flagged `low_bleu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bleu_threshold: Option<f64>,
    /// Sampling settings of a generate run (`--mode generate`); absent for a logits run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<crate::generate::run::GenerationSettings>,
    /// `--system`: the system turn before every prompt; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// Runs recorded before the backend was: every one of them ran on the CPU.
fn default_backend() -> String {
    "cpu".into()
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

/// Write through a temporary file, synced before the rename, so that neither a kill nor a
/// power cut leaves a half-written or empty manifest.
pub(crate) fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    std::io::Write::write_all(&mut file, &serde_json::to_vec_pretty(value)?)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => crate::results::sync_dir(dir),
        _ => Ok(()),
    }
}

/// Read a run's manifest.json.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::bad_input_from(&path, e.line(), "not a run manifest", e))
}

/// One (country, prompt) pair with its two tokenized prompts.
pub(crate) struct Work<'a> {
    country: &'a Country,
    item: &'a PromptItem,
    texts: [String; 2],
    ids: [Vec<u32>; 2],
    /// Multilingual approach: the prompt's NLLB language and its request's round-trip BLEU.
    lang: Option<String>,
    bleu: Option<f64>,
}

impl Work<'_> {
    /// The key of this item's row in results.jsonl.
    pub(crate) fn key(&self, model: &str, approach: &str) -> crate::results::RowKey {
        (
            model.to_string(),
            approach.to_string(),
            self.item.dimension,
            self.country.name.clone(),
            self.item.id.clone(),
            crate::results::MODE_LOGITS.to_string(),
            0,
        )
    }

    /// `scores` are the two orders' readings: order 0 shows the high action as A, order 1 as B.
    pub(crate) fn result_row(
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

/// The item grid in its canonical order: dimensions in their fixed order, prompts in
/// prompt-set order, countries in the built-in table's order, whatever order the command line
/// listed them in. Shards (`--shard`) are cut from this order.
pub(crate) fn grid<'a>(
    items: &'a [PromptItem],
    countries: &'a [Country],
) -> Vec<(&'a PromptItem, &'a Country)> {
    let table = countries::builtin();
    let table_position = |c: &Country| {
        table
            .iter()
            .position(|t| t.name == c.name)
            .unwrap_or(usize::MAX)
    };
    let mut items: Vec<&PromptItem> = items.iter().collect();
    items.sort_by_key(|i| i.dimension); // stable: prompt-set order within a dimension
    let mut countries: Vec<&Country> = countries.iter().collect();
    countries.sort_by_key(|c| table_position(c));
    items
        .iter()
        .flat_map(|&item| countries.iter().map(move |&country| (item, country)))
        .collect()
}

/// Render and tokenize both option orders of one (country, prompt) pair.
pub(crate) fn encode_work<'a>(
    scorer: &Scorer,
    item: &'a PromptItem,
    country: &'a Country,
    translations: Option<&[LanguageTexts]>,
) -> Result<Work<'a>> {
    let mut texts: [String; 2] = Default::default();
    let mut ids: [Vec<u32>; 2] = Default::default();
    let translated = translations.map(|all| {
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
    Ok(Work {
        country,
        item,
        texts,
        ids,
        lang: translated.map(|(l, _)| l.lang.clone()),
        bleu: translated.and_then(|(_, rows)| rows[0].bleu),
    })
}

/// Sort work by length and cut it into batches under the token budget. Runs (and `verify`)
/// always batch a folder's whole grid this way, whatever was finished before: a row's
/// probabilities depend on its batch neighbours' padding at the float-rounding level, so
/// keeping the batches fixed makes a resumed run and a re-score bit-identical to a run made
/// in one go.
pub(crate) fn batch_work(
    work: &mut [Work],
    batch_size: usize,
    max_batch_tokens: usize,
) -> (Vec<Range<usize>>, usize) {
    // Similar lengths together waste less on padding; the sort is stable, so runs repeat.
    work.sort_by_key(|w| w.ids[0].len().max(w.ids[1].len()));
    let pairs: Vec<[&[u32]; 2]> = work
        .iter()
        .map(|w| [&w.ids[0][..], &w.ids[1][..]])
        .collect();
    token_budget_batches(&pairs, batch_size, max_batch_tokens)
}

/// The batches of `shard` among the whole grid's `batches` (all of them without a shard).
pub(crate) fn shard_batches(batches: Vec<Range<usize>>, shard: Option<Shard>) -> Vec<Range<usize>> {
    batches
        .into_iter()
        .enumerate()
        .filter(|(b, _)| shard.is_none_or(|s| s.contains_batch(*b)))
        .map(|(_, range)| range)
        .collect()
}

/// One forward pass over a batch of items: both orders' scores per item, in item order.
pub(crate) fn score_batch(scorer: &Scorer, batch: &[Work]) -> Result<Vec<OptionScore>> {
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
    scorer.score(&rows, 2, &names)
}

/// Load one scorer per device, all at once (each replica reads the weights itself).
/// `random_weights` (`--random-weights SHAPE`, for GPU benchmarks) swaps each replica's model
/// for a seeded random one of that shape, keeping the tokenizer and template.
pub(crate) fn load_replicas(
    path: &Path,
    devices: &[Device],
    format: WeightFormat,
    card_template: Option<&str>,
    random_weights: Option<&str>,
) -> Result<Vec<Scorer>> {
    let load = |device: &Device| -> Result<Scorer> {
        let mut scorer = Scorer::load(path, device, format)?;
        // A base model's card may ask for the plain format even if its tokenizer has a template.
        if card_template == Some("plain") && scorer.chat.from_model {
            scorer.chat = crate::template::ChatTemplate::new(None, "", "")?;
        }
        if let Some(shape) = random_weights {
            let (cfg, _) = crate::models::random::config(shape)?;
            if cfg.vocab_size < scorer.tokenizer.vocab_size() {
                return Err(Error::Usage(format!(
                    "--random-weights {shape}: {} tokens, fewer than the tokenizer's {}",
                    cfg.vocab_size,
                    scorer.tokenizer.vocab_size()
                )));
            }
            scorer.model = Box::new(crate::models::random::load(&cfg, device, format, 0)?);
        }
        Ok(scorer)
    };
    if let [device] = devices {
        return Ok(vec![load(device)?]);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .map(|device| s.spawn(move || load(device)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("loading a replica panicked"))
            .collect()
    })
}

/// What a run covers, checked from the command line before any slow work: countries,
/// dimensions and prompts, and for the multilingual approach every text's translation.
pub(crate) struct RunSelection {
    pub countries: Vec<Country>,
    pub dimensions: Vec<Dimension>,
    pub limit: Option<usize>,
    pub prompt_set: PromptSet,
    pub items: Vec<PromptItem>,
    pub translations: Option<Vec<LanguageTexts>>,
    /// `--system` / `--system-file`.
    pub system: Option<String>,
}

impl RunSelection {
    pub(crate) fn from_args(args: &RunArgs) -> Result<Self> {
        let countries = match (args.approach, &args.countries) {
            (Approach::Control, Some(_)) => {
                return Err(Error::Usage(
                    "--approach control asks without any country: leave out --countries".into(),
                ))
            }
            (Approach::Control, None) => vec![countries::control()],
            (_, list) => {
                countries::select(&countries::builtin(), list.as_deref().unwrap_or("all"))?
            }
        };
        let dimensions = Dimension::parse_list(args.dimensions.as_deref().unwrap_or("all"))?;
        let limit = args.limit.or(match args.preset {
            Preset::Quick => Some(QUICK_LIMIT),
            Preset::Paper => None,
        });
        let prompt_set = PromptSet::from_option(args.prompts.as_deref())?;
        let items = prompt_set.select(&dimensions, limit);
        if items.is_empty() {
            return Err(Error::Incompatible(format!(
                "the prompt set {} has no prompts for dimensions {:?}",
                prompt_set.source, dimensions
            )));
        }
        let translations = match args.approach {
            Approach::Personas | Approach::Control => None,
            Approach::Multilingual => {
                Some(load_translations(&args.translations, &countries, &items)?)
            }
        };
        Ok(Self {
            countries,
            dimensions,
            limit,
            prompt_set,
            items,
            translations,
            system: crate::system_prompt::from_args(args)?,
        })
    }
}

impl Settings {
    /// What a run records of its command line; `device` is the `--devices` list as run.
    pub(crate) fn new(
        args: &RunArgs,
        selection: &RunSelection,
        format: WeightFormat,
        device: String,
        backend: &str,
        generation: Option<crate::generate::run::GenerationSettings>,
    ) -> Self {
        let translated = selection.translations.is_some();
        Settings {
            approach: args.approach.code().into(),
            preset: format!("{:?}", args.preset).to_lowercase(),
            countries: selection.countries.iter().map(|c| c.name.clone()).collect(),
            dimensions: selection.dimensions.clone(),
            limit: selection.limit,
            batch_size: args.batch_size as usize,
            max_batch_tokens: args.max_batch_tokens as usize,
            weights: format.name().into(),
            exact: Some(format.is_exact(backend == "cuda")),
            keep_text: args.keep_text,
            device,
            backend: backend.into(),
            translations: translated.then(|| args.translations.display().to_string()),
            translations_sha256: selection
                .translations
                .as_deref()
                .map(translate::texts_sha256),
            bleu_threshold: translated.then_some(args.bleu_threshold),
            generation,
            system: selection.system.clone(),
        }
    }
}

/// The translations of `items` into the languages of `countries`, from the cache at `dir`.
pub(crate) fn load_translations(
    dir: &Path,
    countries: &[Country],
    items: &[PromptItem],
) -> Result<Vec<LanguageTexts>> {
    let mut langs: Vec<String> = Vec::new();
    for c in countries {
        if !langs.contains(&c.nllb_code) {
            langs.push(c.nllb_code.clone());
        }
    }
    translate::load_for_run(dir, &langs, items)
}

impl ModelInfo {
    pub(crate) fn new(model: &ResolvedModel, sha256: String, scorer: &Scorer) -> Self {
        ModelInfo {
            name: model.name.clone(),
            path: model.path.display().to_string(),
            sha256,
            description: scorer.model.describe(),
            chat_template: match (scorer.chat.from_model, model.path.is_dir()) {
                (true, false) => "gguf",
                (true, true) => "tokenizer_config",
                (false, _) => "plain",
            }
            .to_string(),
        }
    }
}

impl PromptsInfo {
    pub(crate) fn of(prompt_set: &PromptSet) -> Self {
        PromptsInfo {
            source: prompt_set.source.clone(),
            sha256: prompt_set.hash(),
            items: prompt_set.items.len(),
        }
    }
}

pub fn run(args: &RunArgs, quiet: bool) -> Result<()> {
    if args.mode == Mode::Generate {
        return crate::generate::run::run(args, quiet);
    }
    let selection = RunSelection::from_args(args)?;
    let RunSelection {
        countries,
        prompt_set,
        items,
        translations,
        ..
    } = &selection;
    let devices = DeviceSpec::parse_list(&args.devices)?;
    let backend = device::backend(&devices)?;
    let shard: Option<Shard> = args.shard.as_deref().map(str::parse).transpose()?;
    // Held until the run ends (creating the folder): a second run into it is refused, never
    // interleaved.
    let _lock = crate::lock::DirLock::acquire(&args.out)?;
    let (mut writer, existing) = ResultsWriter::open(&args.out)?;

    let mut model: ResolvedModel = fetch::resolve(args.model.as_deref(), quiet)?;
    let model_sha = fetch::model_sha256(&model.path)?;
    let opened: Vec<Device> = devices.iter().map(|d| d.open()).collect::<Result<_>>()?;
    let format = weight_format(args.weights, &model.path, &opened[0])?;
    let t_load = Instant::now();
    let card_template = model.card.as_ref().and_then(|c| c.template.as_deref());
    let mut scorers = load_replicas(
        &model.path,
        &opened,
        format,
        card_template,
        args.random_weights.as_deref(),
    )?;
    for s in &mut scorers {
        s.system.clone_from(&selection.system);
    }
    let scorer = &scorers[0];
    if let Some(shape) = &args.random_weights {
        model.name = format!("random-{}", crate::models::random::config(shape)?.1);
    }
    let load_secs = t_load.elapsed().as_secs_f64();
    if !quiet {
        eprintln!(
            "loaded {} ({}) on {} in {:.1}s",
            model.name,
            scorer.model.describe(),
            device_list(&devices),
            load_secs
        );
    }
    let labels = labels_info(scorer);
    let model_info = ModelInfo::new(&model, model_sha, scorer);
    let prompts_info = PromptsInfo::of(prompt_set);
    let started = now();
    let settings = Settings::new(
        args,
        &selection,
        format,
        device_list(&devices),
        backend,
        None,
    );
    crate::generate::run::check_generation_settings(&args.out, None)?;
    check_resumable(
        &args.out,
        &RunIdentity::this_version(&model_info, &prompts_info, &labels, &settings),
        shard,
        !existing.is_empty(),
    )?;

    let approach = args.approach.code();
    // The whole grid, batched as an unsharded run batches it (see `batch_work`); a shard
    // takes whole batches of it (see `shard`), and the finished items are skipped batch by
    // batch below.
    let t_encode = Instant::now();
    let full_grid = grid(items, countries);
    let grid_items = full_grid.len();
    let mut work = Vec::with_capacity(grid_items);
    for &(item, country) in &full_grid {
        work.push(encode_work(scorer, item, country, translations.as_deref())?);
    }
    let encode_secs = t_encode.elapsed().as_secs_f64();
    let (batches, padded) = batch_work(
        &mut work,
        args.batch_size as usize,
        args.max_batch_tokens as usize,
    );
    let batches = shard_batches(batches, shard);
    let items_total: usize = batches.iter().map(Range::len).sum();
    let key = |w: &Work| w.key(&model.name, approach);
    let pending: Vec<Range<usize>> = batches
        .iter()
        .filter(|b| work[(*b).clone()].iter().any(|w| !writer.is_done(&key(w))))
        .cloned()
        .collect();
    let to_score = batches
        .iter()
        .flat_map(|b| &work[b.clone()])
        .filter(|w| !writer.is_done(&key(w)))
        .count();

    let mut manifest = Manifest {
        tool: "hofbench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        model: model_info,
        prompts: prompts_info,
        settings,
        labels,
        started,
        finished: None,
        items_total,
        shard,
        grid_items,
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
        devices: devices
            .iter()
            .map(|d| DeviceUse {
                device: d.to_string(),
                ..DeviceUse::default()
            })
            .collect(),
        merge: None,
    };
    write_json_atomic(&args.out.join(MANIFEST_FILE), &manifest)?;
    if !quiet && items_total > to_score {
        eprintln!(
            "resuming: {} of {items_total} items already done",
            items_total - to_score
        );
    }

    let bar = progress_bar(to_score as u64, quiet);
    // Without a terminal the bar is invisible: log a line every half minute instead.
    let log_lines = !quiet && bar.is_hidden();
    let mut last_log = Instant::now();
    let t0 = Instant::now();
    let mut tokens = 0usize;
    let mut scored = 0usize;
    run_on_replicas(
        &scorers,
        &pending,
        |scorer, range| {
            let t_score = Instant::now();
            let scores = score_batch(scorer, &work[range.clone()])?;
            Ok((scores, t_score.elapsed().as_secs_f64()))
        },
        |replica, b, (scores, secs)| {
            let batch = &work[pending[b].clone()];
            let used = &mut manifest.devices[replica];
            used.batches += 1;
            used.items += batch.len();
            used.score_seconds += secs;
            manifest.timing.score += secs;
            manifest.timing.forward_passes += 1;
            tokens += batch
                .iter()
                .map(|w| w.ids[0].len() + w.ids[1].len())
                .sum::<usize>();
            // A batch cut by a kill is scored whole again; only its missing rows are written.
            let out: Vec<ResultRow> = batch
                .iter()
                .zip(scores.chunks(2))
                .filter(|(w, _)| !writer.is_done(&key(w)))
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
            scored += out.len();
            bar.inc(out.len() as u64);
            if log_lines && last_log.elapsed().as_secs() >= 30 {
                last_log = Instant::now();
                eprintln!(
                    "{}/{} items, {:.1} items/s, ETA {}s",
                    bar.position(),
                    to_score,
                    bar.per_sec(),
                    bar.eta().as_secs()
                );
            }
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    manifest.finished = Some(now());
    manifest.items_scored_this_run = scored;
    manifest.tokens_this_run = tokens;
    manifest.seconds = secs;
    let rate = |n: usize| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    manifest.tokens_per_second = rate(tokens);
    manifest.items_per_second = rate(scored);
    // Of the whole grid's batches: a property of the batching, the same on a resume.
    let grid_tokens: usize = work.iter().map(|w| w.ids[0].len() + w.ids[1].len()).sum();
    manifest.timing.computed_token_ratio = if grid_tokens > 0 {
        padded as f64 / grid_tokens as f64
    } else {
        0.0
    };
    let all_rows = crate::results::read(&args.out.join(crate::results::RESULTS_FILE))?.rows;
    let mine: Vec<ResultRow> = all_rows
        .into_iter()
        .filter(|r| r.model == model.name && r.approach == approach)
        .collect();
    manifest.diagnostics = Diagnostics::from_rows(&mine);
    let warnings = manifest
        .diagnostics
        .as_ref()
        .map_or_else(Vec::new, |d| d.warnings(&model.name));
    for warning in warnings {
        // Printed even with --quiet: it changes how the results should be read.
        eprintln!("{warning}");
        manifest.warnings.push(warning);
    }
    write_json_atomic(&args.out.join(MANIFEST_FILE), &manifest)?;
    if !quiet {
        let t = &manifest.timing;
        eprintln!(
            "scored {} items ({} prompts, {tokens} tokens) in {secs:.1}s: {:.1} items/s, {:.0} tok/s",
            scored,
            2 * scored,
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

/// A folder holding rows may be resumed only with every result-changing setting the same
/// (`result_fields`: model, prompts, labels, weights, backend, template, translations, …) and
/// as the same shard: otherwise its rows would be scored two ways.
pub(crate) fn check_resumable(
    dir: &Path,
    new: &RunIdentity,
    shard: Option<Shard>,
    has_rows: bool,
) -> Result<()> {
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() {
        if has_rows {
            return Err(Error::Incompatible(format!(
                "{} has results.jsonl but no manifest.json; use another --out",
                dir.display()
            )));
        }
        return Ok(());
    }
    if !has_rows {
        return Ok(());
    }
    let old = read_manifest(dir)?;
    let differing: Vec<String> = differences(
        &new.fields(Purpose::Resume),
        &RunIdentity::of(&old).fields(Purpose::Resume),
    )
    .into_iter()
    .map(|(name, mine, theirs)| format!("{name} is {mine} now but {theirs} there"))
    .collect();
    if !differing.is_empty() {
        return Err(Error::Incompatible(format!(
            "{} holds results of {} / {} made with other settings: {}; rerun with the \
             settings in its manifest.json or use another --out",
            dir.display(),
            old.model.name,
            old.prompts.source,
            differing.join("; ")
        )));
    }
    if old.shard != shard {
        let name =
            |s: Option<Shard>| s.map_or("the whole grid".to_string(), |s| format!("shard {s}"));
        return Err(Error::Incompatible(format!(
            "{} holds {} but this run is {}; use another --out",
            dir.display(),
            name(old.shard),
            name(shard)
        )));
    }
    Ok(())
}

/// `--weights auto` on the CPU: f32 while its copy of the weights takes at most half the
/// available memory (dense gemm, nothing dequantized per pass), else the weights as stored
/// with the same exact f32 compute. On a GPU, see [`gpu_weight_format`].
pub(crate) fn weight_format(
    choice: Weights,
    path: &Path,
    device: &candle_core::Device,
) -> Result<WeightFormat> {
    Ok(match choice {
        Weights::F32 => WeightFormat::F32,
        Weights::Bf16 => WeightFormat::Bf16,
        Weights::Quantized => WeightFormat::Quantized,
        Weights::FastQuantized => WeightFormat::FastQuantized,
        Weights::Auto if device.is_cuda() => gpu_weight_format(path, device)?,
        Weights::Auto => {
            let f32_bytes = 4 * parameter_count(path)?;
            let fits = match crate::device::host_available_memory() {
                Some(available) => f32_bytes <= available / 2,
                None => f32_bytes <= 4 << 30,
            };
            if fits {
                WeightFormat::F32
            } else {
                WeightFormat::Quantized
            }
        }
    })
}

/// Parameters of a GGUF file or a Hugging Face folder (whose safetensors are bf16 or f16
/// nearly always: 2 bytes a parameter).
fn parameter_count(path: &Path) -> Result<u64> {
    if path.is_dir() {
        let mut bytes = 0;
        for f in crate::models::weights::safetensors_files(path)? {
            bytes += std::fs::metadata(&f).map_err(|e| Error::io(&f, e))?.len();
        }
        return Ok(bytes / 2);
    }
    let gguf = crate::gguf::GgufFile::open(path)?;
    Ok(gguf
        .content
        .tensor_infos
        .values()
        .map(|t| t.shape.elem_count() as u64)
        .sum())
}

/// `cuda:0,cuda:1`, as recorded in the manifest.
fn device_list(devices: &[DeviceSpec]) -> String {
    devices
        .iter()
        .map(DeviceSpec::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `--weights auto` on a GPU: f32 below 1B parameters, where it costs little and keeps
/// P(option) within 2e-3 of a CPU run (bf16 moved SmolLM2's by up to 0.05); bf16 (tensor
/// cores) when the weights in bf16 take at most 80% of the card's free memory, leaving the rest
/// for activations; quantized otherwise (a Q4 70B on a 48 GB card).
fn gpu_weight_format(path: &Path, device: &candle_core::Device) -> Result<WeightFormat> {
    let params = parameter_count(path)?;
    Ok(match crate::device::free_memory(device) {
        _ if params < 1_000_000_000 => WeightFormat::F32,
        Some(free) if 2 * params <= free / 5 * 4 => WeightFormat::Bf16,
        _ => WeightFormat::Quantized,
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
        // It always says A: every item flips with the option order.
        let w = d.warnings("m");
        assert!(w.len() == 1 && w[0].contains("position"), "{w:?}");
        // One that always prefers the high action, whatever its letter, has no position bias.
        let d = Diagnostics::from_rows(&[row([0.8, 0.8], [0.01, 0.03])]).unwrap();
        assert!((d.position_bias_p_a - 0.5).abs() < 1e-12);
        let w = d.warnings("m");
        assert!(w.len() == 1, "{w:?}");
        assert!(
            w[0].contains("0.020") && w[0].contains("below 0.1"),
            "{w:?}"
        );
        assert!(Diagnostics::from_rows(&[]).is_none());
    }
}
