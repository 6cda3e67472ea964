//! Sane bounds on a Hugging Face config.json, checked before any value sizes a table or a
//! tensor: a folder from the internet is untrusted, and `num_hidden_layers: 4294967295` or
//! `head_dim: 1e12` must be an error naming the file, not an allocation abort.

use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// (key, largest accepted value). Far above any released model (Llama 3 405B: 126 layers,
/// 16384 hidden, 53248 intermediate; Gemma 3: 262 144 tokens), far below harm.
const BOUNDS: [(&str, u64); 9] = [
    ("num_hidden_layers", 1 << 10),
    ("hidden_size", 1 << 17),
    ("intermediate_size", 1 << 20),
    ("num_attention_heads", 1 << 10),
    ("num_key_value_heads", 1 << 10),
    ("head_dim", 1 << 13),
    ("vocab_size", 1 << 23),
    ("max_position_embeddings", 1 << 24),
    ("sliding_window", 1 << 24),
];

/// Check `config` (and a multimodal config's `text_config`) against [`BOUNDS`].
pub fn check(path: &Path, config: &Value) -> Result<()> {
    for cfg in [Some(config), config.get("text_config")]
        .into_iter()
        .flatten()
    {
        for (key, max) in BOUNDS {
            let Some(v) = cfg.get(key) else { continue };
            if v.is_null() {
                continue;
            }
            let ok = v.as_u64().is_some_and(|n| n <= max);
            if !ok {
                return Err(Error::model(
                    path,
                    format!("{key} = {v} is not an integer from 0 to {max}"),
                ));
            }
        }
        if let Some(Value::Array(types)) = cfg.get("layer_types") {
            if types.len() as u64 > BOUNDS[0].1 {
                return Err(Error::model(
                    path,
                    format!("layer_types lists {} layers", types.len()),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_values_are_refused_with_the_file() {
        let p = Path::new("dir/config.json");
        let ok =
            serde_json::json!({"num_hidden_layers": 30, "head_dim": 64, "sliding_window": null});
        check(p, &ok).unwrap();
        for bad in [
            serde_json::json!({"num_hidden_layers": 4294967295u64}),
            serde_json::json!({"text_config": {"head_dim": 1_000_000_000_000u64}}),
            serde_json::json!({"vocab_size": -1}),
            serde_json::json!({"hidden_size": 1.5}),
        ] {
            let err = check(p, &bad).unwrap_err().to_string();
            assert!(err.contains("dir/config.json"), "{err}");
        }
    }
}
