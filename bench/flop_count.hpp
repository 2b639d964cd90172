#pragma once
// Floating-point operations per token, for MFU. Counts matrix products only (norms, activations
// and the optimiser are noise at these sizes).
#include <cstdint>

#include "llm/model.hpp"

namespace llmhost_bench {

struct FlopModel {
  int64_t matmul_params = 0;  // every weight a token is multiplied by (all but the embedding)
  int64_t layers = 0;
  int64_t hidden = 0;

  // Forward at context length `context`: 2 per weight, plus causal attention's QK^T and AV
  // (2 * hidden * context / 2 each, per layer).
  double forward_per_token(int64_t context) const;
  // LoRA training: forward plus the activation gradients (the frozen weights get none), so twice
  // the forward; PROTOCOL.md's "about 4 x params".
  double lora_train_per_token(int64_t context) const;
};

FlopModel flop_model(llm::CausalLM& model);

}  // namespace llmhost_bench
