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
  return o_proj(attend(x, cache, layer, packing));
}

torch::Tensor DecoderAttentionImpl::forward_onto(const torch::Tensor& residual,
                                                 const torch::Tensor& x, KVCache* cache,
                                                 int64_t layer, const PackedSequences* packing) {
  return o_proj->forward_onto(residual, attend(x, cache, layer, packing));
}

torch::Tensor DecoderAttentionImpl::attend(const torch::Tensor& x, KVCache* cache, int64_t layer,
                                           const PackedSequences* packing) {
  const int64_t batch = x.size(0);
  const int64_t tokens = x.size(1);
  const auto heads_first = [&](const torch::Tensor& t, int64_t heads) {
    return t.view({batch, tokens, heads, head_dim_}).transpose(1, 2);
  };
  const auto rotate = [&](const torch::Tensor& t) {
    return packing ? rotary_.apply_packed(t, *packing) : rotary_.apply_with_cache(t, cache);
  };
  const auto qkv = forward_shared_input(x, {q_proj.get(), k_proj.get(), v_proj.get()});
  const auto q = rotate(heads_first(qkv[0], heads_));
  const auto k = rotate(heads_first(qkv[1], kv_heads_));
  const auto v = heads_first(qkv[2], kv_heads_);
  const auto attended = cache     ? cache->attend(layer, q, k, v)
                        : packing ? packed_attention(q, k, v, *packing)
                                  : causal_attention(q, k, v);
  return attended.transpose(1, 2).reshape({batch, tokens, heads_ * head_dim_});
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

torch::Tensor DecoderMlpImpl::forward(const torch::Tensor& x) { return down_proj(gated(x)); }

torch::Tensor DecoderMlpImpl::forward_onto(const torch::Tensor& residual, const torch::Tensor& x) {
  return down_proj->forward_onto(residual, gated(x));
}

torch::Tensor DecoderMlpImpl::gated(const torch::Tensor& x) {
  const auto gate_up = forward_shared_input(x, {gate_proj.get(), up_proj.get()});
  return gated_activation(activation_, gate_up[0], gate_up[1]);
}

DecoderLayer::DecoderLayer(const DecoderSpec& spec, const torch::TensorOptions& options) {
  const int64_t hidden = spec.common.hidden_size;
  input_layernorm = register_module("input_layernorm", RMSNorm(hidden, spec.rms_norm_eps, options));
  self_attn = register_module("self_attn", DecoderAttention(spec, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(hidden, spec.rms_norm_eps, options));
  mlp = register_module("mlp", DecoderMlp(spec, options));
}

torch::Tensor DecoderLayer::forward(const torch::Tensor& x, KVCache* cache, int64_t layer,
                                    const PackedSequences* packing) {
  // Each norm passes its input on for the residual sum, so the residual's gradient joins the
  // norm's in its backward kernel; the output projections add the residual in their epilogues.
  const auto [x_normed, x_residual] = input_layernorm->forward_passing_input(x);
  const auto h = self_attn->forward_onto(x_residual, x_normed, cache, layer, packing);
  const auto [h_normed, h_residual] = post_attention_layernorm->forward_passing_input(h);
  return mlp->forward_onto(h_residual, h_normed);
}

std::vector<ModelLinear> DecoderLayer::linears(const std::string& prefix) {
  using Role = LinearRole;
  return {plain_linear(prefix + "self_attn.q_proj", self_attn->q_proj, Role::kQuery),
          plain_linear(prefix + "self_attn.k_proj", self_attn->k_proj, Role::kKey),
          plain_linear(prefix + "self_attn.v_proj", self_attn->v_proj, Role::kValue),
          plain_linear(prefix + "self_attn.o_proj", self_attn->o_proj, Role::kAttentionOutput),
          plain_linear(prefix + "mlp.gate_proj", mlp->gate_proj, Role::kMlpGate),
          plain_linear(prefix + "mlp.up_proj", mlp->up_proj, Role::kMlpUp),
          plain_linear(prefix + "mlp.down_proj", mlp->down_proj, Role::kMlpDown)};
}

std::shared_ptr<CausalDecoder> make_decoder_lm(const DecoderSpec& spec,
                                               const torch::TensorOptions& options) {
  DecoderParts parts;
  parts.names = {"model", "embed_tokens", "layers", "norm", "lm_head"};
  parts.make_block = [&spec, &options](int64_t) {
    return std::make_shared<DecoderLayer>(spec, options);
  };
  parts.make_final_norm = [&spec, &options] {
    return torch::nn::AnyModule(RMSNorm(spec.common.hidden_size, spec.rms_norm_eps, options));
  };
  parts.tie_word_embeddings = spec.tie_word_embeddings;
  return std::make_shared<CausalDecoder>(spec.common, parts, options);
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
  return make_decoder_lm(read_(config), options);
}

}  // namespace llm
