//! The batched decoder every supported family runs through, parameterised by a [`Spec`] that
//! says what the family's architecture is (spec.rs; llama.rs and gemma.rs build it).
//!
//! Right padding keeps every real token at the same position as when the row runs alone: a
//! real query never sees a padded key, because padded keys come after it. Rows that share a
//! prefix (the two option orders of an item) run it once and attend to its cached keys and
//! values. Only each row's last real position goes through the final norm and the output head,
//! so a 262k-token vocabulary costs one row of logits per prompt.

use super::attention;
use super::causal_lm::{pad_right, CausalLm, KvCache, PaddedBatch, PrefixGroup};
use super::cpu_kernels::{self, Heads};
use super::matrix::{Embedding, Fused, Matrix};
use super::spec::{Activation, Spec};
use super::weight_format::WeightFormat;
use super::weights::{LayerWeight, WeightName, WeightSource};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};

struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    /// In f32 whatever the activations' dtype, as Hugging Face does: the weight stays f32 and
    /// bf16 input is upcast, normalised, scaled, then rounded back once.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(&x.to_dtype(DType::F32)?, &self.weight, self.eps)?
            .to_dtype(x.dtype())
    }
}

/// A dense weight matrix in the activations' dtype (stored ones stay as they are).
fn dense_in(m: Matrix, dtype: DType) -> Result<Matrix> {
    Ok(match m {
        Matrix::Dense(w) => Matrix::Dense(w.to_dtype(dtype)?),
        m => m,
    })
}

struct Block {
    attn_norm: RmsNorm,
    /// q, k and v, fused where their forms allow.
    qkv: Fused,
    wo: Matrix,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    post_attn_norm: Option<RmsNorm>,
    ffn_norm: RmsNorm,
    post_ffn_norm: Option<RmsNorm>,
    /// gate and up, fused where their forms allow.
    gate_up: Fused,
    down: Matrix,
}

/// One layer's keys and values after rotary embedding, (rows, kv heads, positions, head dim).
type LayerKv = (Tensor, Tensor);

/// What one layer of a pass attends to besides the pass's own keys and values.
#[derive(Clone, Copy)]
enum Past<'a> {
    None,
    /// Cached prefix keys and values, (b, nkv, tp, hd) each, one row per pass row.
    Prefix(&'a Tensor, &'a Tensor),
    /// A generation cache's buffers, (b, nkv, capacity, hd), and the column this pass's keys
    /// and values go to.
    Cache(&'a Tensor, &'a Tensor, usize),
}

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

/// A decoder-only transformer of any supported family.
pub struct Decoder {
    spec: Spec,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Matrix,
    /// Per rope table, (1, head_dim / 2).
    inv_freq: Vec<Tensor>,
    pad_id: u32,
    format: WeightFormat,
    /// Activations, embeddings and dense matrices: f32, or bf16 (see [`WeightFormat`]).
    dtype: DType,
    /// "GGUF" or "safetensors", for descriptions.
    source: &'static str,
    device: Device,
}

