#pragma once
#include <string>

#include <torch/torch.h>

#include "llm/nn/linear.hpp"

namespace llm_lora {

struct LoraShape {
  int64_t in_features = 0;
  int64_t out_features = 0;
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0.05;
  bool rslora = false;  // scaling alpha / sqrt(r) instead of alpha / r
};

// delta(x) = dropout(x) A^T (B * row_mask)^T * scaling, computed in fp32 whatever x's dtype.
// row_mask (fp32 [out], optional) switches off rows of a fused matrix (the key rows of a q+v
// adapter on GPT-NeoX's query_key_value): their B rows get zero gradient and stay exactly zero.
class LoraLinear final : public llm::LinearAdapter {
 public:
  LoraLinear(const LoraShape& shape, const torch::Device& device, torch::Tensor row_mask);
  torch::Tensor delta(const torch::Tensor& x) override;
  torch::Tensor add_to(const torch::Tensor& x, const torch::Tensor& y) override;
  torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& weight,
                      const torch::Tensor& bias) override;
  c10::optional<llm::LowRankFactors> low_rank_factors() override;

  torch::Tensor effective_B() const;  // B with masked rows zeroed: what is saved and merged
  double scaling() const { return scaling_; }
  const LoraShape& shape() const { return shape_; }

  torch::Tensor lora_A;  // [r, in], kaiming-uniform(a = sqrt(5)) like PEFT
  torch::Tensor lora_B;  // [out, r], zeros

 private:
  double dropout() const { return is_training() ? shape_.dropout : 0.0; }

  LoraShape shape_;
  double scaling_;
  torch::Tensor row_mask_;
};

}  // namespace llm_lora
