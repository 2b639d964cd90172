#pragma once
#include <string>

#include "llm/json_file.hpp"
#include "llm/model_config.hpp"

namespace llama {

// How Llama reads config.json: transformers' LlamaConfig defaults. RoPE: `rope_theta` (or
// transformers 5's `rope_parameters`), the whole head rotated, "default" or "llama3" scaling.
struct LlamaConfig : llm::ModelConfig {
  int64_t intermediate_size = 0;
  llm::RotaryConfig rotary;
  double rms_norm_eps = 1e-6;
  std::string hidden_act = "silu";
  bool attention_bias = false;  // q, k, v and o projections
  bool mlp_bias = false;
  bool tie_word_embeddings = false;

  // Reads and validates the family's keys; UserError naming config.json and the key.
  static LlamaConfig read(const llm::ModelConfig& common);
  llm::Json settings() const;  // the resolved keys (ModelFamily::settings)
};

}  // namespace llama
