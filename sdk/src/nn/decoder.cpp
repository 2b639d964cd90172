#include "llm/nn/decoder.hpp"

#include "llm/nn/kv_cache.hpp"

namespace llm {

Json DecoderSpec::settings() const {
  return {{"intermediate_size", intermediate_size},
          {"rope_theta", rotary.theta},
          {"partial_rotary_factor", rotary.partial_rotary_factor},
          {"rotary_dim", rotary.rotary_dim},
          {"rope_type", rotary.scaling.type},
          {"rms_norm_eps", rms_norm_eps},
          {"hidden_act", hidden_act},
          {"qkv_bias", qkv_bias},
          {"output_bias", output_bias},
          {"mlp_bias", mlp_bias},
          {"tie_word_embeddings", tie_word_embeddings}};
}

DecoderAttentionImpl::DecoderAttentionImpl(const DecoderSpec& spec,
                                           const torch::TensorOptions& options)
    : heads_(spec.common.num_heads),
      kv_heads_(spec.common.num_kv_heads),
      head_dim_(spec.common.head_dim),
      rotary_(spec.rotary.rotary_dim, spec.rotary.theta, spec.common.max_position_embeddings,
              spec.rotary.scaling) {
  const int64_t hidden = spec.common.hidden_size;
  const bool bias = spec.qkv_bias;
  q_proj = register_module("q_proj", AdaptableLinear(hidden, heads_ * head_dim_, bias, options));
  k_proj = register_module("k_proj", AdaptableLinear(hidden, kv_heads_ * head_dim_, bias, options));
  v_proj = register_module("v_proj", AdaptableLinear(hidden, kv_heads_ * head_dim_, bias, options));
  o_proj = register_module("o_proj",
                           AdaptableLinear(heads_ * head_dim_, hidden, spec.output_bias, options));
}

torch::Tensor DecoderAttentionImpl::forward(const torch::Tensor& x, KVCache* cache, int64_t layer,
                                            const PackedSequences* packing) {
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
                        : packing ? packed_attention(q, k, v, *packing)
                                  : causal_attention(q, k, v);
  return o_proj(attended.transpose(1, 2).reshape({batch, tokens, heads_ * head_dim_}));
}

DecoderMlpImpl::DecoderMlpImpl(const DecoderSpec& spec, const torch::TensorOptions& options)
    : activation_(parse_activation(spec.hidden_act, spec.common.source)) {
  const bool bias = spec.mlp_bias;
  const int64_t hidden = spec.common.hidden_size;
  const int64_t inner = spec.intermediate_size;
  gate_proj = register_module("gate_proj", AdaptableLinear(hidden, inner, bias, options));
  up_proj = register_module("up_proj", AdaptableLinear(hidden, inner, bias, options));
  down_proj = register_module("down_proj", AdaptableLinear(inner, hidden, bias, options));
}

torch::Tensor DecoderMlpImpl::forward(const torch::Tensor& x) {
  return down_proj(gated_activation(activation_, gate_proj(x), up_proj(x)));
}

DecoderLayerImpl::DecoderLayerImpl(const DecoderSpec& spec, const torch::TensorOptions& options) {
  const int64_t hidden = spec.common.hidden_size;
  input_layernorm = register_module("input_layernorm", RMSNorm(hidden, spec.rms_norm_eps, options));
  self_attn = register_module("self_attn", DecoderAttention(spec, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(hidden, spec.rms_norm_eps, options));
  mlp = register_module("mlp", DecoderMlp(spec, options));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, KVCache* cache, int64_t layer,
                                        const PackedSequences* packing) {
  const auto h = x + self_attn(input_layernorm(x), cache, layer, packing);
  return h + mlp(post_attention_layernorm(h));
}

DecoderBackboneImpl::DecoderBackboneImpl(const DecoderSpec& spec,
                                         const torch::TensorOptions& options) {
  const auto& c = spec.common;
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, options));
  layer_list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    layers.emplace_back(spec, options);
    layer_list->push_back(layers.back());
  }
  norm = register_module("norm", RMSNorm(c.hidden_size, spec.rms_norm_eps, options));
}

DecoderForCausalLM::DecoderForCausalLM(DecoderSpec spec, const torch::TensorOptions& options)
    : spec_(std::move(spec)) {
  model_ = register_module("model", DecoderBackbone(spec_, options));
  lm_head_ = register_module("lm_head", AdaptableLinear(spec_.common.hidden_size,
                                                        spec_.common.vocab_size, false, options));
  // Tied: one storage under both names; the checkpoint then carries only the embedding.
  if (spec_.tie_word_embeddings) lm_head_->weight.set_data(model_->embed_tokens->weight);
}

torch::Tensor DecoderForCausalLM::hidden_states(const torch::Tensor& input_ids, KVCache* cache) {
  return run(input_ids, cache, nullptr);
}

torch::Tensor DecoderForCausalLM::packed_hidden_states(const torch::Tensor& input_ids,
                                                       const PackedSequences& packing) {
  return run(input_ids, nullptr, &packing);
}

torch::Tensor DecoderForCausalLM::run(const torch::Tensor& input_ids, KVCache* cache,
                                      const PackedSequences* packing) {
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

std::vector<ModelLinear> DecoderForCausalLM::adaptable_linears() {
  using Role = LinearRole;
  std::vector<ModelLinear> linears;
  for (size_t i = 0; i < model_->layers.size(); ++i) {
    const auto prefix = "model.layers." + std::to_string(i) + ".";
    const auto& attention = model_->layers[i]->self_attn;
    const auto& mlp = model_->layers[i]->mlp;
    linears.push_back(plain_linear(prefix + "self_attn.q_proj", attention->q_proj, Role::kQuery));
    linears.push_back(plain_linear(prefix + "self_attn.k_proj", attention->k_proj, Role::kKey));
    linears.push_back(plain_linear(prefix + "self_attn.v_proj", attention->v_proj, Role::kValue));
    linears.push_back(
        plain_linear(prefix + "self_attn.o_proj", attention->o_proj, Role::kAttentionOutput));
    linears.push_back(plain_linear(prefix + "mlp.gate_proj", mlp->gate_proj, Role::kMlpGate));
    linears.push_back(plain_linear(prefix + "mlp.up_proj", mlp->up_proj, Role::kMlpUp));
    linears.push_back(plain_linear(prefix + "mlp.down_proj", mlp->down_proj, Role::kMlpDown));
  }
  linears.push_back(plain_linear("lm_head", lm_head_, Role::kLmHead));
  return linears;
}

DecoderFamily::DecoderFamily(std::string name, std::vector<std::string> model_types,
                             std::vector<std::string> architectures, Reader read)
    : name_(std::move(name)),
      model_types_(std::move(model_types)),
      architectures_(std::move(architectures)),
      read_(std::move(read)) {}

void DecoderFamily::validate(const ModelConfig& config) const { read_(config); }

Json DecoderFamily::settings(const ModelConfig& config) const { return read_(config).settings(); }

std::shared_ptr<CausalLM> DecoderFamily::build(const ModelConfig& config,
                                               const torch::TensorOptions& options) const {
  return std::make_shared<DecoderForCausalLM>(read_(config), options);
}

}  // namespace llm