impl Decoder {
    /// Load the weights `spec` describes. `tied`: the output head is the embedding matrix.
    pub fn load(
        spec: Spec,
        w: &mut dyn WeightSource,
        tied: bool,
        pad_id: u32,
        format: WeightFormat,
        source: &'static str,
        device: &Device,
    ) -> Result<Self> {
        spec.check(w.path())?;
        let eps = spec.rms_norm_eps as f32;
        let dtype = format.compute_dtype(device);
        let embed = match w.embedding(format)? {
            Embedding::Dense(t) => Embedding::Dense(t.to_dtype(dtype)?),
            stored => stored,
        };
        if embed.dims2()? != (spec.vocab_size, spec.hidden_size) {
            return Err(Error::model(
                w.path(),
                format!(
                    "embedding has shape {:?}, expected ({}, {})",
                    embed.dims2()?,
                    spec.vocab_size,
                    spec.hidden_size
                ),
            ));
        }
        let linear = |w: &mut dyn WeightSource, name| dense_in(w.linear(name, format)?, dtype);
        let lm_head = match (&embed, format) {
            _ if !tied => linear(w, WeightName::Output)?,
            (Embedding::Dense(t), _) => Matrix::Dense(t.clone()),
            (Embedding::Stored(q), WeightFormat::Quantized) => Matrix::Stored(q.clone()),
            (Embedding::Stored(_), _) => linear(w, WeightName::Embed)?,
        };
        let norm = |w: &mut dyn WeightSource, name: WeightName| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: w.tensor(name)?,
                eps,
            })
        };
        let mut blocks = Vec::with_capacity(spec.layers.len());
        for i in 0..spec.layers.len() {
            use LayerWeight::*;
            let n = |lw| WeightName::Layer(i, lw);
            let optional_norm = |w: &mut dyn WeightSource, on: bool, lw| -> Result<_> {
                Ok(match on {
                    true => Some(RmsNorm {
                        weight: w.tensor(n(lw))?,
                        eps,
                    }),
                    false => None,
                })
            };
            blocks.push(Block {
                attn_norm: norm(w, n(AttnNorm))?,
                qkv: Fused::new(vec![linear(w, n(Q))?, linear(w, n(K))?, linear(w, n(V))?])?,
                wo: linear(w, n(O))?,
                q_norm: optional_norm(w, spec.qk_norm, QNorm)?,
                k_norm: optional_norm(w, spec.qk_norm, KNorm)?,
                post_attn_norm: optional_norm(w, spec.sandwich_norms, PostAttnNorm)?,
                ffn_norm: norm(w, n(FfnNorm))?,
                post_ffn_norm: optional_norm(w, spec.sandwich_norms, PostFfnNorm)?,
                gate_up: Fused::new(vec![linear(w, n(Gate))?, linear(w, n(Up))?])?,
                down: linear(w, n(Down))?,
            });
        }
        let norm = norm(w, WeightName::OutputNorm)?;
        let inv_freq = spec
            .rope
            .iter()
            .map(|f| Tensor::from_slice(f, (1, f.len()), device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            pad_id: pad_id.min(spec.vocab_size as u32 - 1),
            spec,
            embed,
            blocks,
            norm,
            lm_head,
            inv_freq,
            format,
            dtype,
            source,
            device: device.clone(),
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// One attention layer. `x` is (b * t, d); `past` holds this layer's cached keys and
    /// values for the rows, (b, nkv, tp, hd) each; `mask` is additive, (b or 1, 1, 1, t, tp + t).
    /// With a generation cache, this pass's keys and values are written into it at column `at`
    /// and the pass attends to its first `at + t` columns.
    /// Returns the output and this pass's keys and values (after rotary embedding).
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        blk: &Block,
        x: &Tensor,
        (b, t): (usize, usize),
        (cos, sin): (&Tensor, &Tensor),
        mask: &Tensor,
        past: Past,
    ) -> Result<(Tensor, LayerKv)> {
        let s = &self.spec;
        let (nh, nkv, hd) = (s.num_attention_heads, s.num_key_value_heads, s.head_dim);
        let step = matches!(past, Past::Cache(..));
        // (b, t, heads, hd) each, views of one product where q, k and v are fused.
        let x = x.reshape((b, t, x.dim(1)?))?;
        let [q, k, v]: [Tensor; 3] = blk
            .qkv
            .forward(&x, step, Some(hd))?
            .try_into()
            .expect("q, k and v");
        // -> (b, heads, t, hd), q and k rotated, with the per-head norm where there is one.
        let rope_tables = (cos, sin, s.rope_interleaved);
        let head_major = |y: Tensor, norm: Option<&RmsNorm>, rope: bool| -> Result<Tensor> {
            let y = match norm {
                Some(n) => n.forward(&y.contiguous()?)?,
                None => y,
            };
            if self.fused_cpu_kernels() {
                return cpu_kernels::head_major(&y, rope.then_some(rope_tables));
            }
            let y = y.transpose(1, 2)?.contiguous()?;
            Ok(match (rope, s.rope_interleaved) {
                (false, _) => y,
                (true, true) => candle_nn::rotary_emb::rope_i(&y, cos, sin)?,
                (true, false) => candle_nn::rotary_emb::rope(&y, cos, sin)?,
            })
        };
        let q = head_major(q, blk.q_norm.as_ref(), true)?;
        let k = head_major(k, blk.k_norm.as_ref(), true)?;
        let v = head_major(v, None, false)?;
        let (k_all, v_all) = match past {
            Past::None => (k.clone(), v.clone()),
            Past::Prefix(pk, pv) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
            Past::Cache(ck, cv, at) => {
                // In place: the cache's buffers were allocated once for the whole generation.
                ck.slice_set(&k, 2, at)?;
                cv.slice_set(&v, 2, at)?;
                (ck.narrow(2, 0, at + t)?, cv.narrow(2, 0, at + t)?)
            }
        };
        let heads = Heads {
            query: nh,
            kv: nkv,
            dim: hd,
        };
        // Generation steps keep candle's operations: their keys have padding columns between
        // the prompt and the generated ones, and the fused softmax's lane sums would depend
        // on how many.
        let fused = !step && self.fused_cpu_kernels();
        let y = attention::scaled_dot_product(
            (&q, &k_all, &v_all),
            mask,
            heads,
            (s.attn_scale, s.attn_softcap),
            fused,
        )?;
        Ok((blk.wo.forward(&y, step)?, (k, v)))
    }

    fn mlp(&self, blk: &Block, h: &Tensor, step: bool) -> Result<Tensor> {
        let [gate, up]: [Tensor; 2] = blk
            .gate_up
            .forward(h, step, None)?
            .try_into()
            .expect("gate and up");
        let gated = match self.spec.activation {
            Activation::Silu if self.fused_cpu_kernels() => cpu_kernels::silu_mul(&gate, &up)?,
            Activation::Silu => (candle_nn::ops::silu(&gate)? * up)?,
            Activation::GeluTanh => (gate.gelu()? * up)?,
        };
        blk.down.forward(&gated, step)
    }

    /// Whether attention and the gated activation run as the fused kernels of
    /// [`cpu_kernels`] (f32 on the CPU) rather than as candle's tensor operations.
    fn fused_cpu_kernels(&self) -> bool {
        self.device.is_cpu() && self.dtype == DType::F32
    }

    /// (cos, sin) per rope table, (b, t, head_dim / 2) each, for the positions of a (b, t)
    /// pass given row by row. Computed like HF: position * inv_freq in f32.
    fn rotary_tables(
        &self,
        positions: Vec<f32>,
        (b, t): (usize, usize),
    ) -> Result<Vec<(Tensor, Tensor)>> {
        let positions = Tensor::from_vec(positions, (b * t, 1), &self.device)?;
        let half = self.spec.head_dim / 2;
        self.inv_freq
            .iter()
            .map(|f| {
                let freqs = positions.broadcast_mul(f)?;
                // Angles in f32, the tables in the activations' dtype (HF's cos().to(x.dtype)).
                Ok((
                    freqs.cos()?.reshape((b, t, half))?.to_dtype(self.dtype)?,
                    freqs.sin()?.reshape((b, t, half))?.to_dtype(self.dtype)?,
                ))
            })
            .collect()
    }

    /// The logits at each row's last real position of a right-padded pass: `hidden` is
    /// (rows × max_len, hidden), row i's last token at i·max_len + len_i − 1.
    fn last_position_logits(&self, hidden: &Tensor, batch: &PaddedBatch) -> Result<Tensor> {
        let t = batch.max_len;
        let last: Vec<u32> = batch
            .lens
            .iter()
            .enumerate()
            .map(|(i, &l)| (i * t + l - 1) as u32)
            .collect();
        let last = Tensor::from_vec(last, batch.lens.len(), &self.device)?;
        self.logits(&hidden.index_select(&last, 0)?, false)
    }

    /// Final norm, output head and soft-cap of some rows' last hidden states, f32 logits.
    /// `step`: a generation step (see [`linear`]).
    fn logits(&self, hidden: &Tensor, step: bool) -> Result<Tensor> {
        let h = self.norm.forward(hidden)?;
        let mut logits = self.lm_head.forward(&h, step)?.to_dtype(DType::F32)?;
        if let Some(cap) = self.spec.final_softcap {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }

    /// Embed `ids` (b, t) and run every block: the layer loop shared by the scoring passes and
    /// the generation steps. `tables` are (cos, sin) per rope table, `masks` one per distinct
    /// sliding window, `past(l)` what layer l attends to besides this pass's own keys.
    fn blocks_forward<'a>(
        &self,
        ids: &Tensor,
        (b, t): (usize, usize),
        tables: &[(Tensor, Tensor)],
        masks: &[(Option<usize>, Tensor)],
        past: impl Fn(usize) -> Past<'a>,
    ) -> Result<(Tensor, Vec<LayerKv>)> {
        let mut x = self.embed.lookup(&ids.flatten_all()?, self.dtype)?; // (b * t, d)
        if let Some(scale) = self.spec.embed_scale {
            x = (x * scale)?;
        }
        let mut kv = Vec::with_capacity(self.blocks.len());
        let step = matches!(past(0), Past::Cache(..));
        for (l, (blk, layer)) in self.blocks.iter().zip(&self.spec.layers).enumerate() {
            let (cos, sin) = &tables[layer.rope];
            let mask = &masks
                .iter()
                .find(|(w, _)| *w == layer.sliding_window)
                .expect("a mask per window")
                .1;
            let h = blk.attn_norm.forward(&x)?;
            let (a, layer_kv) = self.attention(blk, &h, (b, t), (cos, sin), mask, past(l))?;
            kv.push(layer_kv);
            let a = match &blk.post_attn_norm {
                Some(n) => n.forward(&a)?,
                None => a,
            };
            x = (x + a)?;
            let m = self.mlp(blk, &blk.ffn_norm.forward(&x)?, step)?;
            let m = match &blk.post_ffn_norm {
                Some(n) => n.forward(&m)?,
                None => m,
            };
            x = (x + m)?;
        }
        Ok((x, kv))
    }

    /// Run the decoder over right-padded `rows` whose first token sits at position `start[i]`.
    /// With `past`, row i also attends to the first `past_len[i]` cached positions of cache
    /// row `past_row[i]`. Returns the final hidden states (b * t, d) before the final norm,
    /// every layer's keys and values, and the padded layout.
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
        if longest > self.spec.max_position_embeddings {
            return Err(Error::ModelLimit(format!(
                "a prompt of {longest} tokens is longer than the model's context ({})",
                self.spec.max_position_embeddings
            )));
        }
        let positions: Vec<f32> = start
            .iter()
            .flat_map(|&s| (0..t).map(move |j| (s + j) as f32))
            .collect();
        let tables = self.rotary_tables(positions, (b, t))?;
        let (past_kv, tp) = match &past {
            None => (None, 0),
            Some(p) => {
                let idx = Tensor::new(p.row, &self.device)?;
                let gathered =
                    p.kv.iter()
                        .map(|(k, v)| Ok((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?)))
                        .collect::<Result<Vec<_>>>()?;
                let tp = p.kv.first().map_or(Ok(0), |(k, _)| k.dim(2))?;
                (Some(gathered), tp)
            }
        };
        let past_len: Vec<usize> = match &past {
            Some(p) => p.len.to_vec(),
            None => vec![0; b],
        };
        // One additive mask per distinct window among the layers.
        let mut masks: Vec<(Option<usize>, Tensor)> = Vec::new();
        for layer in &self.spec.layers {
            if !masks.iter().any(|(w, _)| *w == layer.sliding_window) {
                let m = attention_mask(
                    &past_len,
                    tp,
                    t,
                    layer.sliding_window,
                    past.is_some(),
                    &self.device,
                )?
                .to_dtype(self.dtype)?;
                masks.push((layer.sliding_window, m));
            }
        }
        let layer_past = |l: usize| match &past_kv {
            Some(p) => Past::Prefix(&p[l].0, &p[l].1),
            None => Past::None,
        };
        let (x, kv) = self.blocks_forward(&batch.ids, (b, t), &tables, &masks, layer_past)?;
        Ok(PassOutput {
            hidden: x,
            kv,
            batch,
        })
    }
}

