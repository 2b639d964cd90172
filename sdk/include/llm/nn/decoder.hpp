#pragma once
// The decoder layout most Hugging Face families share, so such a family's plugin is only how it
// reads config.json (into a DecoderSpec) plus its registration:
//   model.embed_tokens
//   model.layers.<i>.input_layernorm            RMSNorm
//   model.layers.<i>.self_attn.{q,k,v,o}_proj   grouped-query attention, rotary
//   model.layers.<i>.post_attention_layernorm   RMSNorm
//   model.layers.<i>.mlp.{gate,up,down}_proj    down(act(gate(x)) * up(x))
//   model.norm, lm_head                         (lm_head shares the embedding when tied)
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llm/export.hpp"
#include "llm/json_file.hpp"
#include "llm/model.hpp"
#include "llm/model_config.hpp"
#include "llm/nn/activation.hpp"
#include "llm/nn/attention.hpp"
#include "llm/nn/causal_decoder.hpp"
#include "llm/nn/linear.hpp"
#include "llm/nn/norm.hpp"

namespace llm {

// Everything the layout leaves to a family, as the family read it from config.json.
struct LLM_API DecoderSpec {
  ModelConfig common;
  int64_t intermediate_size = 0;
  RotaryConfig rotary;
  double rms_norm_eps = 1e-6;
  std::string hidden_act = "silu";
  bool qkv_bias = false;     // q_proj, k_proj, v_proj
  bool output_bias = false;  // o_proj
  bool mlp_bias = false;
  bool tie_word_embeddings = false;  // the checkpoint then has no lm_head.weight

  Json settings() const;  // the family-read fields, for ModelFamily::settings
};

class LLM_API DecoderAttentionImpl : public torch::nn::Module {
 public:
  DecoderAttentionImpl(const DecoderSpec& spec, const torch::TensorOptions& options);
  // packing: samples laid end to end in x's one row (no cache then), else nullptr.
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache, int64_t layer,
                        const PackedSequences* packing = nullptr);
  // residual + forward(x, ...), the residual added by the output projection (forward_onto).
  torch::Tensor forward_onto(const torch::Tensor& residual, const torch::Tensor& x, KVCache* cache,
                             int64_t layer, const PackedSequences* packing);

  AdaptableLinear q_proj{nullptr};
  AdaptableLinear k_proj{nullptr};
  AdaptableLinear v_proj{nullptr};
  AdaptableLinear o_proj{nullptr};

 private:
  // The heads attended, [batch, tokens, heads * head_dim]: o_proj's input.
  torch::Tensor attend(const torch::Tensor& x, KVCache* cache, int64_t layer,
                       const PackedSequences* packing);

  int64_t heads_;
  int64_t kv_heads_;
  int64_t head_dim_;
  RotaryEmbedding rotary_;
};
TORCH_MODULE(DecoderAttention);

class LLM_API DecoderMlpImpl : public torch::nn::Module {
 public:
  DecoderMlpImpl(const DecoderSpec& spec, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  // residual + forward(x), the residual added by the down projection (forward_onto).
  torch::Tensor forward_onto(const torch::Tensor& residual, const torch::Tensor& x);

  AdaptableLinear gate_proj{nullptr};
  AdaptableLinear up_proj{nullptr};
  AdaptableLinear down_proj{nullptr};

 private:
  torch::Tensor gated(const torch::Tensor& x);  // act(gate_proj(x)) * up_proj(x)
  Activation activation_;
};
TORCH_MODULE(DecoderMlp);

// One block: h = x + self_attn(input_layernorm(x)); out = h + mlp(post_attention_layernorm(h)).
class LLM_API DecoderLayer : public DecoderBlock {
 public:
  DecoderLayer(const DecoderSpec& spec, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache, int64_t layer,
                        const PackedSequences* packing) override;
  std::vector<ModelLinear> linears(const std::string& prefix) override;

  RMSNorm input_layernorm{nullptr};
  DecoderAttention self_attn{nullptr};
  RMSNorm post_attention_layernorm{nullptr};
  DecoderMlp mlp{nullptr};
};

// The causal LM of this layout on the shared shell (llm/nn/causal_decoder.hpp), with parameters
// under the checkpoint's names and every linear layer's role declared.
LLM_API std::shared_ptr<CausalDecoder> make_decoder_lm(const DecoderSpec& spec,
                                                       const torch::TensorOptions& options);

// A family of this layout: its names, and how it reads config.json into a DecoderSpec (defaults,
// legacy keys, validation; UserError naming config.json and the key). validate, settings and build
// all go through `read`.
class LLM_API DecoderFamily : public ModelFamily {
 public:
  using Reader = std::function<DecoderSpec(const ModelConfig&)>;
  DecoderFamily(std::string name, std::vector<std::string> model_types,
                std::vector<std::string> architectures, Reader read);

  std::string name() const override { return name_; }
  std::vector<std::string> model_types() const override { return model_types_; }
  std::vector<std::string> architectures() const override { return architectures_; }
  void validate(const ModelConfig& config) const override;
  Json settings(const ModelConfig& config) const override;
  std::shared_ptr<CausalLM> build(const ModelConfig& config,
                                  const torch::TensorOptions& options) const override;

 private:
  std::string name_;
  std::vector<std::string> model_types_;
  std::vector<std::string> architectures_;
  Reader read_;
};

}  // namespace llm
