#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"
#include "llm/nn/linear.hpp"

namespace llm {

// What a model's linear layer computes, so an adapter targets layers by meaning (LoRA's
// --lora_query ... --lora_head) and never by a family's module names or layout.
enum class LinearRole : std::uint32_t {
  kQuery,
  kKey,
  kValue,
  kAttentionOutput,
  kMlpGate,
  kMlpUp,  // also a plain (ungated) MLP's first layer
  kMlpDown,
  kLmHead,
};
LLM_API const char* linear_role_name(LinearRole role);  // "query", ..., "attention_output", ...

// The rows of a layer's weight [out, in] that compute one role: `blocks` runs of `rows` rows, the
// i-th starting at row first + i * stride. A plain layer has one part covering every row; a fused
// layer one part per role (GPT-NeoX's query_key_value, rows per head [q, k, v]: query = first 0,
// rows head_dim, blocks heads, stride 3 * head_dim).
struct LinearPart {
  LinearRole role;
  int64_t first = 0;
  int64_t rows = 0;
  int64_t blocks = 1;
  int64_t stride = 0;
};

// A linear layer as a model declares it: its Hugging Face module name (PEFT's, so adapter files
// need no translation), the layer, and what its rows compute.
struct LLM_API ModelLinear {
  std::string name;
  AdaptableLinear linear;
  std::vector<LinearPart> parts;

  // [out_features] fp32: 1 on the rows of the parts whose role `selected` accepts, 0 elsewhere.
  // std::logic_error if a part runs past the layer's rows (a family's declaration is wrong).
  torch::Tensor row_mask(const std::function<bool(LinearRole)>& selected) const;
};

// A plain layer: one role on every row.
LLM_API ModelLinear plain_linear(std::string name, AdaptableLinear linear, LinearRole role);

}  // namespace llm
