//! Command-line arguments as clap parses them, and their conversion into the typed
//! configuration of `crate::config` (the only module that sees clap, with main).

use crate::config;
use crate::dimension::Dimension;
use crate::domain::{Approach, Mode, Preset, Weights};
use crate::engine::generate::Sampling;
use clap::builder::PossibleValue;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "hofbench",
    version,
    about = "Do an LLM's advice follow a country's Hofstede cultural values?"
)]
pub struct Cli {
    /// No progress bars or chatter on stderr (errors are still printed).
    #[arg(long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a model on the benchmark, write DIR/results.jsonl and DIR/manifest.json, then DIR/stats/.
    Run(Box<RunArgs>),
    /// Recompute DIR/stats/ from DIR/results.jsonl (or from every DIR/*/results.jsonl).
    Stats {
        /// A run's output folder, or a folder of run folders (one per model, say).
        dir: PathBuf,
        #[command(flatten)]
        stats: StatsArgs,
    },
    /// Write DIR/report/: plots (PNG and SVG), report.html and summary.md (and DIR/stats/).
    Report {
        /// A run's output folder, or a folder of run folders.
        dir: PathBuf,
        #[command(flatten)]
        stats: StatsArgs,
    },
    /// Paired comparison of two runs (or folders of runs): r, high-side share and accuracy per
    /// dimension, B − A with a paired bootstrap over countries; DIR/comparison.csv and .md.
    Compare(CompareArgs),
    /// Convert the paper's released per-response CSVs into DIR/results.jsonl.
    ImportResults {
        /// Personas or multilingual CSV files from the paper's repository.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The model name to give the rows (e.g. gpt-4).
        #[arg(long)]
        model: String,
        /// Output folder (must not hold a results.jsonl yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Combine the folders of `run --shard i/n` into one run folder (checks they belong together).
    Merge(MergeArgs),
    /// Re-score a seeded sample of a finished run with its recorded model and settings.
    Verify(VerifyArgs),
    /// Fetch a model card's weights into the cache (default: the default model).
    Fetch {
        /// Model card name (see `hofbench models`).
        model: Option<String>,
    },
    /// List the model cards.
    Models,
    /// Translate the prompts into the countries' languages with NLLB-200 (translation cache).
    Translate(TranslateArgs),
    /// Import the paper's released translation CSVs into a translation cache.
    ImportTranslations(ImportArgs),
    /// Benchmarks only (bench/gpu.sh): prefill throughput of a random-weight model.
    #[command(hide = true)]
    BenchPrefill(BenchPrefillArgs),
    /// Print a prompt set as JSONL: id, dimension, request, high_action, low_action.
    Prompts {
        /// A prompt file (.jsonl or the paper's .csv) or folder; default: the built-in set.
        #[arg(long)]
        prompts: Option<PathBuf>,
        /// Only this dimension (idv, mas, uai, pdi, lto).
        #[arg(long)]
        dimension: Option<String>,
    },
}

/// Settings of the statistics (`hofbench stats` and `hofbench report`).
#[derive(Debug, Clone, Copy, Args)]
pub struct StatsArgs {
    /// Seed of the bootstrap over countries.
    #[arg(long, default_value_t = crate::stats::Options::default().seed)]
    pub seed: u64,
    /// Bootstrap resamples per country-level correlation.
    #[arg(long, default_value_t = crate::stats::Options::default().resamples)]
    pub resamples: usize,
}

impl StatsArgs {
    pub fn options(&self) -> crate::stats::Options {
        crate::stats::Options {
            seed: self.seed,
            resamples: self.resamples,
        }
    }
}

/// The domain enums on the command line: their names are the ones manifests store
/// (`domain`), and their help the lines `--help` shows for each value.
macro_rules! value_enum {
    ($ty:ty: $($variant:ident => $help:literal),+ $(,)?) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                <$ty>::ALL
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.name()).help(match self {
                    $(<$ty>::$variant => $help),+
                }))
            }
        }
    };
}

