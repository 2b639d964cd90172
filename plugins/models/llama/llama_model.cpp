#include "llama_model.hpp"

#include <string>

#include "llm/error.hpp"

namespace llama {

AttentionImpl::AttentionImpl(const LlamaConfig& config, const torch::TensorOptions& options)
    : heads_(config.num_heads),
      kv_heads_(config.num_kv_heads),
      head_dim_(config.head_dim),
      rotary_(config.rotary.rotary_dim, config.rotary.theta, config.max_position_embeddings,
              config.rotary.scaling) {
  const bool bias = config.attention_bias;
  const int64_t hidden = config.hidden_size;
  q_proj =
      register_module("q_proj", llm::AdaptableLinear(hidden, heads_ * head_dim_, bias, options));
  k_proj =
      register_module("k_proj", llm::AdaptableLinear(hidden, kv_heads_ * head_dim_, bias, options));
  v_proj =
      register_module("v_proj", llm::AdaptableLinear(hidden, kv_heads_ * head_dim_, bias, options));
  o_proj =
      register_module("o_proj", llm::AdaptableLinear(heads_ * head_dim_, hidden, bias, options));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, llm::KVCache* cache, int64_t layer,
                                     const llm::PackedSequences* packing) {
  const int64_t batch = x.size(0);
  const int64_t tokens = x.size(1);
  const auto heads_first = [&](const torch::Tensor& t, int64_t heads) {
    return t.view({batch, tokens, heads, head_dim_}).transpose(1, 2);
  };
  const auto rotate = [&](const torch::Tensor& t) {
    return packing ? rotary_.apply_packed(t, *packing) : rotary_.apply_with_cache(t, cache);
  };
  const auto q = rotate(heads_first(q_proj(x), heads_));
  const auto k = rotate(heads_first(k_proj(x), kv_heads_));
  const auto v = heads_first(v_proj(x), kv_heads_);
  const auto attended = cache     ? cache->attend(layer, q, k, v)
                        : packing ? llm::packed_attention(q, k, v, *packing)
                                  : llm::causal_attention(q, k, v);
  return o_proj(attended.transpose(1, 2).reshape({batch, tokens, heads_ * head_dim_}));
}

MlpImpl::MlpImpl(const LlamaConfig& config, const torch::TensorOptions& options)
    : activation_(llm::parse_activation(config.hidden_act, config.source)) {
  const bool bias = config.mlp_bias;
  const int64_t hidden = config.hidden_size;
  const int64_t inner = config.intermediate_size;
  gate_proj = register_module("gate_proj", llm::AdaptableLinear(hidden, inner, bias, options));
  up_proj = register_module("up_proj", llm::AdaptableLinear(hidden, inner, bias, options));
  down_proj = register_module("down_proj", llm::AdaptableLinear(inner, hidden, bias, options));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return down_proj(llm::gated_activation(activation_, gate_proj(x), up_proj(x)));
}

LayerImpl::LayerImpl(const LlamaConfig& config, const torch::TensorOptions& options) {
  input_layernorm = register_module("input_layernorm",
                                    llm::RMSNorm(config.hidden_size, config.rms_norm_eps, options));
  self_attn = register_module("self_attn", Attention(config, options));
  post_attention_layernorm = register_module(
      "post_attention_layernorm", llm::RMSNorm(config.hidden_size, config.rms_norm_eps, options));
  mlp = register_module("mlp", Mlp(config, options));
}

torch::Tensor LayerImpl::forward(const torch::Tensor& x, llm::KVCache* cache, int64_t layer,
                                 const llm::PackedSequences* packing) {
  const auto h = x + self_attn(input_layernorm(x), cache, layer, packing);
  return h + mlp(post_attention_layernorm(h));
}

BackboneImpl::BackboneImpl(const LlamaConfig& config, const torch::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens",
                                 llm::Embedding(config.vocab_size, config.hidden_size, options));
  layer_list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) {
    layers.emplace_back(config, options);
    layer_list->push_back(layers.back());
  }
  norm = register_module("norm", llm::RMSNorm(config.hidden_size, config.rms_norm_eps, options));
}

LlamaForCausalLM::LlamaForCausalLM(LlamaConfig config, const torch::TensorOptions& options)
    : config_(std::move(config)) {
  model_ = register_module("model", Backbone(config_, options));
  lm_head_ = register_module(
      "lm_head", llm::AdaptableLinear(config_.hidden_size, config_.vocab_size, false, options));
  // Tied: one storage under both names; the checkpoint then carries only the embedding.
  if (config_.tie_word_embeddings) lm_head_->weight.set_data(model_->embed_tokens->weight);
}

torch::Tensor LlamaForCausalLM::hidden_states(const torch::Tensor& input_ids, llm::KVCache* cache) {
  return run(input_ids, cache, nullptr);
}

torch::Tensor LlamaForCausalLM::packed_hidden_states(const torch::Tensor& input_ids,
                                                     const llm::PackedSequences& packing) {
  return run(input_ids, nullptr, &packing);
}

torch::Tensor LlamaForCausalLM::run(const torch::Tensor& input_ids, llm::KVCache* cache,
                                    const llm::PackedSequences* packing) {
  auto x = model_->embed_tokens(input_ids);
  for (size_t i = 0; i < model_->layers.size(); ++i) {
    auto& layer = model_->layers[i];
    x = run_block(*layer, x, cache, [layer, cache, i, packing](const torch::Tensor& h) mutable {
      return layer(h, cache, static_cast<int64_t>(i), packing);
    });
  }
  if (cache) cache->advance(input_ids.size(1));
  return model_->norm(x);
}

std::vector<llm::ModelLinear> LlamaForCausalLM::adaptable_linears() {
  using Role = llm::LinearRole;
  std::vector<llm::ModelLinear> linears;
  for (size_t i = 0; i < model_->layers.size(); ++i) {
    const auto prefix = "model.layers." + std::to_string(i) + ".";
    const auto& attention = model_->layers[i]->self_attn;
    const auto& mlp = model_->layers[i]->mlp;
    linears.push_back(
        llm::plain_linear(prefix + "self_attn.q_proj", attention->q_proj, Role::kQuery));
    linears.push_back(
        llm::plain_linear(prefix + "self_attn.k_proj", attention->k_proj, Role::kKey));
    linears.push_back(
        llm::plain_linear(prefix + "self_attn.v_proj", attention->v_proj, Role::kValue));
    linears.push_back(
        llm::plain_linear(prefix + "self_attn.o_proj", attention->o_proj, Role::kAttentionOutput));
    linears.push_back(llm::plain_linear(prefix + "mlp.gate_proj", mlp->gate_proj, Role::kMlpGate));
    linears.push_back(llm::plain_linear(prefix + "mlp.up_proj", mlp->up_proj, Role::kMlpUp));
    linears.push_back(llm::plain_linear(prefix + "mlp.down_proj", mlp->down_proj, Role::kMlpDown));
  }
  linears.push_back(llm::plain_linear("lm_head", lm_head_, Role::kLmHead));
  return linears;
}

void LlamaFamily::validate(const llm::ModelConfig& config) const { LlamaConfig::read(config); }

llm::Json LlamaFamily::settings(const llm::ModelConfig& config) const {
  return LlamaConfig::read(config).settings();
}

std::shared_ptr<llm::CausalLM> LlamaFamily::build(const llm::ModelConfig& config,
                                                  const torch::TensorOptions& options) const {
  return std::make_shared<LlamaForCausalLM>(LlamaConfig::read(config), options);
}

}  // namespace llama
