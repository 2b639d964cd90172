#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llama_config.hpp"
#include "llm/model.hpp"
#include "llm/nn/activation.hpp"
#include "llm/nn/attention.hpp"
#include "llm/nn/linear.hpp"
#include "llm/nn/norm.hpp"

namespace llama {

// Self-attention with separate q/k/v/o projections, grouped-query attention and full rotary.
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const LlamaConfig& config, const torch::TensorOptions& options);
  // packing: samples laid end to end in x's one row (no cache then), else nullptr.
  torch::Tensor forward(const torch::Tensor& x, llm::KVCache* cache, int64_t layer,
                        const llm::PackedSequences* packing = nullptr);

  llm::AdaptableLinear q_proj{nullptr};
  llm::AdaptableLinear k_proj{nullptr};
  llm::AdaptableLinear v_proj{nullptr};
  llm::AdaptableLinear o_proj{nullptr};

 private:
  int64_t heads_;
  int64_t kv_heads_;
  int64_t head_dim_;
  llm::RotaryEmbedding rotary_;
};
TORCH_MODULE(Attention);

// SwiGLU: down(act(gate(x)) * up(x)).
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const LlamaConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

  llm::AdaptableLinear gate_proj{nullptr};
  llm::AdaptableLinear up_proj{nullptr};
  llm::AdaptableLinear down_proj{nullptr};

 private:
  llm::Activation activation_;
};
TORCH_MODULE(Mlp);

class LayerImpl : public torch::nn::Module {
 public:
  LayerImpl(const LlamaConfig& config, const torch::TensorOptions& options);
  // packing: samples laid end to end in x's one row (no cache then), else nullptr.
  torch::Tensor forward(const torch::Tensor& x, llm::KVCache* cache, int64_t layer,
                        const llm::PackedSequences* packing = nullptr);

  llm::RMSNorm input_layernorm{nullptr};
  Attention self_attn{nullptr};
  llm::RMSNorm post_attention_layernorm{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Layer);

// LlamaModel: embeddings, layers, final norm (module "model").
class BackboneImpl : public torch::nn::Module {
 public:
  BackboneImpl(const LlamaConfig& config, const torch::TensorOptions& options);

  llm::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layer_list{nullptr};  // registered as "layers" -> "layers.<i>.*"
  std::vector<Layer> layers;
  llm::RMSNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

// LlamaForCausalLM, with parameters under the checkpoint's names.
class LlamaForCausalLM : public llm::CausalLM {
 public:
  LlamaForCausalLM(LlamaConfig config, const torch::TensorOptions& options);

  torch::Tensor hidden_states(const torch::Tensor& input_ids, llm::KVCache* cache) override;
  torch::Tensor packed_hidden_states(const torch::Tensor& input_ids,
                                     const llm::PackedSequences& packing) override;
  llm::AdaptableLinear& output_head() override { return lm_head_; }
  const llm::ModelConfig& config() const override { return config_; }
  std::vector<llm::ModelLinear> adaptable_linears() override;

 private:
  torch::Tensor run(const torch::Tensor& input_ids, llm::KVCache* cache,
                    const llm::PackedSequences* packing);

  LlamaConfig config_;
  Backbone model_{nullptr};
  llm::AdaptableLinear lm_head_{nullptr};
};

class LlamaFamily : public llm::ModelFamily {
 public:
  std::string name() const override { return "llama"; }
  std::vector<std::string> model_types() const override { return {"llama"}; }
  std::vector<std::string> architectures() const override { return {"LlamaForCausalLM"}; }
  void validate(const llm::ModelConfig& config) const override;
  llm::Json settings(const llm::ModelConfig& config) const override;
  std::shared_ptr<llm::CausalLM> build(const llm::ModelConfig& config,
                                       const torch::TensorOptions& options) const override;
};

}  // namespace llama
