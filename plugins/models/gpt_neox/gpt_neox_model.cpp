#include "gpt_neox_model.hpp"

#include <string>

#include "llm/error.hpp"
#include "llm/nn/parallel_block.hpp"

namespace gpt_neox {

AttentionImpl::AttentionImpl(const GptNeoXConfig& config, const torch::TensorOptions& options)
    : heads_(config.num_heads),
      head_dim_(config.head_dim),
      rotary_(config.rotary.rotary_dim, config.rotary.theta, config.max_position_embeddings,
              config.rotary.scaling) {
  const bool bias = config.attention_bias;
  const int64_t width = heads_ * head_dim_;
  query_key_value = register_module(
      "query_key_value", llm::AdaptableLinear(config.hidden_size, 3 * width, bias, options));
  dense = register_module("dense", llm::AdaptableLinear(width, config.hidden_size, bias, options));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, llm::KVCache* cache, int64_t layer,
                                     const llm::PackedSequences* packing) {
  const int64_t batch = x.size(0);
  const int64_t tokens = x.size(1);
  const auto [q, k, v] = rotary_.split_interleaved_qkv(query_key_value(x), heads_, cache, packing);
  const auto attended = cache     ? cache->attend(layer, q, k, v)
                        : packing ? llm::packed_attention(q, k, v, *packing)
                                  : llm::causal_attention(q, k, v);
  return dense(attended.transpose(1, 2).reshape({batch, tokens, heads_ * head_dim_}));
}

MlpImpl::MlpImpl(const GptNeoXConfig& config, const torch::TensorOptions& options)
    : activation_(llm::parse_activation(config.hidden_act, config.source)) {
  dense_h_to_4h = register_module(
      "dense_h_to_4h",
      llm::AdaptableLinear(config.hidden_size, config.intermediate_size, true, options));
  dense_4h_to_h = register_module(
      "dense_4h_to_h",
      llm::AdaptableLinear(config.intermediate_size, config.hidden_size, true, options));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return dense_4h_to_h(llm::apply_activation(activation_, dense_h_to_4h(x)));
}

Layer::Layer(const GptNeoXConfig& config, const torch::TensorOptions& options)
    : parallel_residual_(config.use_parallel_residual),
      heads_(config.num_heads),
      head_dim_(config.head_dim) {
  input_layernorm = register_module(
      "input_layernorm", llm::LayerNorm(config.hidden_size, config.layer_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm",
                      llm::LayerNorm(config.hidden_size, config.layer_norm_eps, options));
  attention = register_module("attention", Attention(config, options));
  mlp = register_module("mlp", Mlp(config, options));
}

torch::Tensor Layer::forward(const torch::Tensor& x, llm::KVCache* cache, int64_t layer,
                             const llm::PackedSequences* packing) {
  if (parallel_residual_) {
    // x + attn(ln1(x)) + mlp(ln2(x)), summed in Hugging Face's order; both norms of x in one pass.
    const auto in = llm::parallel_block_inputs(x, *input_layernorm, *post_attention_layernorm);
    const auto attended = attention(in.first, cache, layer, packing);
    return llm::add_three(mlp(in.second), attended, in.residual);
  }
  const auto attended = attention(input_layernorm(x), cache, layer, packing);
  const auto h = attended + x;
  return mlp(post_attention_layernorm(h)) + h;
}

std::vector<llm::ModelLinear> Layer::linears(const std::string& prefix) {
  using Role = llm::LinearRole;
  // query_key_value's rows per head are [q, k, v], head_dim each (AttentionImpl::forward).
  const int64_t d = head_dim_;
  const auto fused_part = [&](Role role, int64_t index) {
    return llm::LinearPart{role, index * d, d, heads_, 3 * d};
  };
  return {{prefix + "attention.query_key_value",
           attention->query_key_value,
           {fused_part(Role::kQuery, 0), fused_part(Role::kKey, 1), fused_part(Role::kValue, 2)}},
          llm::plain_linear(prefix + "attention.dense", attention->dense, Role::kAttentionOutput),
          llm::plain_linear(prefix + "mlp.dense_h_to_4h", mlp->dense_h_to_4h, Role::kMlpUp),
          llm::plain_linear(prefix + "mlp.dense_4h_to_h", mlp->dense_4h_to_h, Role::kMlpDown)};
}

void GPTNeoXFamily::validate(const llm::ModelConfig& config) const { GptNeoXConfig::read(config); }

llm::Json GPTNeoXFamily::settings(const llm::ModelConfig& config) const {
  return GptNeoXConfig::read(config).settings();
}

std::shared_ptr<llm::CausalLM> GPTNeoXFamily::build(const llm::ModelConfig& config,
                                                    const torch::TensorOptions& options) const {
  const auto neox = GptNeoXConfig::read(config);
  llm::DecoderParts parts;
  parts.names = {"gpt_neox", "embed_in", "layers", "final_layer_norm", "embed_out"};
  parts.make_block = [&neox, &options](int64_t) { return std::make_shared<Layer>(neox, options); };
  parts.make_final_norm = [&neox, &options] {
    return torch::nn::AnyModule(llm::LayerNorm(neox.hidden_size, neox.layer_norm_eps, options));
  };
  parts.tie_word_embeddings = neox.tie_word_embeddings;
  return std::make_shared<llm::CausalDecoder>(neox, parts, options);
}

}  // namespace gpt_neox
