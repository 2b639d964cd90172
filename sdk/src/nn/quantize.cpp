#include "llm/nn/quantize.hpp"

#include <algorithm>
#include <cctype>

#include <torch/torch.h>

#include "llm/error.hpp"
#include "llm/model.hpp"

namespace llm {

QuantizeScheme parse_quantize(const std::string& text) {
  std::string value = text;
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (value.empty() || value == "none") return QuantizeScheme::kNone;
  // lit-gpt's spellings name the bitsandbytes schemes.
  if (value == "nf4" || value == "bnb.nf4") return QuantizeScheme::kNf4;
  if (value == "nf4-dq" || value == "bnb.nf4-dq") return QuantizeScheme::kNf4Nested;
  throw UserError("--quantize '" + text +
                  "' is not a supported scheme (expected nf4, bnb.nf4 or bnb.nf4-dq; or none)");
}

std::string quantize_name(QuantizeScheme scheme) {
  switch (scheme) {
    case QuantizeScheme::kNf4:
      return "nf4";
    case QuantizeScheme::kNf4Nested:
      return "nf4-dq";
    case QuantizeScheme::kNone:
      break;
  }
  return "none";
}

std::vector<std::pair<std::string, AdaptableLinear>> quantizable_linears(CausalLM& model) {
  const auto* head = model.output_head().get();
  std::vector<std::pair<std::string, AdaptableLinear>> layers;
  for (auto& layer : model.adaptable_linears()) {
    if (layer.linear.get() != head) layers.emplace_back(layer.name, layer.linear);
  }
  return layers;
}

void check_quantizable(CausalLM& model, QuantizeScheme scheme) {
  if (scheme == QuantizeScheme::kNone) return;
  for (auto& [name, linear] : quantizable_linears(model)) {
    if (linear->in_features() % kNf4BlockSize != 0) {
      throw UserError("--quantize " + quantize_name(scheme) + ": layer '" + name +
                      "' has in_features " + std::to_string(linear->in_features()) +
                      ", not a multiple of the NF4 block size " + std::to_string(kNf4BlockSize) +
                      " (" + model.config().source + ")");
    }
  }
}

QuantizeReport quantize_frozen_linears(CausalLM& model, QuantizeScheme scheme,
                                       const torch::Device& device, const WeightSource& source) {
  QuantizeReport report;
  if (scheme == QuantizeScheme::kNone) return report;
  check_quantizable(model, scheme);
  torch::NoGradGuard no_grad;
  for (auto& [name, linear] : quantizable_linears(model)) {
    if (linear->compressed_weight()) continue;
    const auto full = source ? source(name, linear) : linear->weight;
    report.layers += 1;
    report.weights += full.numel();
    report.full_bytes += full.numel() * static_cast<int64_t>(full.element_size());
    auto q = nf4_quantize(full.to(device), scheme == QuantizeScheme::kNf4Nested);
    report.compressed_bytes += q.storage_bytes();
    linear->set_compressed_weight(make_nf4_weight(std::move(q)), "weight_nf4");
  }
  return report;
}

int64_t expand_compressed_linears(CausalLM& model, torch::ScalarType dtype) {
  int64_t count = 0;
  for (auto& layer : model.adaptable_linears()) {
    if (!layer.linear->compressed_weight()) continue;
    layer.linear->expand_weight(dtype);
    ++count;
  }
  return count;
}

}  // namespace llm
