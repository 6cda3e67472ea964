//! The skeleton every run shares, logits and generate alike: what the run covers, the folder's
//! lock and results, the model resolved on its devices, the manifest (checked against what the
//! folder holds before anything is written to it), the progress bar and the finish with stats.
//! `run::logits` and `run::generate` fill in how their rows are made.

use super::load::labels_info;
use crate::config::RunConfig;
use crate::countries::Country;
use crate::domain::Approach;
use crate::engine::loaded_model::LoadedModel;
use crate::engine::models::WeightFormat;
use crate::fetch::{self, ResolvedModel};
use crate::lock::DirLock;
use crate::manifest::{
    self, GenerationSettings, Manifest, ModelInfo, PromptsInfo, Settings, Timing, MANIFEST_FILE,
};
use crate::prompts::{PromptItem, PromptSet};
use crate::result_fields::{self, differences, Purpose, RunIdentity};
use crate::results::ResultsWriter;
use crate::shard::Shard;
use crate::translate::{self, LanguageTexts};
use crate::{stats, Error, Result};
use candle_core::Device;
use std::path::Path;
use std::time::Instant;

/// The prompts a run asks, read once the command line is checked: the prompt set, its items of
/// the selected dimensions, and for the multilingual approach every text's translation.
pub(crate) struct RunSelection {
    pub prompt_set: PromptSet,
    pub items: Vec<PromptItem>,
    pub translations: Option<Vec<LanguageTexts>>,
}

impl RunSelection {
    pub(crate) fn load(config: &RunConfig) -> Result<Self> {
        let selection = &config.selection;
        let prompt_set = PromptSet::from_option(selection.prompts.as_deref())?;
        let items = prompt_set.select(&selection.dimensions, selection.limit);
        if items.is_empty() {
            return Err(Error::Incompatible(format!(
                "the prompt set {} has no prompts for dimensions {:?}",
                prompt_set.source, selection.dimensions
            )));
        }
        let translations = match config.approach {
            Approach::Personas | Approach::Control => None,
            Approach::Multilingual => Some(load_translations(
                &selection.translations,
                &selection.countries,
                &items,
            )?),
        };
        Ok(Self {
            prompt_set,
            items,
            translations,
        })
    }
}

