//! hofbench: does an LLM's advice follow a country's Hofstede cultural values?
//!
//! Data flows: `prompts` + `countries` → `template` (persona turn) → the engine's
//! `chat_template` → `tokenizer` → `models` (a `CausalLm`) → `scorer` (option-letter
//! probabilities) → `results` (results.jsonl) → `stats` → `report`. `run` ties them together;
//! `fetch` finds weights; `import` turns the paper's released answers into results.jsonl.
//!
//! [`engine`] (gguf, tokenizer, chat template, models, decoding, hub cache) imports nothing
//! from the benchmark modules beside it.
//!
//! The module map (what each module owns and imports, its cycles and debts): docs/architecture.md.

pub mod bleu;
pub mod cli;
pub mod compare;
pub mod config;
pub mod countries;
pub mod dimension;
pub mod domain;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod files;
pub mod import;
pub mod item_scorer;
pub mod judge;
pub mod lock;
pub mod manifest;
pub mod merge;
pub mod prefill_bench;
pub mod prompts;
pub mod replies;
pub mod report;
pub mod result_fields;
pub mod results;
pub mod run;
pub mod shard;
pub mod stats;
pub mod system_prompt;
pub mod template;
pub mod translate;
pub mod verify;

pub use error::{Error, Result};
