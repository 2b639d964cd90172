#pragma once
#include <array>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

// LayerNorm with weight and bias (GPT-NeoX).
class LLM_API LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  torch::Tensor bias;
  double eps;
};
TORCH_MODULE(LayerNorm);

// RMSNorm computed in fp32 and cast back, as Hugging Face's LlamaRMSNorm does.
class LLM_API RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  // {forward(x), x}: x passed on for the block's residual sum. In training its gradient is added
  // to x's inside the norm's backward (no add of its own).
  std::array<torch::Tensor, 2> forward_passing_input(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

}  // namespace llm