value_enum!(Approach:
    Personas => "English prompt with the paper's persona sentence naming the country",
    Multilingual => "The prompt machine-translated into the country's language (see `hofbench translate`)",
    Control => "No persona: the personas prompt without its persona sentence, one set of rows per item (country `none`): the baseline of the persona effect (stats/persona_effect.csv)",
);
value_enum!(Mode:
    Logits => "Read the option letters' probabilities at the first answer token (one pass per prompt)",
    Generate => "The paper's method: sample free-text advice (`--rounds` replies per item) for a judge",
);
value_enum!(Preset:
    Quick => "All 36 countries and 5 dimensions, a few prompts each: minutes on a 2-core CPU",
    Paper => "The full grid: 36 countries × 250 prompts × 2 option orders",
);
value_enum!(Weights:
    Auto => "CPU: f32 when the f32 copy takes at most half the available memory, quantized otherwise. GPU: bf16 when the model fits the card's free memory, quantized otherwise",
    F32 => "Every tensor dequantized to f32 at load",
    Bf16 => "bf16 matrices and activations, f32 norms and logits: the fast path on a GPU",
    Quantized => "Weights kept as stored (GGUF blocks, bf16/f16 safetensors), every product computed in f32 on exactly dequantized values: the results of f32 in about the stored size",
    FastQuantized => "candle's quantized kernels, which round the activations to 8 bits: faster, not exact (the manifest records `exact: false`)",
);

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Model card name or path to a GGUF file (default: smollm2-135m-instruct).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_enum, default_value = "personas")]
    pub approach: Approach,
    #[arg(long, value_enum, default_value = "quick")]
    pub preset: Preset,
    /// Comma-separated country names (default: the preset's).
    #[arg(long)]
    pub countries: Option<String>,
    /// Comma-separated dimensions: idv,mas,uai,pdi,lto (default: all).
    #[arg(long)]
    pub dimensions: Option<String>,
    /// At most N prompts per dimension (default: the preset's).
    #[arg(long)]
    pub limit: Option<usize>,
    /// A prompt file (.jsonl or the paper's .csv) or folder (default: the built-in set).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Items per forward pass (each item is two rows, one per option order).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch_size: u64,
    /// Most padded prompt tokens per forward pass: items are sorted by length and a batch
    /// grows until --batch-size items or this many tokens (both orders, padding included).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batch_tokens: u64,
    /// Store the two rendered prompts of each item in results.jsonl.
    #[arg(long)]
    pub keep_text: bool,
    /// How to hold the weights in memory.
    #[arg(long, value_enum, default_value = "auto")]
    pub weights: Weights,
    /// Output folder; rerunning with the same folder resumes.
    #[arg(long)]
    pub out: PathBuf,
    /// Where to run: `cpu`, a CUDA GPU number (`0`), or several (`0,1,2,3`: one replica each).
    #[arg(long, default_value = "cpu")]
    pub devices: String,
    /// Run only shard i of n (0-based, e.g. 2/8) of the item grid; combine the shards'
    /// folders with `hofbench merge`.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Translation cache for --approach multilingual.
    #[arg(long, default_value = crate::translate::DEFAULT_DIR)]
    pub translations: PathBuf,
    /// Benchmarks only (bench/gpu.sh): score with random weights of this shape (`llama3-8b` or
    /// a Llama config.json) instead of --model's, keeping its tokenizer and chat template.
    #[arg(long, hide = true)]
    pub random_weights: Option<String>,
    /// Round-trip BLEU (0-1) below which a multilingual row is flagged `low_bleu`.
    #[arg(long, default_value_t = crate::translate::DEFAULT_BLEU_THRESHOLD)]
    pub bleu_threshold: f64,
    /// `logits` scores the option letters; `generate` samples free-text replies. In generate
    /// mode --batch-size counts prompts (replies made together).
    #[arg(long, value_enum, default_value = "logits")]
    pub mode: Mode,
    /// Generate mode: replies per item and country (round 1 lists the high action first,
    /// round 2 the low one, and so on).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Generate mode: the most tokens per reply.
    #[arg(long, default_value_t = 100)]
    pub max_new_tokens: usize,
    /// Generate mode: softmax temperature.
    #[arg(long, default_value_t = 0.6)]
    pub temperature: f64,
    /// Generate mode: nucleus sampling mass (1 disables it).
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f64,
    /// Generate mode: sample among the K likeliest tokens (0 disables it).
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Generate mode: Hugging Face's repetition penalty over prompt and reply (1 disables it).
    #[arg(long, default_value_t = 1.5)]
    pub repetition_penalty: f64,
    /// Generate mode: the seed every reply's random stream is derived from (with the model,
    /// approach, country, prompt and round).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Generate mode: always take the likeliest token (after the repetition penalty).
    #[arg(long)]
    pub greedy: bool,
    /// A system turn put before every prompt through the model's chat template (recorded in
    /// the manifest; a resume with another one is refused).
    #[arg(long, conflicts_with = "system_file")]
    pub system: Option<String>,
    /// Read the --system text from a file.
    #[arg(long, value_name = "PATH")]
    pub system_file: Option<PathBuf>,
    /// Generate mode: the model that judges which action each reply recommends (card name,
    /// GGUF path, model folder or hub id, as --model); default: the model that wrote them.
    #[arg(long)]
    pub judge: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A run's folder, or a folder of run folders.
    pub a: PathBuf,
    /// The other run's folder, or a folder of run folders.
    pub b: PathBuf,
    /// Where comparison.csv and comparison.md go.
    #[arg(long, default_value = "comparison")]
    pub out: PathBuf,
    #[command(flatten)]
    pub stats: StatsArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' output folders (`run --shard i/n --out DIR`), one per shard.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Folder of the merged run (must not hold results yet).
    #[arg(long)]
    pub out: PathBuf,
    /// Merge even when shards are missing or unfinished (the manifest lists what is missing).
    #[arg(long)]
    pub allow_incomplete: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A finished run's folder (results.jsonl and manifest.json).
    pub dir: PathBuf,
    /// How many rows to re-score (drawn with --seed); their whole batches are re-scored.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: u64,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to re-score (as `run --devices`), e.g. a GPU for a run made on the CPU.
    #[arg(long, default_value = "cpu")]
    pub devices: String,
    /// The model file or folder, when it is no longer where the manifest says (its sha256
    /// must still match).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// An NLLB-200 checkpoint: a Hugging Face folder (config.json, tokenizer.json,
    /// *.safetensors) or a hub-cache entry (models--facebook--nllb-200-3.3B).
    #[arg(long)]
    pub model: PathBuf,
    /// `all` (every country's language) or comma-separated NLLB codes, e.g. kor_Hang,fra_Latn.
    #[arg(long, default_value = "all")]
    pub languages: String,
    /// A prompt file (.jsonl or the paper's .csv) or folder (default: the built-in set).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Beam width; 1 is greedy.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub beams: u64,
    /// Maximum decoder length in tokens (default: min(200, 1.5 x source + 10)).
    #[arg(long, value_parser = clap::value_parser!(u64).range(3..=4096))]
    pub max_length: Option<u64>,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch_size: u64,
    /// Skip translating back to English (no round-trip BLEU/chrF).
    #[arg(long)]
    pub no_back_translation: bool,
    /// Translation cache folder; a rerun translates only what is missing.
    #[arg(long, default_value = crate::translate::DEFAULT_DIR)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The paper's translation CSVs.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Translation cache folder.
    #[arg(long, default_value = crate::translate::DEFAULT_DIR)]
    pub out: PathBuf,
    /// The prompt set the English texts are matched against (default: the built-in set).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// An NLLB-200 checkpoint to translate what the files lack (actions, instructions);
    /// without one they stay in English, as recorded in the manifest.
    #[arg(long)]
    pub model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchPrefillArgs {
    /// The shape: `llama3-8b` or a Llama config.json.
    #[arg(long, default_value = "llama3-8b")]
    pub random_weights: String,
    /// `cpu` or a CUDA GPU number.
    #[arg(long, default_value = "cpu")]
    pub devices: String,
    /// f32 or bf16 (auto: bf16 on a GPU, f32 on the CPU).
    #[arg(long, value_enum, default_value = "auto")]
    pub weights: Weights,
    /// Comma-separated BATCHxLENGTH cells.
    #[arg(long, default_value = "1x128,4x512,16x512,32x512,64x256")]
    pub grid: String,
    /// Timed passes per cell (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// The card's dense peak in TFLOP/s for the weights' dtype: adds MFU to each line.
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Seed of the weights and token ids.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The flags of one mode only: given with the other mode they are refused, not ignored.
const MODE_FLAGS: &[(&str, Mode)] = &[
    ("--judge", Mode::Generate),
    ("--rounds", Mode::Generate),
    ("--max-new-tokens", Mode::Generate),
    ("--temperature", Mode::Generate),
    ("--top-p", Mode::Generate),
    ("--top-k", Mode::Generate),
    ("--repetition-penalty", Mode::Generate),
    ("--seed", Mode::Generate),
    ("--greedy", Mode::Generate),
    ("--random-weights", Mode::Logits),
];

/// The command line, parsed (clap's own errors and `--help` exit here, as clap does) and
/// turned into the typed configuration of its command: `quiet` and that configuration, or the
/// first problem with it, before anything was opened or written.
pub fn parse() -> (bool, crate::Result<config::Command>) {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let command = match matches.subcommand() {
        Some((_, sub)) => cli.command.config(sub),
        None => unreachable!("clap requires a subcommand"),
    };
    (cli.quiet, command)
}

/// The mode-specific flags the command line of `run` typed (`run` being its matches): whether
/// a flag was given, not whether its value equals the default.
fn given_mode_flags(run: &ArgMatches) -> Vec<&'static str> {
    MODE_FLAGS
        .iter()
        .map(|&(flag, _)| flag)
        .filter(|flag| {
            let id = flag.trim_start_matches("--").replace('-', "_");
            run.value_source(&id) == Some(ValueSource::CommandLine)
        })
        .collect()
}

