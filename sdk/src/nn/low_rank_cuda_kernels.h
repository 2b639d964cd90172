#pragma once
// The three kernels of a low-rank update y + s (dropout(x) A^T) B^T and its backward pass
// (low_rank_kernels.cu), behind a C interface like fused_cuda_kernels.h: raw pointers, `kind` the
// element type of the activations (1: fp16, 2: bf16; fp32 is not taken), `stream` a cudaStream_t,
// 0 or the cudaError_t as the result. Factors (A, B and the [rows, r] products) are fp32 and every
// sum is accumulated in fp32.
//
// Dropout: `seed` (a device int64, or null for none) keys a counter-based generator, so element
// (n, c) of a [rows, cols] input is kept or dropped the same way in every kernel that names the
// same seed and cols: backward regenerates the mask instead of keeping it. Kept elements are
// multiplied by keep_scale (1 / (1 - p)); keep_threshold is (1 - p) 2^16, rounded (a 16-bit
// draw per element). keep_bits (or null): a device [rows, cols / 8] byte per 8-element pack of the
// input; the down functions record there the mask they draw, and the others read it instead of
// drawing again (the same seed's mask, recorded by down over the same input).
// Every function needs cols (the 16-byte packs' dimension) a multiple of 8 and 16-byte aligned
// activations, and r <= 64; otherwise cudaErrorInvalidValue without a launch.
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// u[n, j] = scale * sum_c dropout(x)[n, c] w[j, c]: x [rows, cols], w [r, cols] fp32, u [rows, r].
int llm_low_rank_down_cuda(const void* x, int64_t rows, int64_t cols, const float* w, int64_t r,
                           const int64_t* seed, uint32_t keep_threshold, float keep_scale,
                           uint8_t* keep_bits, float scale, float* u, int kind, void* stream);

// The same for bf16 x and r <= 8 on tensor cores (sm_80 and later; the caller checks): the fp32
// factor split into three bf16 parts, so the sums keep fp32's accuracy; kept elements are summed
// as they are and the keep scale applied to the sums.
int llm_low_rank_down_mma_cuda(const void* x, int64_t rows, int64_t cols, const float* w, int64_t r,
                               const int64_t* seed, uint32_t keep_threshold, float keep_scale,
                               uint8_t* keep_bits, float scale, float* u, void* stream);

// One of the two updates llm_low_rank_down_mma_pair_cuda forms together: w [r, cols] fp32, its
// dropout (as the other functions take it: the mask drawn is recorded in keep_bits, if given) and
// u [rows, r]. u_parts (or null; with factor_parts only, rows even): u also as its three bf16
// parts, [3, r, rows] (part p of u[n, j] at (p r + j) rows + n), which the outer product and the
// pass over dy take instead of splitting u again.
typedef struct {
  const float* w;
  const int64_t* seed;
  uint32_t keep_threshold;
  float keep_scale;
  uint8_t* keep_bits;
  float* u;
  void* u_parts;
} LlmLowRankDownPart;

// llm_low_rank_down_mma_cuda for two updates of one x (the same r <= 8) in one pass over x: each
// part's u the same sums in the same order as that function's. factor_parts (or null): 2 * 3 * r
// * cols bf16 of the caller's (16-byte aligned), where both factors are split into their three
// bf16 parts once before the pass instead of in every 16 rows of it: the same sums and masks in
// fewer instructions.
int llm_low_rank_down_mma_pair_cuda(const void* x, int64_t rows, int64_t cols, int64_t r,
                                    LlmLowRankDownPart first, LlmLowRankDownPart second,
                                    float scale, void* factor_parts, void* stream);

// out[n, c] = y[n, c] + dropout(scale * sum_j u[n, j] w[j, c]), rounded once to the element type:
// u [rows, r], w [r, cols] fp32 (16-byte aligned, as down's), y (or null for zeros) and out [rows,
// cols]. The dropout here is applied to the product (backward's mask on the input gradient).
int llm_low_rank_up_cuda(const void* y, const float* u, const float* w, int64_t rows, int64_t cols,
                         int64_t r, const int64_t* seed, uint32_t keep_threshold, float keep_scale,
                         const uint8_t* keep_bits, float scale, void* out, int kind, void* stream);

// One of the two updates llm_low_rank_up_pair_cuda writes together: u [rows, r] and w [r, cols]
// fp32 with r <= 8, its dropout (as the other functions take it) and its scale.
typedef struct {
  const float* u;
  const float* w;
  int64_t r;
  const int64_t* seed;
  uint32_t keep_threshold;
  float keep_scale;
  const uint8_t* keep_bits;
  float scale;
} LlmLowRankPart;

// out[n, c] = dropout_1(scale_1 sum_j u_1[n, j] w_1[j, c]) + the same for the second part, each
// part formed as llm_low_rank_up_cuda forms it (without y), added in fp32 and rounded once:
// x's gradient through two updates of one input, in one pass. `narrow` nonzero: 4 columns a
// lane, two blocks an SM, where both masks are recorded and cols % 128 == 0 (the same sums).
int llm_low_rank_up_pair_cuda(LlmLowRankPart first, LlmLowRankPart second, int64_t rows,
                              int64_t cols, void* out, int narrow, int kind, void* stream);

