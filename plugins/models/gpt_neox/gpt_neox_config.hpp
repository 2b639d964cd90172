#pragma once
#include <string>

#include "llm/json_file.hpp"
#include "llm/model_config.hpp"

namespace gpt_neox {

// How GPT-NeoX reads config.json: transformers' GPTNeoXConfig defaults, and the published key
// names (`rotary_pct`, `rotary_emb_base`, `layer_norm_eps`) next to transformers 5's
// (`rope_parameters` with `rope_theta` / `partial_rotary_factor`).
struct GptNeoXConfig : llm::ModelConfig {
  int64_t intermediate_size = 0;
  llm::RotaryConfig rotary;  // partial: rotary_pct 0.25 of each head by default
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "gelu";
  bool use_parallel_residual = true;
  bool attention_bias = true;  // query_key_value and dense; the MLP always has biases
  bool tie_word_embeddings = false;

  // Reads and validates the family's keys; UserError naming config.json and the key.
  static GptNeoXConfig read(const llm::ModelConfig& common);
  llm::Json settings() const;  // the resolved keys (ModelFamily::settings)
};

}  // namespace gpt_neox