impl Settings {
    /// What a run records of its configuration; `format` is what `--weights` became on the
    /// run's devices.
    pub(crate) fn new(
        config: &RunConfig,
        selection: &RunSelection,
        format: WeightFormat,
        generation: Option<GenerationSettings>,
    ) -> Self {
        let translated = selection.translations.is_some();
        let backend = config.backend;
        Settings {
            approach: config.approach.code().into(),
            preset: config.preset.name().into(),
            countries: (config.selection.countries.iter())
                .map(|c| c.name.clone())
                .collect(),
            dimensions: config.selection.dimensions.clone(),
            limit: config.selection.limit,
            batch_size: config.batch_size,
            max_batch_tokens: config.max_batch_tokens,
            weights: format.name().into(),
            exact: Some(format.is_exact(backend == "cuda")),
            keep_text: config.keep_text,
            device: super::load::device_list(&config.devices),
            backend: backend.into(),
            translations: translated.then(|| config.selection.translations.display().to_string()),
            translations_sha256: selection
                .translations
                .as_deref()
                .map(translate::texts_sha256),
            bleu_threshold: translated.then_some(config.selection.bleu_threshold),
            generation,
            system: config.system.clone(),
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
    pub(crate) fn new(model: &ResolvedModel, sha256: String, scorer: &LoadedModel) -> Self {
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
    let old = manifest::read(dir)?;
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

/// The open run: its configuration, the prompts it asks, the folder (locked, its rows read)
/// and the model resolved onto its devices in the weight format it will be loaded in.
pub(crate) struct Session<'a> {
    pub config: &'a RunConfig,
    pub quiet: bool,
    pub selection: RunSelection,
    pub writer: ResultsWriter,
    /// Whether results.jsonl held rows before this run.
    has_rows: bool,
    pub model: ResolvedModel,
    pub model_sha: String,
    /// `config.devices`, opened.
    pub devices: Vec<Device>,
    pub format: WeightFormat,
    /// Held until the run ends (creating the folder): a second run into it is refused, never
    /// interleaved.
    _lock: DirLock,
}

impl<'a> Session<'a> {
    /// Read the prompts, lock the output folder and open its results, resolve the model and
    /// open the devices.
    pub(crate) fn open(config: &'a RunConfig, quiet: bool) -> Result<Self> {
        let selection = RunSelection::load(config)?;
        let lock = DirLock::acquire(&config.out)?;
        let (writer, existing) = ResultsWriter::open(&config.out)?;
        let model = fetch::resolve(config.model.as_deref(), quiet)?;
        let model_sha = fetch::model_sha256(&model.path)?;
        let devices: Vec<Device> = (config.devices.iter())
            .map(|d| d.open())
            .collect::<Result<_>>()?;
        let format = super::load::weight_format(config.weights, &model.path, &devices[0])?;
        Ok(Self {
            config,
            quiet,
            selection,
            writer,
            has_rows: !existing.is_empty(),
            model,
            model_sha,
            devices,
            format,
            _lock: lock,
        })
    }

    pub(crate) fn countries(&self) -> &'a [Country] {
        &self.config.selection.countries
    }

    /// The run's model on every device, with the card's template and the `--system` turn.
    pub(crate) fn load_scorers(&self, random_weights: Option<&str>) -> Result<Vec<LoadedModel>> {
        let card_template = self.model.card.as_ref().and_then(|c| c.template.as_deref());
        let mut scorers = super::load::load_replicas(
            &self.model.path,
            &self.devices,
            self.format,
            card_template,
            random_weights,
        )?;
        for s in &mut scorers {
            s.system.clone_from(&self.config.system);
        }
        Ok(scorers)
    }

    /// The run's manifest, before any row is made: refused when the folder holds rows made
    /// another way (another mode, other settings, another shard). The caller fills in the
    /// grid's size, the encoding time and the devices' shares.
    pub(crate) fn manifest(
        &self,
        scorer: &LoadedModel,
        generation: Option<GenerationSettings>,
        load_secs: f64,
    ) -> Result<Manifest> {
        let labels = labels_info(scorer);
        let model_info = ModelInfo::new(&self.model, self.model_sha.clone(), scorer);
        let prompts_info = PromptsInfo::of(&self.selection.prompt_set);
        let started = manifest::now();
        let settings = Settings::new(self.config, &self.selection, self.format, generation);
        let out = &self.config.out;
        if out.join(MANIFEST_FILE).exists() {
            result_fields::check_same_mode(out, &manifest::read(out)?.settings, &settings)?;
        }
        check_resumable(
            &self.config.out,
            &RunIdentity::this_version(&model_info, &prompts_info, &labels, &settings),
            self.config.shard,
            self.has_rows,
        )?;
        Ok(Manifest {
            tool: "hofbench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            model: model_info,
            prompts: prompts_info,
            settings,
            labels,
            started,
            finished: None,
            items_total: 0,
            shard: self.config.shard,
            grid_items: 0,
            items_scored_this_run: 0,
            tokens_this_run: 0,
            seconds: 0.0,
            tokens_per_second: 0.0,
            items_per_second: 0.0,
            timing: Timing {
                load: load_secs,
                ..Timing::default()
            },
            diagnostics: None,
            warnings: Vec::new(),
            devices: Vec::new(),
            merge: None,
        })
    }

    /// Write the starting manifest and start the progress over `to_do` of its
    /// `items_total` rows (`noun`: what a row is, `items` or `replies`).
    pub(crate) fn start(
        &self,
        manifest: &Manifest,
        to_do: usize,
        noun: &'static str,
    ) -> Result<Progress> {
        self.write_manifest(manifest)?;
        let total = manifest.items_total;
        if !self.quiet && total > to_do {
            eprintln!("resuming: {} of {total} {noun} already done", total - to_do);
        }
        Ok(Progress::new(to_do, noun, self.quiet))
    }

    /// Record the run's counts and rates (`rows` made, `tokens` computed or generated).
    pub(crate) fn finish(manifest: &mut Manifest, secs: f64, rows: usize, tokens: usize) {
        let rate = |n: usize| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        manifest.finished = Some(manifest::now());
        manifest.items_scored_this_run = rows;
        manifest.tokens_this_run = tokens;
        manifest.seconds = secs;
        manifest.tokens_per_second = rate(tokens);
        manifest.items_per_second = rate(rows);
    }

    pub(crate) fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        manifest::write(&self.config.out, manifest)
    }

    /// DIR/stats/ of the finished run, its summary on stdout.
    pub(crate) fn stats(&self) -> Result<()> {
        let summary = stats::run(&self.config.out)?;
        if !self.quiet {
            println!("{summary}");
            eprintln!("results in {}", self.config.out.display());
        }
        Ok(())
    }
}

/// A run's progress: a bar on a terminal, else (unless quiet) a line every half minute.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    log_lines: bool,
    last_log: Instant,
    started: Instant,
    total: usize,
    noun: &'static str,
}

impl Progress {
    fn new(total: usize, noun: &'static str, quiet: bool) -> Self {
        let bar = progress_bar(total as u64, quiet);
        Self {
            log_lines: !quiet && bar.is_hidden(),
            bar,
            last_log: Instant::now(),
            started: Instant::now(),
            total,
            noun,
        }
    }

    /// `rows` more done.
    pub(crate) fn advance(&mut self, rows: usize) {
        self.bar.inc(rows as u64);
        if self.log_lines && self.last_log.elapsed().as_secs() >= 30 {
            self.last_log = Instant::now();
            eprintln!(
                "{}/{} {noun}, {:.1} {noun}/s, ETA {}s",
                self.bar.position(),
                self.total,
                self.bar.per_sec(),
                self.bar.eta().as_secs(),
                noun = self.noun
            );
        }
    }

    /// Clear the bar; the seconds since the progress started.
    pub(crate) fn finish(self) -> f64 {
        self.bar.finish_and_clear();
        self.started.elapsed().as_secs_f64()
    }
}

fn progress_bar(len: u64, quiet: bool) -> indicatif::ProgressBar {
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
