#pragma once
#include <cstdint>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

struct SamplingOptions {
  double temperature = 0.8;  // 0 = greedy
  int64_t top_k = 200;       // 0 = off
  double top_p = 1.0;        // 1 = off
};

// Picks the next token from logits [B, vocab] -> ids [B] (int64).
LLM_API torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& options,
                                  torch::Generator* generator = nullptr);

}  // namespace llm
