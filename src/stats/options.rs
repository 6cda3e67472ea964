//! What an analysis is run with: the bootstrap's seed and resamples (`Options`, the defaults
//! of `hofbench stats`) and the confidence level of every interval.

/// The level of every confidence interval of the tables (Fisher z, bootstrap).
pub const CONFIDENCE: f64 = 0.95;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Seed of the bootstrap over countries.
    pub seed: u64,
    /// Bootstrap resamples per country-level correlation.
    pub resamples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 20240614,
            resamples: 2000,
        }
    }
}
