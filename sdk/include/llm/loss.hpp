#pragma once
#include <cstdint>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

struct MaskedLoss {
  torch::Tensor mean;           // scalar fp32: sum / target_tokens (0 when there are none)
  torch::Tensor sum;            // scalar fp32: summed over target tokens, for token weighting
  torch::Tensor target_tokens;  // scalar int64 on the logits' device (not read: no host sync)
};

// Cross-entropy of logits [N, V] (any float dtype; computed in fp32, a block of rows at a time)
// against targets [N], summed over the rows whose target is not ignore_index. Backward keeps no
// fp32 copy of the logits and returns the gradient in their dtype. rows_per_block 0: ~256 MB of
// fp32 per block.
LLM_API torch::Tensor summed_cross_entropy(const torch::Tensor& logits,
                                           const torch::Tensor& targets,
                                           int64_t ignore_index = -100, int64_t rows_per_block = 0);

// Next-token cross-entropy as Hugging Face computes it: logits[:, :-1] predict labels[:, 1:];
// positions labelled ignore_index do not count. logits [B, T, V] (any float dtype; computed in
// fp32), labels [B, T] int64.
LLM_API MaskedLoss masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels,
                                        int64_t ignore_index = -100);

// Cross-entropy of hidden [N, H] x weight^T [H, V] against targets [N], summed over rows whose
// target is not ignore_index, without [N, V] logits: the product and the loss run a block of rows
// at a time (rows_per_block 0: ~64 MB of fp32 per block). The weight must be frozen; the hidden
// states' gradient is computed during the forward pass (when they require grad) and kept [N, H].
// Values and gradients equal summed_cross_entropy(hidden x weight^T) up to the rounding of the
// gradient's scaling by the incoming gradient.
LLM_API torch::Tensor summed_linear_cross_entropy(const torch::Tensor& hidden,
                                                  const torch::Tensor& weight,
                                                  const torch::Tensor& targets,
                                                  int64_t ignore_index = -100,
                                                  int64_t rows_per_block = 0);

// masked_cross_entropy of the logits hidden x weight^T without materialising them: hidden
// [B, T, H] (final hidden states), weight [V, H] frozen, labels [B, T].
LLM_API MaskedLoss masked_next_token_loss(const torch::Tensor& hidden, const torch::Tensor& weight,
                                          const torch::Tensor& labels, int64_t ignore_index = -100);

}  // namespace llm
