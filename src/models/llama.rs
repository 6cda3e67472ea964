//! Llama-architecture decoder (Llama 2/3, SmolLM2) from GGUF, batched over right-padded rows.
//!
//! Right padding keeps every real token at the same position as when the row runs alone: a
//! real query never sees a padded key, because padded keys come after it. Rows that share a
//! prefix (the two option orders of an item) run it once and attend to its cached keys and
//! values. Only each row's last real position goes through the final norm and the output head.

use super::{pad_right, CausalLm, PaddedBatch, PrefixGroup, WeightFormat};
use crate::gguf::GgufFile;
use crate::{Error, Result};
use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
}

impl Config {
    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let hidden_size = g.u32("llama.embedding_length")? as usize;
        let num_attention_heads = g.u32("llama.attention.head_count")? as usize;
        let num_key_value_heads = g
            .optional("llama.attention.head_count_kv", GgufFile::u32)?
            .map_or(num_attention_heads, |v| v as usize);
        let vocab_size = match g.optional("llama.vocab_size", GgufFile::u32)? {
            Some(v) => v as usize,
            None => g
                .require("tokenizer.ggml.tokens")?
                .to_vec()
                .map_err(|e| Error::model(&g.path, format!("tokenizer.ggml.tokens: {e}")))?
                .len(),
        };
        if num_attention_heads == 0
            || num_key_value_heads == 0
            || hidden_size % num_attention_heads != 0
            || num_attention_heads % num_key_value_heads != 0
        {
            return Err(Error::model(
                &g.path,
                format!("inconsistent attention shape: hidden {hidden_size}, heads {num_attention_heads}, kv heads {num_key_value_heads}"),
            ));
        }
        let head_dim = hidden_size / num_attention_heads;
        if vocab_size == 0 || head_dim % 2 != 0 {
            return Err(Error::model(
                &g.path,
                format!("unusable shape: vocabulary {vocab_size}, head dimension {head_dim}"),
            ));
        }
        let cfg = Self {
            vocab_size,
            hidden_size,
            intermediate_size: g.u32("llama.feed_forward_length")? as usize,
            num_hidden_layers: g.u32("llama.block_count")? as usize,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: g.f32("llama.attention.layer_norm_rms_epsilon")? as f64,
            rope_theta: g
                .optional("llama.rope.freq_base", GgufFile::f32)?
                .map_or(10_000.0, f64::from),
            max_position_embeddings: g
                .optional("llama.context_length", GgufFile::u32)?
                .map_or(4096, |v| v as usize)
                .max(1),
        };
        Ok(cfg)
    }
}

struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

struct Block {
    attn_norm: RmsNorm,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    ffn_norm: RmsNorm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

/// One layer's keys and values after rotary embedding, (rows, kv heads, positions, head dim).
type LayerKv = (Tensor, Tensor);

/// Keys and values of already-run prefixes that a pass attends to.
struct CachedPrefix<'a> {
    /// Per layer, one cache row per prefix.
    kv: &'a [LayerKv],
    /// For each row of the pass, its cache row.
    row: &'a [u32],
    /// For each row of the pass, how many cached positions it sees.
    len: &'a [usize],
}

struct PassOutput {
    /// Final hidden states, (rows * padded length, hidden).
    hidden: Tensor,
    kv: Vec<LayerKv>,
    batch: PaddedBatch,
}

pub struct Llama {
    cfg: Config,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: QMatMul,
    /// Rotary tables, (max_positions, head_dim / 2).
    cos: Tensor,
    sin: Tensor,
    pad_id: u32,
    format: WeightFormat,
    device: Device,
}

fn linear(g: &mut GgufFile, name: &str, device: &Device, format: WeightFormat) -> Result<QMatMul> {
    let qt = g.tensor(name, device)?;
    Ok(match format {
        WeightFormat::F32 => QMatMul::Tensor(qt.dequantize(device)?),
        WeightFormat::Quantized => QMatMul::from_qtensor(qt)?,
    })
}

