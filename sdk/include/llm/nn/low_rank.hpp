#pragma once
// The low-rank update an adapter (LoRA and its kin) adds to a frozen linear layer's output.
#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

// delta = (dropout(x) A^T) B^T * scaling in fp32, returned in x's dtype, for x [..., in], A [r,
// in] and B [out, r] (fp32, trainable). Dropout acts on x (training only: the caller passes 0
// otherwise). Backward saves x in its own dtype, shared by every update on the same input (q and v
// of one layer), and the dropout mask, never an fp32 copy of x.
LLM_API torch::Tensor low_rank_delta(const torch::Tensor& x, const torch::Tensor& A,
                                     const torch::Tensor& B, double scaling, double dropout);

// y + delta, y [..., out] the frozen layer's output in x's dtype. On CUDA with fp16/bf16
// activations, rank <= 64 and in, out multiples of 8 it runs as three streaming kernels each way
// (the sum rounded to y's dtype once; the dropout mask regenerated in backward, not stored);
// elsewhere it is y + low_rank_delta(...) cast to y's dtype.
LLM_API torch::Tensor low_rank_update(const torch::Tensor& x, const torch::Tensor& y,
                                      const torch::Tensor& A, const torch::Tensor& B,
                                      double scaling, double dropout);

// x W^T + b + delta with W [out, in] and b [out] (optional) frozen: the same value as
// low_rank_update(x, linear(x, W, b), ...). Where the kernels apply it is one autograd node: the
// update is added into the product's output in place, and backward adds the update's input
// gradient into dy W in place, where two nodes left autograd a separate tensor and an add.
// Elsewhere (or with LLMHOST_LOW_RANK_WITH_BASE=0) it is exactly that composition.
LLM_API torch::Tensor low_rank_linear(const torch::Tensor& x, const torch::Tensor& weight,
                                      const torch::Tensor& bias, const torch::Tensor& A,
                                      const torch::Tensor& B, double scaling, double dropout);

}  // namespace llm
