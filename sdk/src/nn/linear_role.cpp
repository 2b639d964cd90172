#include "llm/nn/linear_role.hpp"

#include <stdexcept>

namespace llm {

const char* linear_role_name(LinearRole role) {
  switch (role) {
    case LinearRole::kQuery:
      return "query";
    case LinearRole::kKey:
      return "key";
    case LinearRole::kValue:
      return "value";
    case LinearRole::kAttentionOutput:
      return "attention_output";
    case LinearRole::kMlpGate:
      return "mlp_gate";
    case LinearRole::kMlpUp:
      return "mlp_up";
    case LinearRole::kMlpDown:
      return "mlp_down";
    case LinearRole::kLmHead:
      return "lm_head";
  }
  return "unknown";
}

torch::Tensor ModelLinear::row_mask(const std::function<bool(LinearRole)>& selected) const {
  const int64_t out = linear->out_features();
  auto mask = torch::zeros({out}, torch::kFloat);
  for (const auto& part : parts) {
    const int64_t last = part.first + (part.blocks - 1) * part.stride + part.rows;
    if (part.first < 0 || part.rows <= 0 || part.blocks <= 0 || part.stride < 0 || last > out ||
        (part.blocks > 1 && part.stride < part.rows)) {
      throw std::logic_error(name + ": the " + linear_role_name(part.role) +
                             " part does not fit the layer's " + std::to_string(out) + " rows");
    }
    if (!selected(part.role)) continue;
    for (int64_t b = 0; b < part.blocks; ++b) {
      mask.narrow(0, part.first + b * part.stride, part.rows).fill_(1.0);
    }
  }
  return mask;
}

ModelLinear plain_linear(std::string name, AdaptableLinear linear, LinearRole role) {
  const int64_t rows = linear->out_features();
  return {std::move(name), std::move(linear), {LinearPart{role, 0, rows, 1, rows}}};
}

}  // namespace llm
