//! Command-line arguments, parsed once with clap into typed values.

use clap::{Args, Parser, Subcommand, ValueEnum};
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
    Run(RunArgs),
    /// Recompute DIR/stats/ from DIR/results.jsonl.
    Stats {
        /// A run's output folder.
        dir: PathBuf,
    },
    /// Fetch a model card's weights into the cache (default: the default model).
    Fetch {
        /// Model card name (see `hofbench models`).
        model: Option<String>,
    },
    /// List the model cards.
    Models,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Approach {
    /// English prompt with the paper's persona sentence naming the country.
    Personas,
}

impl Approach {
    pub fn code(self) -> &'static str {
        match self {
            Approach::Personas => "personas",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// All 36 countries and 5 dimensions, a few prompts each: minutes on a 2-core CPU.
    Quick,
    /// The full grid: 36 countries × 250 prompts × 2 option orders.
    Paper,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Weights {
    /// f32 on CPU for models up to ~1B parameters, quantized above.
    Auto,
    F32,
    Quantized,
}

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
}
