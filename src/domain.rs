//! The benchmark's choices as domain values: how prompts are asked ([`Approach`]), how answers
//! are read ([`Mode`]), which grid ([`Preset`]) and how weights are held ([`Weights`]). Each
//! serializes by the explicit name that manifests and results store and the command line takes
//! (`cli.rs` maps them onto clap without this module knowing clap).

use serde::{Deserialize, Serialize};

/// How a prompt asks the model about a country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Approach {
    /// English prompt with the paper's persona sentence naming the country.
    #[serde(rename = "personas")]
    Personas,
    /// The prompt machine-translated into the country's language (see `hofbench translate`).
    #[serde(rename = "multilingual")]
    Multilingual,
    /// No persona: the personas prompt without its persona sentence, one set of rows per item
    /// (country `none`): the baseline of the persona effect (stats/persona_effect.csv).
    #[serde(rename = "control")]
    Control,
}

/// How a run reads the model's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Read the option letters' probabilities at the first answer token (one pass per prompt).
    #[serde(rename = "logits")]
    Logits,
    /// The paper's method: sample free-text advice (`--rounds` replies per item) for a judge.
    #[serde(rename = "generate")]
    Generate,
}

/// Which grid a run covers unless `--countries`/`--limit` narrow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// All 36 countries and 5 dimensions, a few prompts each: minutes on a 2-core CPU.
    #[serde(rename = "quick")]
    Quick,
    /// The full grid: 36 countries × 250 prompts × 2 option orders.
    #[serde(rename = "paper")]
    Paper,
}

/// How to hold the weights in memory (the choice; the manifest records the format it became).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Weights {
    /// CPU: f32 when the f32 copy takes at most half the available memory, quantized
    /// otherwise. GPU: bf16 when the model fits the card's free memory, quantized otherwise.
    #[serde(rename = "auto")]
    Auto,
    /// Every tensor dequantized to f32 at load.
    #[serde(rename = "f32")]
    F32,
    /// bf16 matrices and activations, f32 norms and logits: the fast path on a GPU.
    #[serde(rename = "bf16")]
    Bf16,
    /// Weights kept as stored (GGUF blocks, bf16/f16 safetensors), every product computed in
    /// f32 on exactly dequantized values: the results of f32 in about the stored size.
    #[serde(rename = "quantized")]
    Quantized,
    /// candle's quantized kernels, which round the activations to 8 bits: faster, not exact
    /// (the manifest records `exact: false`).
    #[serde(rename = "fast-quantized")]
    FastQuantized,
}

/// The stored name of a domain value: the string its serde form is, the one manifests,
/// results and the command line use.
macro_rules! names {
    ($ty:ty: $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// Every value, in the order `--help` lists them.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];

            /// The name manifests and the command line use (its serde form).
            pub fn name(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

names!(Approach: Personas => "personas", Multilingual => "multilingual", Control => "control");
names!(Mode: Logits => "logits", Generate => "generate");
names!(Preset: Quick => "quick", Paper => "paper");
names!(Weights: Auto => "auto", F32 => "f32", Bf16 => "bf16", Quantized => "quantized",
    FastQuantized => "fast-quantized");

impl Approach {
    /// The `approach` of its rows in results.jsonl and of `settings` in the manifest.
    pub fn code(self) -> &'static str {
        self.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name()` is the serde form, so the manifest and the command line cannot drift apart.
    #[test]
    fn names_are_the_serde_forms() {
        fn check<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug + Copy>(
            all: &[T],
            name: impl Fn(T) -> &'static str,
        ) {
            for &v in all {
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{}\"", name(v)));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            }
        }
        check(Approach::ALL, Approach::name);
        check(Mode::ALL, Mode::name);
        check(Preset::ALL, Preset::name);
        check(Weights::ALL, Weights::name);
        assert_eq!(
            Approach::Control.code(),
            crate::stats::persona_effect::CONTROL
        );
    }
}
