//! The M2M100 encoder-decoder: its layers, the sinusoidal positions, the encoder pass and
//! cached decoder steps, and the tied output projection. Loading is in `weights.rs`,
//! decoding strategies in `search.rs`.

use super::config::Config;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::{LayerNorm, Module};

/// Linear layer over the last dimension; leading dimensions are flattened into one matmul so
/// that a decode step reads each weight matrix once, not once per row.
#[derive(Debug, Clone)]
pub(super) struct Linear {
    pub(super) weight: Tensor,
    pub(super) bias: Tensor,
}

impl Linear {
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (last, lead) = dims.split_last().expect("linear input has a dimension");
        let rows: usize = lead.iter().product();
        let out_dim = self.weight.dim(0)?;
        let y = x
            .reshape((rows, *last))?
            .matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?;
        let mut out_shape = lead.to_vec();
        out_shape.push(out_dim);
        Ok(y.reshape(out_shape)?)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Attention {
    pub(super) q: Linear,
    pub(super) k: Linear,
    pub(super) v: Linear,
    pub(super) out: Linear,
    pub(super) heads: usize,
    pub(super) head_dim: usize,
}

impl Attention {
    /// (b, t, d) -> (b, heads, t, head_dim)
    pub(super) fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    pub(super) fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split_heads(&self.k.forward(x)?)?,
            self.split_heads(&self.v.forward(x)?)?,
        ))
    }

    /// `x` (b, t, d) attends to `k`, `v` (b, heads, s, head_dim); `mask` is additive and
    /// broadcasts to (b, heads, t, s).
    pub(super) fn attend(
        &self,
        x: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        // The reference scales the queries before Q·Kᵀ.
        let q = (self.split_heads(&self.q.forward(x)?)? * (self.head_dim as f64).powf(-0.5))?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(m)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs.matmul(v)?.transpose(1, 2)?.reshape((b, t, d))?;
        self.out.forward(&ctx)
    }
}

#[derive(Debug, Clone)]
pub(super) struct FeedForward {
    pub(super) fc1: Linear,
    pub(super) fc2: Linear,
    pub(super) gelu: bool,
}

impl FeedForward {
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(x)?;
        let h = if self.gelu { h.gelu_erf()? } else { h.relu()? };
        self.fc2.forward(&h)
    }
}

#[derive(Debug, Clone)]
pub(super) struct EncoderLayer {
    pub(super) self_attn: Attention,
    pub(super) self_attn_norm: LayerNorm,
    pub(super) ffn: FeedForward,
    pub(super) final_norm: LayerNorm,
}

#[derive(Debug, Clone)]
pub(super) struct DecoderLayer {
    pub(super) self_attn: Attention,
    pub(super) self_attn_norm: LayerNorm,
    pub(super) cross_attn: Attention,
    pub(super) cross_attn_norm: LayerNorm,
    pub(super) ffn: FeedForward,
    pub(super) final_norm: LayerNorm,
}

/// Per-sequence decoder state: self-attention keys/values so far, and the cross-attention
/// keys/values of the encoder output, computed once per source.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    pub(super) self_kv: Vec<Option<(Tensor, Tensor)>>,
    pub(super) cross_kv: Vec<(Tensor, Tensor)>,
    /// Additive source padding mask, (b, 1, 1, source_len).
    pub(super) source_mask: Tensor,
    /// Decoder tokens seen so far.
    pub len: usize,
}

impl DecoderCache {
    /// Keep (and reorder or repeat) the rows named by `rows`.
    pub fn select_rows(&self, rows: &[u32]) -> Result<Self> {
        let device = self.source_mask.device();
        let idx = Tensor::new(rows, device)?;
        let pick = |t: &Tensor| t.index_select(&idx, 0);
        Ok(Self {
            self_kv: self
                .self_kv
                .iter()
                .map(|kv| {
                    kv.as_ref()
                        .map(|(k, v)| Ok::<_, Error>((pick(k)?, pick(v)?)))
                        .transpose()
                })
                .collect::<Result<_>>()?,
            cross_kv: self
                .cross_kv
                .iter()
                .map(|(k, v)| Ok((pick(k)?, pick(v)?)))
                .collect::<Result<_>>()?,
            source_mask: pick(&self.source_mask)?,
            len: self.len,
        })
    }
}

/// The M2M100 encoder-decoder with its tied output projection.
#[derive(Debug, Clone)]
pub struct NllbModel {
    pub config: Config,
    /// The shared token embedding, (vocab, d_model); also the output projection.
    pub(super) shared: Tensor,
    pub(super) embed_scale: f64,
    /// Sinusoidal position table, (max_position_embeddings + 2, d_model); row `pad` is zero.
    pub(super) positions: Tensor,
    pub(super) encoder: Vec<EncoderLayer>,
    pub(super) encoder_norm: LayerNorm,
    pub(super) decoder: Vec<DecoderLayer>,
    pub(super) decoder_norm: LayerNorm,
    pub(super) device: Device,
}