impl RunArgs {
    /// The run's configuration; `given` lists the mode-specific flags the command line set.
    pub fn config(&self, given: &[&str]) -> crate::Result<config::RunConfig> {
        config::check_mode_flags(self.mode, given, MODE_FLAGS)?;
        let mode = match self.mode {
            Mode::Logits => config::ModeConfig::Logits {
                random_weights: self.random_weights.clone(),
            },
            Mode::Generate => {
                let sampling = Sampling {
                    temperature: self.temperature,
                    top_p: self.top_p,
                    top_k: self.top_k,
                    repetition_penalty: self.repetition_penalty,
                    greedy: self.greedy,
                };
                sampling.check()?;
                config::ModeConfig::Generate(config::GenerateConfig {
                    sampling,
                    max_new_tokens: self.max_new_tokens,
                    rounds: self.rounds,
                    seed: self.seed,
                    judge: self.judge.clone(),
                })
            }
        };
        let selection = config::Selection {
            countries: config::countries(self.approach, self.countries.as_deref())?,
            dimensions: Dimension::parse_list(self.dimensions.as_deref().unwrap_or("all"))?,
            limit: config::limit(self.preset, self.limit),
            prompts: self.prompts.clone(),
            translations: self.translations.clone(),
            bleu_threshold: self.bleu_threshold,
        };
        let (devices, backend) = config::devices(&self.devices)?;
        if self.mode == Mode::Generate && devices.len() > 1 {
            return Err(crate::Error::Usage(
                "--devices: --mode generate runs on one device".into(),
            ));
        }
        Ok(config::RunConfig {
            model: self.model.clone(),
            approach: self.approach,
            preset: self.preset,
            selection,
            batch_size: self.batch_size as usize,
            max_batch_tokens: self.max_batch_tokens as usize,
            keep_text: self.keep_text,
            weights: self.weights,
            out: self.out.clone(),
            devices,
            backend,
            shard: config::shard(self.shard.as_deref())?,
            system: crate::system_prompt::read(
                self.system.as_deref(),
                self.system_file.as_deref(),
            )?,
            mode,
        })
    }
}

