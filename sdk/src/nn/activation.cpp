#include "llm/nn/activation.hpp"

#include <algorithm>
#include <utility>

#include "fused_ops.hpp"
#include "llm/error.hpp"

namespace llm {
namespace {

const std::vector<std::pair<std::string, Activation>>& activation_names() {
  static const std::vector<std::pair<std::string, Activation>> kNames = {
      {"gelu", Activation::kGelu},          {"gelu_new", Activation::kGeluTanh},
      {"gelu_fast", Activation::kGeluTanh}, {"gelu_pytorch_tanh", Activation::kGeluTanh},
      {"relu", Activation::kRelu},          {"silu", Activation::kSilu},
      {"swish", Activation::kSilu}};
  return kNames;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

Activation parse_activation(const std::string& name, const std::string& source,
                            const std::vector<std::string>& allowed) {
  std::vector<std::string> accepted = allowed;
  if (accepted.empty()) {
    for (const auto& entry : activation_names()) accepted.push_back(entry.first);
  }
  if (std::find(accepted.begin(), accepted.end(), name) != accepted.end()) {
    for (const auto& entry : activation_names()) {
      if (entry.first == name) return entry.second;
    }
  }
  throw UserError(source + ": hidden_act '" + name + "' is not supported (expected one of " +
                  join(accepted) + ")");
}

torch::Tensor apply_activation(Activation activation, const torch::Tensor& x) {
  switch (activation) {
    case Activation::kGelu:
      return torch::gelu(x);
    case Activation::kGeluTanh:
      return torch::gelu(x, "tanh");
    case Activation::kRelu:
      return torch::relu(x);
    case Activation::kSilu:
      return torch::silu(x);
  }
  return x;
}

torch::Tensor gated_activation(Activation activation, const torch::Tensor& gate,
                               const torch::Tensor& up) {
  if (activation == Activation::kSilu) return fused::swiglu(gate, up);
  return apply_activation(activation, gate) * up;
}

}  // namespace llm
