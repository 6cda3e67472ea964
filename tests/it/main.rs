//! The integration tests, one binary: each former `tests/X.rs` is the module `X` here, so
//! hofbench and candle are linked once instead of once per file. `harness` runs the built
//! `hofbench` binary; `common` holds the fixture and scoring helpers of the parity tests.
//! Run one file's tests with a filter: `cargo test --release --test it cli::`.
//! (tests/cuda_kernels.rs stays a binary of its own: bench/build-cuda.sh ships it to GPU
//! machines alone.)

mod common;
mod harness;

mod agreement;
mod bleu_sacrebleu;
mod cli;
mod control_system;
mod families;
mod generate;
mod gguf_fuzz;
mod import;
mod judge;
mod nllb_parity;
mod parity;
mod parity_gemma;
mod persona_compare_scipy;
mod quant_formats;
mod report;
mod scale;
mod stats_scipy;
mod tokenizer_parity;
mod translate_pipeline;
