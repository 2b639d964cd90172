// Qwen2 and Qwen2.5 (config.json model_type "qwen2"): the shared decoder layout
// (llm/nn/decoder.hpp) with biases on q_proj, k_proj and v_proj only, grouped-query attention,
// rope_theta, and often a head tied to the embedding (then the checkpoint has no lm_head.weight).
// The tokenizer (byte-level tokenizer.json with Qwen2's split pattern) and the EOS ids of
// generation_config.json are read by the SDK.
#include "llm/error.hpp"
#include "llm/nn/decoder.hpp"
#include "llm/plugin.hpp"

namespace qwen2 {
namespace {

// How Qwen2 reads config.json, with transformers' Qwen2Config defaults.
llm::DecoderSpec read_qwen2_config(const llm::ModelConfig& common) {
  const llm::Json& json = common.raw;
  const std::string& source = common.source;
  llm::DecoderSpec spec;
  spec.common = common;
  spec.intermediate_size = llm::config_size(common, "intermediate_size");
  spec.rotary = llm::read_rotary_config(common, 10000.0, 1.0);
  if (spec.rotary.scaling.type != "default") {
    throw llm::UserError(source + ": rope type '" + spec.rotary.scaling.type +
                         "' is not supported by qwen2 (expected 'default')");
  }
  if (spec.rotary.rotary_dim != common.head_dim) {
    throw llm::UserError(source + ": qwen2 rotates the whole head (rotary dimension " +
                         std::to_string(spec.rotary.rotary_dim) + ", head_dim " +
                         std::to_string(common.head_dim) + ")");
  }
  // Sliding-window layers attend to a window only; computing them in full would be silently wrong.
  if (llm::json_bool_or(json, "use_sliding_window", false, source)) {
    throw llm::UserError(source + ": 'use_sliding_window' true is not supported by qwen2 " +
                         "(expected false: every layer attends to the whole context)");
  }
  if (const auto it = json.find("layer_types"); it != json.end() && it->is_array()) {
    for (const auto& type : *it) {
      if (type != "full_attention") {
        throw llm::UserError(source + ": 'layer_types' holds " + type.dump() +
                             "; qwen2 supports 'full_attention' layers only");
      }
    }
  }
  spec.rms_norm_eps = llm::config_norm_eps(common, "rms_norm_eps", 1e-6);
  spec.hidden_act = llm::json_string_or(json, "hidden_act", "silu", source);
  llm::parse_activation(spec.hidden_act, source);
  spec.qkv_bias = true;
  spec.output_bias = false;
  spec.mlp_bias = false;
  spec.tie_word_embeddings = llm::json_bool_or(json, "tie_word_embeddings", false, source);
  return spec;
}

void register_qwen2(llm::Registrar& registrar) {
  registrar.add_model_family(std::make_shared<llm::DecoderFamily>(
      "qwen2", std::vector<std::string>{"qwen2"}, std::vector<std::string>{"Qwen2ForCausalLM"},
      read_qwen2_config));
}

}  // namespace
}  // namespace qwen2

LLMHOST_PLUGIN(kModel, "qwen2", "0.1.0", "Qwen2 / Qwen2.5 causal language models",
               qwen2::register_qwen2)
