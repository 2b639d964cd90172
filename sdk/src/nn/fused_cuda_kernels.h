#pragma once
// Fused elementwise and row kernels (fused_kernels.cu) behind a C interface, so the .cu file needs
// neither LibTorch nor its compile flags. Tensors are raw pointers; `kind` is the element type
// (0: fp32, 1: fp16, 2: bf16); `stream` is a cudaStream_t. Each function returns 0 or the
// cudaError_t of its launch. Every kernel rounds to the element type exactly where the unfused
// LibTorch operations write a tensor of that type, so the results are theirs up to fp32 rounding.
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// out = silu(gate) * up over n contiguous elements.
int llm_swiglu_forward_cuda(const void* gate, const void* up, void* out, int64_t n, int kind,
                            void* stream);
// grad_gate, grad_up of out = silu(gate) * up, given grad (all contiguous, n elements).
int llm_swiglu_backward_cuda(const void* grad, const void* gate, const void* up, void* grad_gate,
                             void* grad_up, int64_t n, int kind, void* stream);

// y = weight * (x * rsqrt(mean(x^2) + eps)) per row of `dim` contiguous elements, normalised in
// fp32 and rounded to the element type before the product (Llama's RMSNorm); rstd [rows] fp32.
int llm_rms_norm_forward_cuda(const void* x, const void* weight, void* y, float* rstd, int64_t rows,
                              int64_t dim, double eps, int kind, void* stream);
// grad_x of the above (weight frozen), from grad, x, weight and the saved rstd.
// residual_grad (may be null): the gradient of x passed on for a residual sum, added to x's in
// fp32 before the one rounding.
int llm_rms_norm_backward_cuda(const void* grad, const void* x, const void* weight,
                               const float* rstd, const void* residual_grad, void* grad_x,
                               int64_t rows, int64_t dim, int kind, void* stream);

// Two LayerNorms of one x [rows, dim]: y1 = LN(x; w1, b1), y2 = LN(x; w2, b2), with the rows'
// mean and rstd (fp32) for backward. Rows of whole 16-byte packs, at most 1,024 packs, 16-byte
// aligned pointers; anything else returns cudaErrorInvalidValue without launching.
int llm_layer_norm_pair_forward_cuda(const void* x, const void* w1, const void* b1, const void* w2,
                                     const void* b2, void* y1, void* y2, float* mean, float* rstd,
                                     int64_t rows, int64_t dim, double eps, int kind, void* stream);
// grad_x of the above through both outputs (weights frozen), from their gradients dy1, dy2, plus
// dres (x's gradient from elsewhere) when it is not null.
int llm_layer_norm_pair_backward_cuda(const void* dy1, const void* dy2, const void* dres,
                                      const void* x, const void* w1, const void* w2,
                                      const float* mean, const float* rstd, void* grad_x,
                                      int64_t rows, int64_t dim, int kind, void* stream);
// out = (a + b) + c over n contiguous elements, rounded to the type after each add.
int llm_add_three_cuda(const void* a, const void* b, const void* c, void* out, int64_t n, int kind,
                       void* stream);

// Rotary embedding in Hugging Face's rotate_half layout over the first rotary_dim of `dim`:
// out[j] = x[j] * cos[p, j] + x[partner(j)] * sin[p, partner(j) if transpose else j], p = offset
// + t (or positions[t] when `positions`, a device array of `tokens` int64, is given), partner
// swapping the two halves of the rotary dims (the rest pass through: cos 1, sin 0). x is [batch,
// heads, tokens, dim] with element strides (x_strides[0..2] for batch, heads, tokens; dim
// contiguous); out is contiguous [batch, tokens, heads, dim]. cos and sin are [rows, dim]
// contiguous tables (sin signed as rotary.cpp builds it). transpose = 1 gives the backward pass.
int llm_rotary_cuda(const void* x, const int64_t* sizes, const int64_t* x_strides, const void* cos,
                    const void* sin, const int64_t* positions, int64_t offset, int64_t rotary_dim,
                    int transpose, void* out, int kind, void* stream);

// Up to three parts of shape [batch, heads, tokens, dim] (sizes), each read from in[p] and written
// to out[p] with its own element strides (batch, heads, tokens; dim contiguous), the first
// `rotated` parts rotated as llm_rotary_cuda does and the rest copied. Whole 16-byte packs only:
// dim, rotary_dim / 2 and every stride a multiple of a pack, pointers 16-byte aligned, otherwise
// cudaErrorInvalidValue without a launch.
struct LlmRotaryParts {
  const void* in[3];
  int64_t in_strides[3][3];
  void* out[3];
  int64_t out_strides[3][3];
};
int llm_rotary_parts_cuda(const struct LlmRotaryParts* parts, int count, int rotated,
                          const int64_t* sizes, const void* cos, const void* sin,
                          const int64_t* positions, int64_t offset, int64_t rotary_dim,
                          int transpose, int kind, void* stream);

// The first rotary_dim of `count` parts of shape [batch, heads, tokens, dim] (sizes) rotated in
// place, as llm_rotary_cuda does forward; part p starts part_offset elements after data, and all
// share the element strides (batch, heads, tokens; dim contiguous). The rest of each row is not
// touched. Whole 16-byte packs only, as llm_rotary_parts_cuda, otherwise cudaErrorInvalidValue.
int llm_rotary_in_place_cuda(void* data, int count, int64_t part_offset, const int64_t* sizes,
                             const int64_t* strides, const void* cos, const void* sin,
                             const int64_t* positions, int64_t offset, int64_t rotary_dim, int kind,
                             void* stream);

// y [rows] = w [rows, cols] (contiguous) x [cols] (+ bias [rows] unless null), accumulated in fp32
// and rounded once. cols a multiple of 16 bytes of elements and w, x 16-byte aligned, otherwise
// cudaErrorInvalidValue without a launch.
int llm_gemv_cuda(const void* w, const void* x, const void* bias, void* y, int64_t rows,
                  int64_t cols, int kind, void* stream);

#ifdef __cplusplus
}
#endif