impl Command {
    /// The configuration of the command; `matches` are its own (the subcommand's).
    fn config(self, matches: &ArgMatches) -> crate::Result<config::Command> {
        Ok(match self {
            Command::Run(args) => {
                config::Command::Run(Box::new(args.config(&given_mode_flags(matches))?))
            }
            Command::Stats { dir, stats } => config::Command::Stats {
                dir,
                options: stats.options(),
            },
            Command::Report { dir, stats } => config::Command::Report {
                dir,
                options: stats.options(),
            },
            Command::Compare(a) => config::Command::Compare(config::CompareConfig {
                a: a.a,
                b: a.b,
                out: a.out,
                stats: a.stats.options(),
            }),
            Command::ImportResults { files, model, out } => {
                config::Command::ImportResults { files, model, out }
            }
            Command::Merge(a) => config::Command::Merge(config::MergeConfig {
                dirs: a.dirs,
                out: a.out,
                allow_incomplete: a.allow_incomplete,
            }),
            Command::Verify(a) => {
                let (devices, _) = config::devices(&a.devices)?;
                config::Command::Verify(config::VerifyConfig {
                    dir: a.dir,
                    sample: a.sample as usize,
                    seed: a.seed,
                    devices,
                    model: a.model,
                })
            }
            Command::Fetch { model } => config::Command::Fetch { model },
            Command::Models => config::Command::Models,
            Command::Translate(a) => config::Command::Translate(config::TranslateConfig {
                model: a.model,
                languages: a.languages,
                prompts: a.prompts,
                beams: a.beams as usize,
                max_length: a.max_length.map(|n| n as usize),
                batch_size: a.batch_size as usize,
                back_translation: !a.no_back_translation,
                out: a.out,
            }),
            Command::ImportTranslations(a) => {
                config::Command::ImportTranslations(config::ImportTranslationsConfig {
                    files: a.files,
                    out: a.out,
                    prompts: a.prompts,
                    model: a.model,
                })
            }
            Command::BenchPrefill(a) => {
                let grid = crate::prefill_bench::parse_grid(&a.grid)?;
                let device = crate::engine::device::DeviceSpec::parse_list(&a.devices)?[0];
                config::Command::BenchPrefill(config::BenchPrefillConfig {
                    random_weights: a.random_weights,
                    device,
                    weights: a.weights,
                    grid,
                    repeats: a.repeats,
                    peak_tflops: a.peak_tflops,
                    seed: a.seed,
                })
            }
            Command::Prompts { prompts, dimension } => config::Command::Prompts {
                prompts,
                dimension: dimension.as_deref().map(str::parse).transpose()?,
            },
        })
    }
}
