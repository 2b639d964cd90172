#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"
#include "llm/nn/low_rank.hpp"

namespace llm {

// What an adapter (LoRA, ...) adds to a frozen linear layer's output.
class LLM_API LinearAdapter : public torch::nn::Module {
 public:
  ~LinearAdapter() override;
  // x [..., in] -> delta [..., out], added to x W^T + b.
  virtual torch::Tensor delta(const torch::Tensor& x) = 0;
  // y + delta(x) for the frozen layer's output y (in y's dtype). Adapters override it where the
  // sum fuses with the update (llm::low_rank_update); the default adds delta(x).
  virtual torch::Tensor add_to(const torch::Tensor& x, const torch::Tensor& y);
  // The whole layer's output x W^T + b + delta(x) over a plain frozen weight (bias may be
  // undefined). Adapters override it where the base product fuses with the update
  // (llm::low_rank_linear: x's gradient is one tensor, dy W with the update's added in place); the
  // default is add_to(x, linear(x, weight, bias)).
  virtual torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias);
  // The update in low-rank form, for products the SDK fuses over several layers that share one
  // input (llm::shared_input_linears); none (the default) where the adapter has no such form, and
  // such layers then run one by one.
  virtual c10::optional<LowRankFactors> low_rank_factors();
};

// A frozen weight kept compressed (NF4, ...) and expanded where it is used.
class LLM_API CompressedWeight : public torch::nn::Module {
 public:
  ~CompressedWeight() override;
  // x W^T in x's dtype; backward expands W again instead of keeping it.
  virtual torch::Tensor linear(const torch::Tensor& x) = 0;
  virtual torch::Tensor expand(torch::ScalarType dtype) = 0;  // W [out, in]
  virtual std::string scheme() const = 0;                     // "nf4"
};

// A linear layer (Hugging Face names: `weight` [out, in], optional `bias` [out]) with one adapter
// slot. Parameters are allocated uninitialised with the given options, so building a 7B model does
// not initialise 7B parameters that the checkpoint overwrites anyway.
class LLM_API AdaptableLinearImpl : public torch::nn::Module {
 public:
  AdaptableLinearImpl(int64_t in_features, int64_t out_features, bool bias,
                      const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  // residual + forward(x). In training on CUDA, without adapter, compressed weight or bias, the
  // product's epilogue adds the residual: the residual stream's add is no pass of its own.
  torch::Tensor forward_onto(const torch::Tensor& residual, const torch::Tensor& x);

  // Registers the adapter as submodule `name` (its parameters appear under this layer's name).
  void set_adapter(std::shared_ptr<LinearAdapter> adapter, const std::string& name);
  void clear_adapter();
  const std::shared_ptr<LinearAdapter>& adapter() const { return adapter_; }

  // Replaces the `weight` parameter by a compressed form (submodule `name`); `weight` is then
  // undefined. expand_weight() brings a plain `weight` back (in `dtype`), e.g. to merge into it.
  void set_compressed_weight(std::shared_ptr<CompressedWeight> compressed, const std::string& name);
  void expand_weight(torch::ScalarType dtype);
  const std::shared_ptr<CompressedWeight>& compressed_weight() const { return compressed_; }

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  torch::Tensor weight;
  torch::Tensor bias;  // undefined when the layer has none

 private:
  int64_t in_features_;
  int64_t out_features_;
  std::shared_ptr<LinearAdapter> adapter_;
  std::string adapter_name_;
  std::shared_ptr<CompressedWeight> compressed_;
  std::string compressed_name_;
};
TORCH_MODULE(AdaptableLinear);

// forward(x) of each layer over the same x (q, k and v; gate and up). Where every layer is a plain
// frozen product (no bias or compressed weight) whose adapter, if any, has a low-rank form, they
// go through llm::shared_input_linears (one autograd node in training on CUDA); else one by one.
LLM_API std::vector<torch::Tensor> forward_shared_input(
    const torch::Tensor& x, std::initializer_list<AdaptableLinearImpl*> layers);

// Token embedding with Hugging Face's `weight` [vocab, hidden].
class LLM_API EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t vocab_size, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

}  // namespace llm
