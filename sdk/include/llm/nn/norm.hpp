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

// {first(x), second(x)}: the two norms of one input in a parallel-residual block (GPT-NeoX's
// input_layernorm and post_attention_layernorm). On CUDA, frozen weights, one kernel each way
// reads x once for both, and backward gives x's gradient through both as one tensor.
LLM_API std::array<torch::Tensor, 2> layer_norm_pair(const torch::Tensor& x,
                                                     const LayerNormImpl& first,
                                                     const LayerNormImpl& second);

// RMSNorm computed in fp32 and cast back, as Hugging Face's LlamaRMSNorm does.
class LLM_API RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

}  // namespace llm
