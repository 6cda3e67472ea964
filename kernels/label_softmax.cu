// Fused last-position gather + label softmax over N labels: the scorer's (A, B) and the judge's
// (A, B, Neither) reading of a batch of logits.
//
// For output row r, the logits row rows[r] of a (n, vocab) matrix is read once: an online
// softmax keeps a running max and a sum of exp(x - max) rescaled whenever the max grows, so the
// whole-vocabulary normaliser needs no second pass and no (n, vocab) probability matrix is ever
// written. Then the label tokens' shares give, with W = n_labels + 2 floats per row,
//   out[W r + l]           = P(label l) / (P(label 0) + ... + P(label N-1))   for l < N
//   out[W r + N]           = P(label 0) + ... + P(label N-1)
//   out[W r + N + 1]       = first token whose logit is NaN or +inf, or -1
// with each P(label) summed over the label's token spellings, as readout::label_distribution
// does on the CPU (its reference). Label l's token ids are label_ids[label_ends[l-1] ..
// label_ends[l]] (from 0 for l = 0). Only N + 2 floats per row go back to the host instead of a
// vocabulary-sized row: 1.5 MiB per 3 rows of Llama 3's 128k vocabulary in f32.
//
// One block per output row, f32 accumulation whatever the logits' type. For two labels the
// operations are those of the two-label kernel this replaced (pa / (pa + pb), (pa + pb) / s),
// so GPU results stay what they were.

#include <cuda_bf16.h>
#include <stdint.h>

#define BLOCK 512
#define WARPS (BLOCK / 32)
#define NO_BAD 0x7fffffff

__device__ __forceinline__ float as_f32(float v) { return v; }
__device__ __forceinline__ float as_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

// Merge two (max, sum of exp(x - max)) pairs. -inf maxima carry no mass (exp(-inf) = 0); testing
// for them avoids exp(-inf - -inf) = NaN.
__device__ __forceinline__ void merge(float &m, float &s, float m2, float s2) {
    if (m2 == -INFINITY) return;
    if (m == -INFINITY) {
        m = m2;
        s = s2;
        return;
    }
    if (m2 > m) {
        s = s * expf(m - m2) + s2;
        m = m2;
    } else {
        s += s2 * expf(m2 - m);
    }
}

template <typename T>
__device__ void label_softmax(const T *logits, const uint32_t *rows, const uint32_t *label_ids,
                              const uint32_t *label_ends, int n_labels, int vocab, float *out) {
    __shared__ float shared_m[WARPS];
    __shared__ float shared_s[WARPS];
    __shared__ int shared_bad[WARPS];
    const int r = blockIdx.x;
    const T *x = logits + (size_t)rows[r] * (size_t)vocab;

    float m = -INFINITY, s = 0.0f;
    int bad = NO_BAD;
    for (int i = threadIdx.x; i < vocab; i += BLOCK) {
        const float v = as_f32(x[i]);
        if (isnan(v) || v == INFINITY) {
            bad = min(bad, i);
            continue;
        }
        merge(m, s, v, 1.0f);
    }
    // Within each warp, then across the warps through shared memory.
    for (int offset = 16; offset > 0; offset >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffff, m, offset);
        const float s2 = __shfl_xor_sync(0xffffffff, s, offset);
        bad = min(bad, __shfl_xor_sync(0xffffffff, bad, offset));
        merge(m, s, m2, s2);
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
        shared_m[warp] = m;
        shared_s[warp] = s;
        shared_bad[warp] = bad;
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int w = 1; w < WARPS; w++) {
        merge(m, s, shared_m[w], shared_s[w]);
        bad = min(bad, shared_bad[w]);
    }
    // Each label's unnormalised share goes into its output slot, then is divided by their sum.
    float *o = out + (size_t)r * (size_t)(n_labels + 2);
    float total = 0.0f;
    uint32_t k = 0;
    for (int l = 0; l < n_labels; l++) {
        float p = 0.0f;
        for (; k < label_ends[l]; k++) p += expf(as_f32(x[label_ids[k]]) - m);
        o[l] = p;
        total += p;
    }
    for (int l = 0; l < n_labels; l++) o[l] = o[l] / total;
    o[n_labels] = total / s;
    o[n_labels + 1] = bad == NO_BAD ? -1.0f : (float)bad;
}

#define LABEL_SOFTMAX(T, NAME)                                                                    \
    extern "C" __global__ void __launch_bounds__(BLOCK)                                          \
        NAME(const T *logits, const uint32_t *rows, const uint32_t *label_ids,                    \
             const uint32_t *label_ends, int n_labels, int vocab, float *out) {                   \
        label_softmax<T>(logits, rows, label_ids, label_ends, n_labels, vocab, out);              \
    }

LABEL_SOFTMAX(float, label_softmax_f32)
LABEL_SOFTMAX(__nv_bfloat16, label_softmax_bf16)