/// The sinusoidal table of fairseq / tensor2tensor: [sin | cos] halves, zero row at `pad`.
pub(super) fn sinusoids(rows: usize, dim: usize, pad: usize, device: &Device) -> Result<Tensor> {
    let half = dim / 2;
    let step = (10000f32).ln() / (half as f32 - 1.0);
    let freqs: Vec<f32> = (0..half).map(|k| (k as f32 * -step).exp()).collect();
    let mut table = vec![0f32; rows * dim];
    for pos in 0..rows {
        if pos == pad {
            continue;
        }
        for (k, f) in freqs.iter().enumerate() {
            let angle = pos as f32 * f;
            table[pos * dim + k] = angle.sin();
            table[pos * dim + half + k] = angle.cos();
        }
    }
    Ok(Tensor::from_vec(table, (rows, dim), device)?)
}

impl NllbModel {
    pub(super) fn from_parts(
        config: Config,
        shared: Tensor,
        encoder: Vec<EncoderLayer>,
        encoder_norm: LayerNorm,
        decoder: Vec<DecoderLayer>,
        decoder_norm: LayerNorm,
        device: &Device,
    ) -> Result<Self> {
        let positions = sinusoids(
            config.max_position_embeddings + 2,
            config.d_model,
            config.pad_token_id as usize,
            device,
        )?;
        let embed_scale = if config.scale_embedding {
            (config.d_model as f64).sqrt()
        } else {
            1.0
        };
        Ok(Self {
            config,
            shared,
            embed_scale,
            positions,
            encoder,
            encoder_norm,
            decoder,
            decoder_norm,
            device: device.clone(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.shared.dim(0).expect("embedding is 2-D")
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token embedding × scale plus sinusoidal positions. `position_ids` as in the reference:
    /// non-pad tokens count up from pad + 1 (+ tokens already cached); pads get the zero row.
    pub(super) fn embed(&self, ids: &[Vec<u32>], cache_len: usize) -> Result<Tensor> {
        let pad = self.config.pad_token_id;
        let (b, t) = (ids.len(), ids[0].len());
        let mut flat_ids = Vec::with_capacity(b * t);
        let mut pos_ids = Vec::with_capacity(b * t);
        for row in ids {
            let mut seen = 0u32;
            for &id in row {
                flat_ids.push(id);
                if id == pad {
                    pos_ids.push(pad);
                } else {
                    seen += 1;
                    pos_ids.push(seen + cache_len as u32 + pad);
                }
            }
        }
        let max_pos = *pos_ids.iter().max().unwrap_or(&0) as usize;
        if max_pos >= self.positions.dim(0)? {
            return Err(Error::ModelLimit(format!(
                "sequence of {} tokens exceeds the model's {} positions",
                t + cache_len,
                self.config.max_position_embeddings
            )));
        }
        if let Some(&bad) = flat_ids.iter().find(|&&i| i as usize >= self.vocab_size()) {
            return Err(Error::ModelLimit(format!(
                "token id {bad} is outside the model's vocabulary of {}",
                self.vocab_size()
            )));
        }
        let ids_t = Tensor::from_vec(flat_ids, b * t, &self.device)?;
        let pos_t = Tensor::from_vec(pos_ids, b * t, &self.device)?;
        let tok = (self.shared.index_select(&ids_t, 0)? * self.embed_scale)?;
        let pos = self.positions.index_select(&pos_t, 0)?;
        Ok((tok + pos)?.reshape((b, t, self.config.d_model))?)
    }

    /// Additive source padding mask (b, 1, 1, s): 0 for tokens, -inf for pads.
    pub(super) fn source_mask(&self, lens: &[usize], width: usize) -> Result<Tensor> {
        let mut m = Vec::with_capacity(lens.len() * width);
        for &l in lens {
            m.extend((0..width).map(|j| if j < l { 0f32 } else { f32::NEG_INFINITY }));
        }
        Ok(Tensor::from_vec(
            m,
            (lens.len(), 1, 1, width),
            &self.device,
        )?)
    }

    /// Encode right-padded source rows (each `[src_lang] tokens </s>`); returns the final
    /// hidden states (b, s, d) and the decoder cache with the cross-attention keys/values.
    pub fn encode(&self, rows: &[Vec<u32>]) -> Result<(Tensor, DecoderCache)> {
        if rows.is_empty() || rows.iter().any(|r| r.is_empty()) {
            return Err(Error::Internal(
                "cannot encode an empty token sequence".into(),
            ));
        }
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let lens: Vec<usize> = rows.iter().map(Vec::len).collect();
        let padded: Vec<Vec<u32>> = rows
            .iter()
            .map(|r| {
                let mut p = r.clone();
                p.resize(width, self.config.pad_token_id);
                p
            })
            .collect();
        let mask = self.source_mask(&lens, width)?;
        let mut x = self.embed(&padded, 0)?;
        for layer in &self.encoder {
            let h = layer.self_attn_norm.forward(&x)?;
            let (k, v) = layer.self_attn.keys_values(&h)?;
            x = (x + layer.self_attn.attend(&h, &k, &v, Some(&mask))?)?;
            let h = layer.final_norm.forward(&x)?;
            x = (x + layer.ffn.forward(&h)?)?;
        }
        let enc = self.encoder_norm.forward(&x)?;
        let cross_kv = self
            .decoder
            .iter()
            .map(|l| l.cross_attn.keys_values(&enc))
            .collect::<Result<_>>()?;
        let cache = DecoderCache {
            self_kv: vec![None; self.decoder.len()],
            cross_kv,
            source_mask: mask,
            len: 0,
        };
        Ok((enc, cache))
    }

    /// Run the decoder on `ids` (b rows of equal length t, appended to the cache), returning
    /// the final hidden states (b, t, d).
    pub(super) fn decode_hidden(
        &self,
        ids: &[Vec<u32>],
        cache: &mut DecoderCache,
    ) -> Result<Tensor> {
        let t = ids[0].len();
        if ids.iter().any(|r| r.len() != t) || t == 0 {
            return Err(Error::Internal(
                "decoder rows must be non-empty and of equal length".into(),
            ));
        }
        let past = cache.len;
        let mut x = self.embed(ids, past)?;
        // Causal mask over (new tokens) × (cached + new); a single new token sees everything.
        let causal = if t > 1 {
            let m: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..past + t).map(move |j| {
                        if j <= past + i {
                            0.0
                        } else {
                            f32::NEG_INFINITY
                        }
                    })
                })
                .collect();
            Some(Tensor::from_vec(m, (1, 1, t, past + t), &self.device)?)
        } else {
            None
        };
        for (i, layer) in self.decoder.iter().enumerate() {
            let h = layer.self_attn_norm.forward(&x)?;
            let (k_new, v_new) = layer.self_attn.keys_values(&h)?;
            let (k, v) = match &cache.self_kv[i] {
                Some((k, v)) => (Tensor::cat(&[k, &k_new], 2)?, Tensor::cat(&[v, &v_new], 2)?),
                None => (k_new, v_new),
            };
            x = (x + layer.self_attn.attend(&h, &k, &v, causal.as_ref())?)?;
            cache.self_kv[i] = Some((k, v));
            let h = layer.cross_attn_norm.forward(&x)?;
            let (ck, cv) = &cache.cross_kv[i];
            x = (x + layer
                .cross_attn
                .attend(&h, ck, cv, Some(&cache.source_mask))?)?;
            let h = layer.final_norm.forward(&x)?;
            x = (x + layer.ffn.forward(&h)?)?;
        }
        cache.len += t;
        Ok(self.decoder_norm.forward(&x)?)
    }

    /// Logits (b, t, vocab) for every decoder position (teacher forcing).
    pub fn decode(&self, ids: &[Vec<u32>], cache: &mut DecoderCache) -> Result<Tensor> {
        let h = self.decode_hidden(ids, cache)?;
        self.logits(&h)
    }

    /// Logits (b, vocab) of the token after the last of `ids`.
    pub fn decode_last(&self, ids: &[Vec<u32>], cache: &mut DecoderCache) -> Result<Tensor> {
        let h = self.decode_hidden(ids, cache)?;
        let t = h.dim(1)?;
        self.logits(&h.narrow(1, t - 1, 1)?)?
            .squeeze(1)
            .map_err(Error::from)
    }

    pub(super) fn logits(&self, h: &Tensor) -> Result<Tensor> {
        let (b, t, d) = h.dims3()?;
        Ok(h.reshape((b * t, d))?
            .matmul(&self.shared.t()?)?
            .reshape((b, t, self.vocab_size()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoid_layout_is_sin_then_cos_with_a_zero_pad_row() {
        let t = sinusoids(5, 8, 1, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!(t[1].iter().all(|&v| v == 0.0));
        // position 2, frequency 0: sin(2), cos(2)
        assert!((t[2][0] - 2f32.sin()).abs() < 1e-6);
        assert!((t[2][4] - 2f32.cos()).abs() < 1e-6);
        // last frequency is 1/10000
        assert!((t[3][3] - (3.0f32 / 10000.0).sin()).abs() < 1e-6);
    }
}