// The same for bf16 and r <= 8 on tensor cores (sm_80 and later), cols a multiple of 32; the sums
// carry u's and w's fp32 values (each in three bf16 parts) to within ~2^-23 of the product.
int llm_low_rank_up_mma_cuda(const void* y, const float* u, const float* w, int64_t rows,
                             int64_t cols, int64_t r, const int64_t* seed, uint32_t keep_threshold,
                             float keep_scale, const uint8_t* keep_bits, float scale, void* out,
                             void* stream);

// partial[k, j, c] = scale * sum over rows n of chunk k of u[n, j] dropout(x)[n, c]: x [rows,
// cols], u [rows, r] fp32, partial [chunks, r, cols] fp32 (16-byte aligned) with chunks =
// llm_low_rank_chunks(rows, cols); their sum over k is u^T x (a weight gradient), summed by the
// caller in a fixed order.
int64_t llm_low_rank_chunks(int64_t rows, int64_t cols);
int llm_low_rank_outer_cuda(const void* x, const float* u, int64_t rows, int64_t cols, int64_t r,
                            const int64_t* seed, uint32_t keep_threshold, float keep_scale,
                            const uint8_t* keep_bits, float scale, float* partial, int kind,
                            void* stream);

// The same for bf16 x and r <= 8 on tensor cores (sm_80 and later; the caller checks), with the
// same chunks and layout; u's fp32 values split into three bf16 parts.
int llm_low_rank_outer_mma_cuda(const void* x, const float* u, int64_t rows, int64_t cols,
                                int64_t r, const int64_t* seed, uint32_t keep_threshold,
                                float keep_scale, const uint8_t* keep_bits, float scale,
                                float* partial, void* stream);

// One of the two updates llm_low_rank_outer_mma_pair_cuda forms together: u [rows, r] fp32, its
// dropout (as the other functions take it) and its partial [chunks, r, cols] (chunks =
// llm_low_rank_chunks(rows, cols)). u_parts (or null; rows even): u as its three bf16 parts in
// LlmLowRankDownPart's layout, loaded instead of split where both parts give them (and the
// chunks have an even number of rows): the same sums.
typedef struct {
  const float* u;
  const int64_t* seed;
  uint32_t keep_threshold;
  float keep_scale;
  const uint8_t* keep_bits;
  float* partial;
  const void* u_parts;
} LlmLowRankOuterPart;

// llm_low_rank_outer_mma_cuda for two updates of one x (the same r <= 8) in one pass over x, each
// part's partial sums as that function forms them (x copied a few steps ahead through a cp.async
// ring, read once for both). A recorded mask must be whole,
// 4-byte aligned words (cols / 8 a multiple of 4), else cudaErrorInvalidValue.
int llm_low_rank_outer_mma_pair_cuda(const void* x, int64_t rows, int64_t cols, int64_t r,
                                     LlmLowRankOuterPart first, LlmLowRankOuterPart second,
                                     float scale, void* stream);

// Backward's two products over dy [rows, cols] (bf16, r <= 8, tensor cores, sm_80 and later) in
// one pass: g_partial [ranges, rows, r] with g_partial[k, n, j] = scale * the sum over column
// range k of dy[n, c] w[j, c] (w [r, cols] fp32; the sum over k is what llm_low_rank_down_mma_cuda
// gives without dropout), and partial [chunks, r, cols] as llm_low_rank_outer_mma_cuda's with
// u [rows, r] and no dropout (over its own chunks). ranges and chunks from
// llm_low_rank_down_outer_shape (no chunks without rows).
// u_parts (or null; rows even): u's three bf16 parts as LlmLowRankDownPart's, loaded instead of
// split (the same sums).
void llm_low_rank_down_outer_shape(int64_t rows, int64_t cols, int64_t* ranges, int64_t* chunks);
int llm_low_rank_down_outer_mma_cuda(const void* dy, int64_t rows, int64_t cols, const float* w,
                                     const float* u, const void* u_parts, int64_t r, float scale,
                                     float* g_partial, float* partial, void* stream);

// out = the sum of partial [chunks, rows, cols] (fp32) over its first dimension, added in order
// k = 0, 1, ...: out [rows, cols], or [cols, rows] where `transposed` is nonzero. No chunks: zeros.
// accumulate nonzero: out = out + that sum (a gradient accumulated in place). parts (or null; not
// transposed, rows even, cols <= 64): the sum, a [rows, r = cols] rank product, also as its three
// bf16 parts in LlmLowRankDownPart's u_parts layout.
int llm_low_rank_sum_chunks_cuda(const float* partial, int64_t chunks, int64_t rows, int64_t cols,
                                 int transposed, int accumulate, float* out, void* parts,
                                 void* stream);

#ifdef __cplusplus
}
#endif