/// Additive attention mask, (b or 1, 1, 1, t, tp + t): row r's query i (position
/// past_len[r] + i) sees its first past_len[r] cached keys and this pass's keys up to itself,
/// only those fewer than `window` positions behind it. Without a cache every row starts at 0
/// and one (1, ..) mask serves all.
fn attention_mask(
    past_len: &[usize],
    tp: usize,
    t: usize,
    window: Option<usize>,
    per_row: bool,
    device: &Device,
) -> Result<Tensor> {
    let near = |q: usize, k: usize| window.is_none_or(|w| q - k < w);
    let rows: &[usize] = if per_row { past_len } else { &[0] };
    let mut m = Vec::with_capacity(rows.len() * t * (tp + t));
    for &pl in rows {
        for i in 0..t {
            let q = pl + i;
            m.extend((0..tp).map(|j| {
                if j < pl && near(q, j) {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            }));
            m.extend((0..t).map(|j| {
                if j <= i && near(q, pl + j) {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            }));
        }
    }
    Ok(Tensor::from_vec(m, (rows.len(), 1, 1, t, tp + t), device)?)
}

/// Additive mask of a generation step, (b, 1, 1, 1, filled + 1): row r's new token (position
/// prompt_lens[r] + step) sees its real prompt columns and every generated column up to
/// itself, not the padding between them, and only keys fewer than `window` positions behind.
fn step_mask(cache: &KvCache, window: Option<usize>, device: &Device) -> Result<Tensor> {
    let (cols, at, step) = (cache.prompt_cols, cache.filled, cache.steps());
    let mut m = Vec::with_capacity(cache.rows() * (at + 1));
    for &len in &cache.prompt_lens {
        let q = len + step;
        m.extend((0..=at).map(|j| {
            let k = if j < cols {
                (j < len).then_some(j)
            } else {
                Some(len + j - cols)
            };
            match k {
                Some(k) if window.is_none_or(|w| q - k < w) => 0.0,
                _ => f32::NEG_INFINITY,
            }
        }));
    }
    Ok(Tensor::from_vec(
        m,
        (cache.rows(), 1, 1, 1, at + 1),
        device,
    )?)
}

impl CausalLm for Decoder {
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
        self.last_position_logits(&x, &batch)
    }

    fn prefill(&self, rows: &[&[u32]], max_new_tokens: usize) -> Result<(KvCache, Tensor)> {
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        if longest + max_new_tokens > self.spec.max_position_embeddings {
            return Err(Error::ModelLimit(format!(
                "a prompt of {longest} tokens plus {max_new_tokens} new ones is longer than the \
                 model's context ({})",
                self.spec.max_position_embeddings
            )));
        }
        let PassOutput { hidden, kv, batch } =
            self.forward_pass(rows, &vec![0; rows.len()], None)?;
        let t = batch.max_len;
        let mut layers = Vec::with_capacity(kv.len());
        for (k, v) in kv {
            let (b, nkv, _, hd) = k.dims4()?;
            let shape = (b, nkv, t + max_new_tokens, hd);
            let (ck, cv) = (
                Tensor::zeros(shape, k.dtype(), &self.device)?,
                Tensor::zeros(shape, v.dtype(), &self.device)?,
            );
            ck.slice_set(&k, 2, 0)?;
            cv.slice_set(&v, 2, 0)?;
            layers.push((ck, cv));
        }
        let logits = self.last_position_logits(&hidden, &batch)?;
        let cache = KvCache {
            layers,
            prompt_lens: batch.lens,
            prompt_cols: t,
            filled: t,
        };
        Ok((cache, logits))
    }

    fn decode_step(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Tensor> {
        let b = tokens.len();
        if b != cache.rows() || b == 0 {
            return Err(Error::Internal(format!(
                "a generation step got {b} tokens for {} rows",
                cache.rows()
            )));
        }
        if cache.steps_left() == 0 {
            return Err(Error::Internal(
                "the generation cache is full: prefill with a larger max_new_tokens".into(),
            ));
        }
        let at = cache.filled;
        let step = cache.steps();
        let positions = cache
            .prompt_lens
            .iter()
            .map(|&l| (l + step) as f32)
            .collect();
        let tables = self.rotary_tables(positions, (b, 1))?;
        let mut masks: Vec<(Option<usize>, Tensor)> = Vec::new();
        for layer in &self.spec.layers {
            if !masks.iter().any(|(w, _)| *w == layer.sliding_window) {
                let m =
                    step_mask(cache, layer.sliding_window, &self.device)?.to_dtype(self.dtype)?;
                masks.push((layer.sliding_window, m));
            }
        }
        let ids = Tensor::from_slice(tokens, (b, 1), &self.device)?;
        let layers = &cache.layers;
        let (x, _) = self.blocks_forward(&ids, (b, 1), &tables, &masks, |l| {
            Past::Cache(&layers[l].0, &layers[l].1, at)
        })?;
        cache.filled += 1;
        self.logits(&x, true)
    }

    fn vocab_size(&self) -> usize {
        self.spec.vocab_size
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "{}, {} layers, hidden {}, {} heads ({} kv), {} {} weights, {:?} activations",
            s.family,
            s.layers.len(),
            s.hidden_size,
            s.num_attention_heads,
            s.num_key_value_heads,
            self.source,
            self.format.name(),
            self.dtype
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_mask_hides_far_keys_and_padding_never_empties_a_row() {
        let m = attention_mask(&[2], 3, 3, Some(2), true, &Device::Cpu).unwrap();
        let m = m.reshape((3, 6)).unwrap().to_vec2::<f32>().unwrap();
        // Query 0 is at position 2: sees cached position 1 and itself, not cached 0 (too
        // far) nor cached 2 (beyond this row's prefix).
        let seen = |r: &Vec<f32>| r.iter().map(|v| v.is_finite()).collect::<Vec<_>>();
        assert_eq!(seen(&m[0]), [false, true, false, true, false, false]);
        assert_eq!(seen(&m[2]), [false, false, false, false, true, true]);
    }
}
