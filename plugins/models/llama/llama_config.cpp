#include "llama_config.hpp"

#include "llm/error.hpp"
#include "llm/nn/activation.hpp"

namespace llama {
namespace {

const std::vector<std::string> kActivations = {
    "silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu"};

}  // namespace

LlamaConfig LlamaConfig::read(const llm::ModelConfig& common) {
  LlamaConfig c;
  static_cast<llm::ModelConfig&>(c) = common;
  const llm::Json& json = common.raw;
  const std::string& source = common.source;
  c.intermediate_size = llm::config_size(common, "intermediate_size");
  c.rotary = llm::read_rotary_config(common, 10000.0, 1.0);
  // Llama 3.1+ checkpoints scale RoPE frequencies ("llama3"); other scalings are refused.
  if (c.rotary.scaling.type != "default" && c.rotary.scaling.type != "llama3") {
    throw llm::UserError(source + ": rope type '" + c.rotary.scaling.type +
                         "' is not supported by llama (expected 'default' or 'llama3')");
  }
  if (c.rotary.rotary_dim != c.head_dim) {
    throw llm::UserError(source + ": llama rotates the whole head (rotary dimension " +
                         std::to_string(c.rotary.rotary_dim) + ", head_dim " +
                         std::to_string(c.head_dim) + ")");
  }
  c.rms_norm_eps = llm::config_norm_eps(common, "rms_norm_eps", 1e-6);
  c.hidden_act = llm::json_string_or(json, "hidden_act", "silu", source);
  llm::parse_activation(c.hidden_act, source, kActivations);
  c.attention_bias = llm::json_bool_or(json, "attention_bias", false, source);
  c.mlp_bias = llm::json_bool_or(json, "mlp_bias", false, source);
  c.tie_word_embeddings = llm::json_bool_or(json, "tie_word_embeddings", false, source);
  return c;
}

llm::Json LlamaConfig::settings() const {
  return {{"intermediate_size", intermediate_size},
          {"rope_theta", rotary.theta},
          {"partial_rotary_factor", rotary.partial_rotary_factor},
          {"rotary_dim", rotary.rotary_dim},
          {"rope_type", rotary.scaling.type},
          {"rms_norm_eps", rms_norm_eps},
          {"hidden_act", hidden_act},
          {"attention_bias", attention_bias},
          {"mlp_bias", mlp_bias},
          {"tie_word_embeddings", tie_word_embeddings}};
}

}  // namespace llama
