#pragma once
// --quantize: a model's frozen base Linear weights stored compressed (QLoRA's NF4,
// llm/nn/nf4.hpp) and expanded on the fly in forward and backward. Applies to every adaptable
// Linear except the output head; embeddings, norms and the head stay in the compute dtype, as in
// QLoRA. Adapters (LoRA) attach on top through the same slot, unchanged.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"
#include "llm/nn/linear.hpp"
#include "llm/nn/nf4.hpp"

namespace llm {

class CausalLM;

enum class QuantizeScheme { kNone, kNf4, kNf4Nested };

// "none" (or empty), "nf4" / "bnb.nf4", "nf4-dq" / "bnb.nf4-dq"; UserError naming --quantize.
LLM_API QuantizeScheme parse_quantize(const std::string& text);
LLM_API std::string quantize_name(QuantizeScheme scheme);  // "nf4", "nf4-dq", "none"

// The layers quantize_frozen_linears compresses: every adaptable Linear but the output head.
LLM_API std::vector<std::pair<std::string, AdaptableLinear>> quantizable_linears(CausalLM& model);
// UserError naming the first layer whose in_features is not a multiple of the NF4 block (64).
LLM_API void check_quantizable(CausalLM& model, QuantizeScheme scheme);

// A Linear's weight in NF4, as a CompressedWeight (the autograd function that expands it).
LLM_API std::shared_ptr<CompressedWeight> make_nf4_weight(Nf4Tensor quantized);

struct QuantizeReport {
  int64_t layers = 0;
  int64_t weights = 0;           // elements quantized
  int64_t full_bytes = 0;        // what they took in the model's dtype
  int64_t compressed_bytes = 0;  // what they take now
};

// Where a layer's full-precision weight comes from; by default its own `weight`.
using WeightSource =
    std::function<torch::Tensor(const std::string& module, AdaptableLinear& linear)>;

// Replaces each quantizable layer's weight by its NF4 form on `device`, one layer at a time (the
// model may sit on the CPU: only compressed weights then reach the device). Checks first.
LLM_API QuantizeReport quantize_frozen_linears(CausalLM& model, QuantizeScheme scheme,
                                               const torch::Device& device,
                                               const WeightSource& source = {});
// Every compressed weight back to a plain one in `dtype` (the dequantized values); the count.
LLM_API int64_t expand_compressed_linears(CausalLM& model, torch::ScalarType dtype);

}  // namespace llm
