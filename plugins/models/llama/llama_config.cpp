#include "llama_config.hpp"

#include "llm/error.hpp"

namespace llama {
namespace {

const std::vector<std::string> kActivations = {
    "silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu"};

}  // namespace

llm::DecoderSpec read_llama_config(const llm::ModelConfig& common) {
  llm::DecoderSpec c;
  c.common = common;
  const llm::Json& json = common.raw;
  const std::string& source = common.source;
  c.intermediate_size = llm::config_size(common, "intermediate_size");
  c.rotary = llm::read_rotary_config(common, 10000.0, 1.0);
  // Llama 3.1+ checkpoints scale RoPE frequencies ("llama3"); other scalings are refused.
  if (c.rotary.scaling.type != "default" && c.rotary.scaling.type != "llama3") {
    throw llm::UserError(source + ": rope type '" + c.rotary.scaling.type +
                         "' is not supported by llama (expected 'default' or 'llama3')");
  }
  if (c.rotary.rotary_dim != common.head_dim) {
    throw llm::UserError(source + ": llama rotates the whole head (rotary dimension " +
                         std::to_string(c.rotary.rotary_dim) + ", head_dim " +
                         std::to_string(common.head_dim) + ")");
  }
  c.rms_norm_eps = llm::config_norm_eps(common, "rms_norm_eps", 1e-6);
  c.hidden_act = llm::json_string_or(json, "hidden_act", "silu", source);
  llm::parse_activation(c.hidden_act, source, kActivations);
  c.qkv_bias = c.output_bias = llm::json_bool_or(json, "attention_bias", false, source);
  c.mlp_bias = llm::json_bool_or(json, "mlp_bias", false, source);
  c.tie_word_embeddings = llm::json_bool_or(json, "tie_word_embeddings", false, source);
  return c;
}

}  // namespace llama
