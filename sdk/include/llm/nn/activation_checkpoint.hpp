#pragma once
// Activation checkpointing: run a transformer block keeping only its input; backward recomputes
// the block (with the same dropout masks) and differentiates through the recomputation. Peak
// activation memory drops from every block's intermediates to one block's.
#include <functional>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"

namespace llm {

using BlockFn = std::function<torch::Tensor(const torch::Tensor&)>;

// block(x), recomputed in backward. `parameters` are the trainable tensors the block uses (their
// gradients flow through the recomputation); `block` must stay callable until backward has run.
LLM_API torch::Tensor checkpointed_block(BlockFn block, const torch::Tensor& x,
                                         const std::vector<torch::Tensor>& parameters);

}  // namespace llm
