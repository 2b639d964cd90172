#include "llm/nn/linear.hpp"

#include "fused_ops.hpp"
#include "tuned_gemm.hpp"

namespace llm {

AdaptableLinearImpl::AdaptableLinearImpl(int64_t in_features, int64_t out_features, bool bias,
                                         const torch::TensorOptions& options)
    : in_features_(in_features), out_features_(out_features) {
  // Frozen base weights: adapters bring their own trainable parameters.
  weight = register_parameter("weight", torch::empty({out_features, in_features}, options),
                              /*requires_grad=*/false);
  if (bias) {
    this->bias = register_parameter("bias", torch::empty({out_features}, options),
                                    /*requires_grad=*/false);
  }
}

CompressedWeight::~CompressedWeight() = default;

torch::Tensor AdaptableLinearImpl::forward(const torch::Tensor& x) {
  const bool gemv = !compressed_ && fused::gemv_applies(x, weight, bias);
  if (adapter_ && !compressed_ && !gemv) return adapter_->apply(x, weight, bias);
  auto y = compressed_      ? compressed_->linear(x)
           : gemv           ? fused::gemv(x, weight, bias)
           : bias.defined() ? torch::linear(x, weight, bias)
                            : fused::frozen_linear(x, weight);
  if (compressed_ && bias.defined()) y = y + bias;
  if (adapter_) y = adapter_->add_to(x, y);
  return y;
}

torch::Tensor AdaptableLinearImpl::forward_onto(const torch::Tensor& residual,
                                                const torch::Tensor& x) {
  if (adapter_ || compressed_ || bias.defined() || !torch::GradMode::is_enabled()) {
    return residual + forward(x);
  }
  return fused::frozen_linear_onto(x, weight, residual);
}

torch::Tensor LinearAdapter::add_to(const torch::Tensor& x, const torch::Tensor& y) {
  // Adapters may compute in fp32 over bf16 weights; the residual stream keeps the base dtype.
  return y + delta(x).to(y.scalar_type());
}

c10::optional<LowRankFactors> LinearAdapter::low_rank_factors() { return c10::nullopt; }

torch::Tensor LinearAdapter::apply(const torch::Tensor& x, const torch::Tensor& weight,
                                   const torch::Tensor& bias) {
  return add_to(x, torch::linear(x, weight, bias));
}

void AdaptableLinearImpl::set_adapter(std::shared_ptr<LinearAdapter> adapter,
                                      const std::string& name) {
  clear_adapter();
  adapter_ = register_module(name, std::move(adapter));
  adapter_name_ = name;
}

void AdaptableLinearImpl::clear_adapter() {
  if (!adapter_) return;
  unregister_module(adapter_name_);
  adapter_.reset();
  adapter_name_.clear();
}

void AdaptableLinearImpl::set_compressed_weight(std::shared_ptr<CompressedWeight> compressed,
                                                const std::string& name) {
  if (compressed_) {
    unregister_module(compressed_name_);
  } else {
    parameters_.erase("weight");
  }
  weight = torch::Tensor();
  compressed_ = register_module(name, std::move(compressed));
  compressed_name_ = name;
}

void AdaptableLinearImpl::expand_weight(torch::ScalarType dtype) {
  if (!compressed_) return;
  torch::Tensor expanded;
  {
    torch::NoGradGuard no_grad;
    expanded = compressed_->expand(dtype);
  }
  unregister_module(compressed_name_);
  compressed_.reset();
  compressed_name_.clear();
  weight = register_parameter("weight", expanded, /*requires_grad=*/false);
}

std::vector<torch::Tensor> forward_shared_input(
    const torch::Tensor& x, std::initializer_list<AdaptableLinearImpl*> layers) {
  std::vector<torch::Tensor> weights;
  std::vector<c10::optional<LowRankFactors>> updates;
  bool plain = torch::GradMode::is_enabled();
  for (AdaptableLinearImpl* layer : layers) {
    if (!plain) break;
    const auto& adapter = layer->adapter();
    auto factors = adapter ? adapter->low_rank_factors() : c10::nullopt;
    plain =
        !layer->compressed_weight() && !layer->bias.defined() && (!adapter || factors.has_value());
    weights.push_back(layer->weight);
    updates.push_back(std::move(factors));
  }
  if (plain) {
    auto outputs = shared_input_linears(x, weights, updates);
    if (!outputs.empty()) return outputs;
  }
  std::vector<torch::Tensor> outputs;
  for (AdaptableLinearImpl* layer : layers) outputs.push_back(layer->forward(x));
  return outputs;
}

EmbeddingImpl::EmbeddingImpl(int64_t vocab_size, int64_t dim, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({vocab_size, dim}, options),
                              /*requires_grad=*/false);
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) {
  return torch::embedding(weight, ids);
}

}  // namespace llm