fn norm(g: &mut GgufFile, name: &str, eps: f64, device: &Device) -> Result<RmsNorm> {
    Ok(RmsNorm {
        weight: g.tensor(name, device)?.dequantize(device)?,
        eps: eps as f32,
    })
}

impl Llama {
    pub fn from_gguf(g: &mut GgufFile, device: &Device, format: WeightFormat) -> Result<Self> {
        let cfg = Config::from_gguf(g)?;
        let embed_q = g.tensor("token_embd.weight", device)?;
        let embed = embed_q.dequantize(device)?;
        if embed.dims2()? != (cfg.vocab_size, cfg.hidden_size) {
            return Err(Error::model(
                &g.path,
                format!(
                    "token_embd.weight has shape {:?}, expected ({}, {})",
                    embed.shape(),
                    cfg.vocab_size,
                    cfg.hidden_size
                ),
            ));
        }
        let lm_head = if g.has_tensor("output.weight") {
            linear(g, "output.weight", device, format)?
        } else {
            // Tied embeddings (SmolLM2, Llama 3.2).
            match format {
                WeightFormat::F32 => QMatMul::Tensor(embed.clone()),
                WeightFormat::Quantized => QMatMul::from_qtensor(embed_q)?,
            }
        };
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("blk.{i}");
            blocks.push(Block {
                attn_norm: norm(
                    g,
                    &format!("{p}.attn_norm.weight"),
                    cfg.rms_norm_eps,
                    device,
                )?,
                wq: linear(g, &format!("{p}.attn_q.weight"), device, format)?,
                wk: linear(g, &format!("{p}.attn_k.weight"), device, format)?,
                wv: linear(g, &format!("{p}.attn_v.weight"), device, format)?,
                wo: linear(g, &format!("{p}.attn_output.weight"), device, format)?,
                ffn_norm: norm(g, &format!("{p}.ffn_norm.weight"), cfg.rms_norm_eps, device)?,
                gate: linear(g, &format!("{p}.ffn_gate.weight"), device, format)?,
                up: linear(g, &format!("{p}.ffn_up.weight"), device, format)?,
                down: linear(g, &format!("{p}.ffn_down.weight"), device, format)?,
            });
        }
        let norm = norm(g, "output_norm.weight", cfg.rms_norm_eps, device)?;
        // Llama 3.1+ GGUFs carry the "llama3" rope scaling as per-frequency divisors.
        let freq_factors = if g.has_tensor("rope_freqs.weight") {
            Some(
                g.tensor("rope_freqs.weight", device)?
                    .dequantize(device)?
                    .to_vec1::<f32>()?,
            )
        } else {
            None
        };
        let (cos, sin) = rope_tables(&cfg, freq_factors.as_deref(), device)?;
        // Padded positions are never read; any valid id will do.
        let pad_id = g
            .optional("tokenizer.ggml.padding_token_id", GgufFile::u32)?
            .unwrap_or(0)
            .min(cfg.vocab_size as u32 - 1);
        Ok(Self {
            cfg,
            embed,
            blocks,
            norm,
            lm_head,
            cos,
            sin,
            pad_id,
            format,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// One attention layer. `x` is (b * t, d); `past` holds this layer's cached keys and
    /// values for the rows, (b, nkv, tp, hd) each; `mask` is additive, (b or 1, 1, 1, t, tp + t).
    /// Returns the output and this pass's keys and values (after rotary embedding).
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        blk: &Block,
        x: &Tensor,
        (b, t): (usize, usize),
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        past: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, LayerKv)> {
        let c = &self.cfg;
        let (nh, nkv, hd) = (c.num_attention_heads, c.num_key_value_heads, c.head_dim);
        // (b * t, heads * hd) -> (b, heads, t, hd)
        let project = |w: &QMatMul, heads: usize| -> Result<Tensor> {
            Ok(w.forward(x)?
                .reshape((b, t, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = project(&blk.wq, nh)?;
        let k = project(&blk.wk, nkv)?;
        let v = project(&blk.wv, nkv)?;
        // GGUF llama q/k weights are permuted for interleaved rotary pairs (llama.cpp's "norm" rope).
        let q = candle_nn::rotary_emb::rope_i(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope_i(&k, cos, sin)?;
        let (k_all, v_all) = match past {
            Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
            None => (k.clone(), v.clone()),
        };
        let tk = k_all.dim(2)?;
        let groups = nh / nkv;
        // Fold each kv head's query group into the row axis, (b, nkv, groups * t, hd), so keys
        // and values are used as they are instead of being repeated per query head.
        let q = q.reshape((b, nkv, groups * t, hd))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let att = (q.matmul(&k_all.t()?)? * scale)?;
        let att = att.reshape((b, nkv, groups, t, tk))?.broadcast_add(mask)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?.reshape((b, nkv, groups * t, tk))?;
        let y = att.matmul(&v_all)?; // (b, nkv, groups * t, hd)
        let y = y
            .reshape((b, nh, t, hd))?
            .transpose(1, 2)?
            .reshape((b * t, nh * hd))?;
        Ok((blk.wo.forward(&y)?, (k, v)))
    }

    /// Run the decoder over right-padded `rows` whose first token sits at position `start[i]`.
    /// With `past`, row i also attends to the first `past_len[i]` cached positions of cache
    /// row `past_row[i]`. Returns the final hidden states (b * t, d), every layer's keys and
    /// values, and the padded layout.
    fn forward_pass(
        &self,
        rows: &[&[u32]],
        start: &[usize],
        past: Option<CachedPrefix>,
    ) -> Result<PassOutput> {
        let batch = pad_right(rows, self.pad_id, &self.device)?;
        let (b, t) = (rows.len(), batch.max_len);
        let longest = rows
            .iter()
            .zip(start)
            .map(|(r, s)| r.len() + s)
            .max()
            .unwrap_or(0);
        if longest > self.cfg.max_position_embeddings {
            return Err(Error::Usage(format!(
                "a prompt of {longest} tokens is longer than the model's context ({})",
                self.cfg.max_position_embeddings
            )));
        }
        // Rotary tables gathered per row and position; padded positions are clamped (unused).
        let last_pos = self.cfg.max_position_embeddings as u32 - 1;
        let positions: Vec<u32> = start
            .iter()
            .flat_map(|&s| (0..t).map(move |j| ((s + j) as u32).min(last_pos)))
            .collect();
        let positions = Tensor::from_vec(positions, b * t, &self.device)?;
        let half = self.cfg.head_dim / 2;
        let cos = self
            .cos
            .index_select(&positions, 0)?
            .reshape((b, t, half))?;
        let sin = self
            .sin
            .index_select(&positions, 0)?
            .reshape((b, t, half))?;
        // Additive mask: causal over this pass; cached positions visible up to each row's length.
        let (mask, past_kv) = match past {
            None => {
                let m: Vec<f32> = (0..t)
                    .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
                    .collect();
                (Tensor::from_vec(m, (1, 1, 1, t, t), &self.device)?, None)
            }
            Some(CachedPrefix {
                kv: cache,
                row: past_row,
                len: past_len,
            }) => {
                let tp = match cache.first() {
                    Some((k, _)) => k.dim(2)?,
                    None => 0,
                };
                let mut m = Vec::with_capacity(b * t * (tp + t));
                for &pl in past_len {
                    for i in 0..t {
                        m.extend((0..tp).map(|j| if j < pl { 0.0 } else { f32::NEG_INFINITY }));
                        m.extend((0..t).map(|j| if j <= i { 0.0 } else { f32::NEG_INFINITY }));
                    }
                }
                let idx = Tensor::new(past_row, &self.device)?;
                let gathered = cache
                    .iter()
                    .map(|(k, v)| Ok((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?)))
                    .collect::<Result<Vec<_>>>()?;
                (
                    Tensor::from_vec(m, (b, 1, 1, t, tp + t), &self.device)?,
                    Some(gathered),
                )
            }
        };
        let mut x = self.embed.index_select(&batch.ids.flatten_all()?, 0)?; // (b * t, d)
        let mut kv = Vec::with_capacity(self.blocks.len());
        for (l, blk) in self.blocks.iter().enumerate() {
            let h = blk.attn_norm.forward(&x)?;
            let layer_past = past_kv.as_ref().map(|p| (&p[l].0, &p[l].1));
            let (a, layer_kv) = self.attention(blk, &h, (b, t), &cos, &sin, &mask, layer_past)?;
            kv.push(layer_kv);
            x = (x + a)?;
            let h = blk.ffn_norm.forward(&x)?;
            let mlp = (candle_nn::ops::silu(&blk.gate.forward(&h)?)? * blk.up.forward(&h)?)?;
            x = (x + blk.down.forward(&mlp)?)?;
        }
        Ok(PassOutput {
            hidden: x,
            kv,
            batch,
        })
    }
}

fn rope_tables(
    cfg: &Config,
    freq_factors: Option<&[f32]>,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let f = 1.0 / cfg.rope_theta.powf(2.0 * i as f64 / cfg.head_dim as f64);
            let div = freq_factors
                .and_then(|ff| ff.get(i))
                .copied()
                .unwrap_or(1.0) as f64;
            (f / div) as f32
        })
        .collect();
    let n = cfg.max_position_embeddings.max(1);
    let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
    let pos = Tensor::arange(0u32, n as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((n, 1))?;
    let freqs = pos.matmul(&inv_freq)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

impl CausalLm for Llama {
    fn next_token_logits_grouped(&self, groups: &[PrefixGroup]) -> Result<Tensor> {
        // Pass 1: the non-empty prefixes, cached.
        let with_prefix: Vec<usize> = (0..groups.len())
            .filter(|&g| !groups[g].prefix.is_empty())
            .collect();
        let cache = if with_prefix.is_empty() {
            None
        } else {
            let prefixes: Vec<&[u32]> = with_prefix.iter().map(|&g| groups[g].prefix).collect();
            Some(
                self.forward_pass(&prefixes, &vec![0; prefixes.len()], None)?
                    .kv,
            )
        };
        // Pass 2: every continuation, attending to its group's cached prefix.
        let mut rows = Vec::new();
        let (mut start, mut past_row, mut past_len) = (Vec::new(), Vec::new(), Vec::new());
        for (g, group) in groups.iter().enumerate() {
            let cache_row = with_prefix.iter().position(|&p| p == g).unwrap_or(0) as u32;
            for c in &group.continuations {
                rows.push(*c);
                start.push(group.prefix.len());
                past_row.push(cache_row);
                past_len.push(group.prefix.len());
            }
        }
        let past = cache.as_deref().map(|kv| CachedPrefix {
            kv,
            row: &past_row,
            len: &past_len,
        });
        let PassOutput {
            hidden: x, batch, ..
        } = self.forward_pass(&rows, &start, past)?;
        let t = batch.max_len;
        let last: Vec<u32> = batch
            .lens
            .iter()
            .enumerate()
            .map(|(i, &l)| (i * t + l - 1) as u32)
            .collect();
        let last = Tensor::from_vec(last, rows.len(), &self.device)?;
        let h = self.norm.forward(&x.index_select(&last, 0)?)?;
        Ok(self.lm_head.forward(&h)?.to_dtype(DType::F32)?)
    }

    fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn describe(&self) -> String {
        format!(
            "llama, {} layers, hidden {}, {} heads ({} kv), {:?} weights",
            self.cfg.num_hidden_layers,
            self.cfg.hidden_size,
            self.cfg.num_attention_heads,
            self.cfg.num_key_value_heads,
            self.format
        )
    }
}
