#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

// The architecture hyper-parameters of a Hugging Face config.json, in both key layouts:
// published (`rotary_pct`, `rotary_emb_base`, `rope_theta`) and transformers 5 (`rope_parameters`
// with `rope_theta` / `partial_rotary_factor`).
struct LLM_API ModelConfig {
  std::string model_type;                  // "gpt_neox", "llama"
  std::vector<std::string> architectures;  // "GPTNeoXForCausalLM", ...
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // = num_heads unless grouped-query attention
  int64_t head_dim = 0;      // hidden_size / num_heads unless given
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  double rope_theta = 10000.0;
  double partial_rotary_factor = 1.0;  // fraction of head_dim that is rotated
  int64_t rotary_dim = 0;              // head_dim * partial_rotary_factor
  double norm_eps = 1e-5;              // layer_norm_eps or rms_norm_eps
  std::string hidden_act;              // "gelu", "silu", ...
  bool tie_word_embeddings = false;
  bool use_parallel_residual = false;  // GPT-NeoX
  bool attention_bias = false;
  bool mlp_bias = false;
  double initializer_range = 0.02;
  std::string dtype;  // stored weights: "float32", "bfloat16"... ("" if unset)
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config may give one id or a list
  Json raw;                            // the file as read
  std::string source;                  // file name for error messages

  // Parses and validates (positive sizes, heads divide hidden, kv heads divide heads, ...).
  static ModelConfig from_json(const Json& json, const std::string& source);
};

// Reads <dir>/config.json, and eos_token_id from <dir>/generation_config.json when that file names
// one (where generate() stops); UserError if the directory or a file is missing or invalid. RoPE
// scaling: rope_scaling_of() in llm/rope_scaling.hpp.
LLM_API ModelConfig read_model_config(const std::filesystem::path& checkpoint_dir);

}  // namespace llm
