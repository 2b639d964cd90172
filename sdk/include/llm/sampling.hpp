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

// The smallest temperature above 0: logits are divided by it in fp32, and below this a logit of any
// real model (|logit| < 1e32) could overflow to infinity and turn the probabilities into NaN.
inline constexpr double kMinTemperature = 1e-6;

// UserError naming the flag (--temperature, --top_k, --top_p) when a value is out of range.
LLM_API void check_sampling_options(const SamplingOptions& options);

// Picks the next token from logits [B, vocab] -> ids [B] (int64).
LLM_API torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& options,
                                  torch::Generator* generator = nullptr);

}  // namespace llm
