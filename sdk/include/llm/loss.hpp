#pragma once
#include <cstdint>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

struct MaskedLoss {
  torch::Tensor mean;  // scalar fp32: sum / target_tokens (0 when there are none)
  torch::Tensor sum;   // scalar fp32: summed over target tokens, for token-weighted averaging
  int64_t target_tokens = 0;
};

// Next-token cross-entropy as Hugging Face computes it: logits[:, :-1] predict labels[:, 1:];
// positions labelled ignore_index do not count. logits [B, T, V] (any float dtype; computed in
// fp32), labels [B, T] int64.
LLM_API MaskedLoss masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels,
                                        int64_t ignore_index = -100);

}  // namespace llm
