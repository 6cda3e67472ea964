//! Loading a run's model: the weight format `--weights` becomes on this device, one scorer per
//! replica, and the label tokens the manifest records.

use crate::domain::Weights;
use crate::engine::device::DeviceSpec;
use crate::engine::loaded_model::LoadedModel;
use crate::engine::models::WeightFormat;
use crate::manifest::LabelsInfo;
use crate::{Error, Result};
use candle_core::Device;
use std::path::Path;

/// Load one scorer per device, all at once (each replica reads the weights itself).
/// `random_weights` (`--random-weights SHAPE`, for GPU benchmarks) swaps each replica's model
/// for a seeded random one of that shape, keeping the tokenizer and template.
pub(crate) fn load_replicas(
    path: &Path,
    devices: &[Device],
    format: WeightFormat,
    card_template: Option<&str>,
    random_weights: Option<&str>,
) -> Result<Vec<LoadedModel>> {
    let load = |device: &Device| -> Result<LoadedModel> {
        let mut scorer = LoadedModel::load(path, device, format)?;
        // A base model's card may ask for the plain format even if its tokenizer has a template.
        if card_template == Some("plain") && scorer.chat.from_model {
            scorer.chat = crate::engine::chat_template::ChatTemplate::new(None, "", "")?;
        }
        if let Some(shape) = random_weights {
            let (cfg, _) = crate::engine::models::random::config(shape)?;
            if cfg.vocab_size < scorer.tokenizer.vocab_size() {
                return Err(Error::Usage(format!(
                    "--random-weights {shape}: {} tokens, fewer than the tokenizer's {}",
                    cfg.vocab_size,
                    scorer.tokenizer.vocab_size()
                )));
            }
            scorer.model = Box::new(crate::engine::models::random::load(
                &cfg, device, format, 0,
            )?);
        }
        Ok(scorer)
    };
    if let [device] = devices {
        return Ok(vec![load(device)?]);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .map(|device| s.spawn(move || load(device)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("loading a replica panicked"))
            .collect()
    })
}

/// `--weights auto` on the CPU: f32 while its copy of the weights takes at most half the
/// available memory (dense gemm, nothing dequantized per pass), else the weights as stored
/// with the same exact f32 compute. On a GPU, see [`gpu_weight_format`].
pub(crate) fn weight_format(
    choice: Weights,
    path: &Path,
    device: &candle_core::Device,
) -> Result<WeightFormat> {
    Ok(match choice {
        Weights::F32 => WeightFormat::F32,
        Weights::Bf16 => WeightFormat::Bf16,
        Weights::Quantized => WeightFormat::Quantized,
        Weights::FastQuantized => WeightFormat::FastQuantized,
        Weights::Auto if device.is_cuda() => gpu_weight_format(path, device)?,
        Weights::Auto => {
            let f32_bytes = 4 * parameter_count(path)?;
            let fits = match crate::engine::device::host_available_memory() {
                Some(available) => f32_bytes <= available / 2,
                None => f32_bytes <= 4 << 30,
            };
            if fits {
                WeightFormat::F32
            } else {
                WeightFormat::Quantized
            }
        }
    })
}

/// Parameters of a GGUF file or a Hugging Face folder (whose safetensors are bf16 or f16
/// nearly always: 2 bytes a parameter).
fn parameter_count(path: &Path) -> Result<u64> {
    if path.is_dir() {
        let mut bytes = 0;
        for f in crate::engine::models::weights::safetensors_files(path)? {
            bytes += std::fs::metadata(&f).map_err(|e| Error::io(&f, e))?.len();
        }
        return Ok(bytes / 2);
    }
    let gguf = crate::engine::gguf::GgufFile::open(path)?;
    Ok(gguf
        .content
        .tensor_infos
        .values()
        .map(|t| t.shape.elem_count() as u64)
        .sum())
}

/// `--weights auto` on a GPU: f32 below 1B parameters, where it costs little and keeps
/// P(option) within 2e-3 of a CPU run (bf16 moved SmolLM2's by up to 0.05); bf16 (tensor
/// cores) when the weights in bf16 take at most 80% of the card's free memory, leaving the rest
/// for activations; quantized otherwise (a Q4 70B on a 48 GB card).
fn gpu_weight_format(path: &Path, device: &candle_core::Device) -> Result<WeightFormat> {
    let params = parameter_count(path)?;
    Ok(match crate::engine::device::free_memory(device) {
        _ if params < 1_000_000_000 => WeightFormat::F32,
        Some(free) if 2 * params <= free / 5 * 4 => WeightFormat::Bf16,
        _ => WeightFormat::Quantized,
    })
}

pub(crate) fn labels_info(scorer: &LoadedModel) -> LabelsInfo {
    let labels = &scorer.labels;
    let text = |ids: &[u32]| {
        ids.iter()
            .map(|&i| scorer.tokenizer.decode(&[i]).unwrap_or_default())
            .collect()
    };
    LabelsInfo {
        a: labels.a.clone(),
        b: labels.b.clone(),
        a_text: text(&labels.a),
        b_text: text(&labels.b),
    }
}

/// `cuda:0,cuda:1`, as recorded in the manifest.
pub(crate) fn device_list(devices: &[DeviceSpec]) -> String {
    devices
        .iter()
        .map(DeviceSpec::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
