// Fused last-position gather + label softmax: the scorer's reading of a batch of logits.
//
// For output row r, the logits row rows[r] of a (n, vocab) matrix is read once: an online
// softmax keeps a running max and a sum of exp(x - max) rescaled whenever the max grows, so the
// whole-vocabulary normaliser needs no second pass and no (n, vocab) probability matrix is ever
// written. Then the label tokens' shares give
//   out[r] = { P(A) / (P(A) + P(B)),  P(A) + P(B),  first token whose logit is NaN or +inf, or -1 }
// with P(A) and P(B) summed over each label's token spellings, as scorer::score_row does on the
// CPU (its reference). Only 3 floats per row go back to the host instead of a vocabulary-sized
// row: 1.5 MiB per 3 rows of Llama 3's 128k vocabulary in f32.
//
// One block per output row, f32 accumulation whatever the logits' type.

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
__device__ void label_softmax(const T *logits, const uint32_t *rows, const uint32_t *labels_a,
                              int n_a, const uint32_t *labels_b, int n_b, int vocab, float *out) {
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
    float pa = 0.0f, pb = 0.0f;
    for (int k = 0; k < n_a; k++) pa += expf(as_f32(x[labels_a[k]]) - m);
    for (int k = 0; k < n_b; k++) pb += expf(as_f32(x[labels_b[k]]) - m);
    out[3 * r + 0] = pa / (pa + pb);
    out[3 * r + 1] = (pa + pb) / s;
    out[3 * r + 2] = bad == NO_BAD ? -1.0f : (float)bad;
}

#define LABEL_SOFTMAX(T, NAME)                                                                    \
    extern "C" __global__ void __launch_bounds__(BLOCK)                                          \
        NAME(const T *logits, const uint32_t *rows, const uint32_t *labels_a, int n_a,            \
             const uint32_t *labels_b, int n_b, int vocab, float *out) {                          \
        label_softmax<T>(logits, rows, labels_a, n_a, labels_b, n_b, vocab, out);                 \
    }

LABEL_SOFTMAX(float, label_softmax_f32)
LABEL_SOFTMAX(__nv_bfloat16, label_softmax_bf16)
