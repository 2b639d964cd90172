#include "gpt_neox_config.hpp"

#include "llm/error.hpp"
#include "llm/nn/activation.hpp"

namespace gpt_neox {
namespace {

const std::vector<std::string> kActivations = {"gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh",
                                               "relu", "silu"};

}  // namespace

GptNeoXConfig GptNeoXConfig::read(const llm::ModelConfig& common) {
  GptNeoXConfig c;
  static_cast<llm::ModelConfig&>(c) = common;
  const llm::Json& json = common.raw;
  const std::string& source = common.source;
  c.intermediate_size = llm::config_size(common, "intermediate_size");
  // The published names are the defaults of the transformers-5 ones.
  const double rotary_pct = llm::json_number_or(json, "rotary_pct", 0.25, source);
  if (!(rotary_pct > 0.0 && rotary_pct <= 1.0)) {
    throw llm::UserError(source + ": 'rotary_pct' (the rotary fraction) must be in (0, 1]");
  }
  const double rotary_emb_base = llm::json_number_or(json, "rotary_emb_base", 10000.0, source);
  c.rotary = llm::read_rotary_config(common, rotary_emb_base, rotary_pct);
  if (common.num_kv_heads != common.num_heads) {
    throw llm::UserError(source + ": gpt_neox has no grouped-query attention (" +
                         std::to_string(common.num_kv_heads) + " KV heads for " +
                         std::to_string(common.num_heads) + " heads)");
  }
  c.layer_norm_eps = llm::config_norm_eps(common, "layer_norm_eps", 1e-5);
  c.hidden_act = llm::json_string_or(json, "hidden_act", "gelu", source);
  llm::parse_activation(c.hidden_act, source, kActivations);
  c.use_parallel_residual = llm::json_bool_or(json, "use_parallel_residual", true, source);
  // GPT-NeoX always had biases on attention; transformers 5 writes it out as attention_bias.
  c.attention_bias = llm::json_bool_or(json, "attention_bias", true, source);
  c.tie_word_embeddings = llm::json_bool_or(json, "tie_word_embeddings", false, source);
  return c;
}

llm::Json GptNeoXConfig::settings() const {
  return {{"intermediate_size", intermediate_size},
          {"rope_theta", rotary.theta},
          {"partial_rotary_factor", rotary.partial_rotary_factor},
          {"rotary_dim", rotary.rotary_dim},
          {"rope_type", rotary.scaling.type},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_act", hidden_act},
          {"use_parallel_residual", use_parallel_residual},
          {"attention_bias", attention_bias},
          {"tie_word_embeddings", tie_word_embeddings}};
}

}  // namespace gpt_neox
