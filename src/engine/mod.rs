//! The engine: everything that turns a model file and a prompt into logits or text, with
//! nothing about Hofstede, prompt sets, runs or results. It could become its own crate.
//!
//! What it owns:
//! - [`gguf`]: GGUF files as untrusted input and their typed metadata reader;
//! - [`tokenizer`]: llama.cpp-exact tokenizers rebuilt from GGUF metadata, and Hugging Face
//!   `tokenizer.json` folders;
//! - [`chat_template`] and [`template_limits`]: rendering a model's own chat template, under
//!   limits;
//! - [`models`]: the decoder families (Llama, Gemma) behind `CausalLm`, their weights and
//!   matrix products, and the NLLB-200 translator;
//! - [`generate`]: batched free-text decoding and Hugging Face's sampling;
//! - [`hub`]: finding checkpoints in the local Hugging Face hub cache (offline);
//! - [`allocator`]: the process's allocator policy (freed tensor memory is kept for reuse).
//!
//! The rule: nothing here imports from outside `crate::engine` except `crate::error` (the
//! crate's `Error` and `Result`). `python3 docs/module_graph.py` checks it.

pub mod allocator;
pub mod chat_template;
pub mod device;
pub mod generate;
pub mod gguf;
pub mod hub;
pub mod kernels;
pub mod loaded_model;
pub mod models;
pub mod parallel;
pub mod readout;
pub mod template_limits;
pub mod tokenizer;
