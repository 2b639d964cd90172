#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gpt_neox_config.hpp"
#include "llm/model.hpp"
#include "llm/nn/activation.hpp"
#include "llm/nn/attention.hpp"
#include "llm/nn/causal_decoder.hpp"
#include "llm/nn/linear.hpp"
#include "llm/nn/norm.hpp"

namespace gpt_neox {

// Self-attention with a fused query_key_value projection whose rows are laid out per head as
// [heads, (q, k, v), head_dim], and partial rotary embedding.
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const GptNeoXConfig& config, const torch::TensorOptions& options);
  // packing: samples laid end to end in x's one row (no cache then), else nullptr.
  torch::Tensor forward(const torch::Tensor& x, llm::KVCache* cache, int64_t layer,
                        const llm::PackedSequences* packing = nullptr);

  llm::AdaptableLinear query_key_value{nullptr};
  llm::AdaptableLinear dense{nullptr};

 private:
  int64_t heads_;
  int64_t head_dim_;
  llm::RotaryEmbedding rotary_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const GptNeoXConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

  llm::AdaptableLinear dense_h_to_4h{nullptr};
  llm::AdaptableLinear dense_4h_to_h{nullptr};

 private:
  llm::Activation activation_;
};
TORCH_MODULE(Mlp);

// One block: x + attention(ln1(x)) + mlp(ln2(x)) with the parallel residual, else sequential.
class Layer : public llm::DecoderBlock {
 public:
  Layer(const GptNeoXConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, llm::KVCache* cache, int64_t layer,
                        const llm::PackedSequences* packing) override;
  std::vector<llm::ModelLinear> linears(const std::string& prefix) override;

  llm::LayerNorm input_layernorm{nullptr};
  llm::LayerNorm post_attention_layernorm{nullptr};
  Attention attention{nullptr};
  Mlp mlp{nullptr};

 private:
  bool parallel_residual_;
  int64_t heads_;
  int64_t head_dim_;
};

class GPTNeoXFamily : public llm::ModelFamily {
 public:
  std::string name() const override { return "gpt_neox"; }
  std::vector<std::string> model_types() const override { return {"gpt_neox"}; }
  std::vector<std::string> architectures() const override { return {"GPTNeoXForCausalLM"}; }
  void validate(const llm::ModelConfig& config) const override;
  llm::Json settings(const llm::ModelConfig& config) const override;
  std::shared_ptr<llm::CausalLM> build(const llm::ModelConfig& config,
                                       const torch::TensorOptions& options) const override;
};

}  // namespace gpt_neox
