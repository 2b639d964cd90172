#include "lora_linear.hpp"

#include <cmath>

#include "llm/nn/low_rank.hpp"

namespace llm_lora {

LoraLinear::LoraLinear(const LoraShape& shape, const torch::Device& device, torch::Tensor row_mask)
    : shape_(shape),
      scaling_(shape.rslora ? shape.alpha / std::sqrt(static_cast<double>(shape.r))
                            : shape.alpha / static_cast<double>(shape.r)),
      row_mask_(std::move(row_mask)) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device);
  lora_A = register_parameter("lora_A", torch::empty({shape.r, shape.in_features}, options));
  lora_B = register_parameter("lora_B", torch::zeros({shape.out_features, shape.r}, options));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(lora_A, std::sqrt(5.0));
  if (row_mask_.defined()) row_mask_ = register_buffer("row_mask", row_mask_.to(options));
}

torch::Tensor LoraLinear::effective_B() const {
  return row_mask_.defined() ? lora_B * row_mask_.unsqueeze(1) : lora_B;
}

torch::Tensor LoraLinear::delta(const torch::Tensor& x) {
  return llm::low_rank_delta(x, lora_A, effective_B(), scaling_, dropout());
}

torch::Tensor LoraLinear::add_to(const torch::Tensor& x, const torch::Tensor& y) {
  return llm::low_rank_update(x, y, lora_A, effective_B(), scaling_, dropout());
}

torch::Tensor LoraLinear::apply(const torch::Tensor& x, const torch::Tensor& weight,
                                const torch::Tensor& bias) {
  return llm::low_rank_linear(x, weight, bias, lora_A, effective_B(), scaling_, dropout());
}

c10::optional<llm::LowRankFactors> LoraLinear::low_rank_factors() {
  return llm::LowRankFactors{lora_A, effective_B(), scaling_, dropout()};
}

}  // namespace llm_lora
