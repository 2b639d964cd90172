#pragma once
// The pieces of a parallel-residual block, x + attention(norm1(x)) + mlp(norm2(x)) (GPT-NeoX,
// GPT-J), that fuse on CUDA: both norms of x in one pass, and the three-way sum in one pass.
#include <torch/torch.h>

#include "llm/export.hpp"
#include "llm/nn/norm.hpp"

namespace llm {

// The block's two norms of x, and x itself for the residual sum. Use `residual` in that sum: on
// CUDA with frozen norm weights one kernel reads x once for both norms, and its backward adds the
// gradients of all three into x's in one pass (LibTorch's layer_norm twice elsewhere).
struct ParallelBlockInputs {
  torch::Tensor first, second, residual;
};
LLM_API ParallelBlockInputs parallel_block_inputs(const torch::Tensor& x,
                                                  const LayerNormImpl& first,
                                                  const LayerNormImpl& second);

// (a + b) + c for tensors of one shape, rounded after each add as `a + b + c` is: one pass on CUDA.
LLM_API torch::Tensor add_three(const torch::Tensor& a, const torch::Tensor& b,
                                const torch::Tensor& c);

}  // namespace llm
