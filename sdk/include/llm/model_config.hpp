#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llm/export.hpp"
#include "llm/json_file.hpp"
#include "llm/rope_scaling.hpp"

namespace llm {

// What every decoder-only family's config.json says in the same keys, and what the engine needs
// whatever the family (cache sizes, prompt checks, EOS, dtype). Everything else (norms, biases,
// activations, RoPE defaults, legacy key names) is the family's to read from `raw`: each model
// plugin owns its defaults and validation (ModelFamily::validate / settings).
struct LLM_API ModelConfig {
  std::string model_type;                  // "gpt_neox", "llama", ...
  std::vector<std::string> architectures;  // "GPTNeoXForCausalLM", ...
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // = num_heads unless grouped-query attention
  int64_t head_dim = 0;      // hidden_size / num_heads unless given
  int64_t max_position_embeddings = 0;
  std::string dtype;  // stored weights: "float32", "bfloat16"... ("" if unset)
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config may give one id or a list
  Json raw;                            // the file as read
  std::string source;                  // file name for error messages

  // Parses and validates the common keys (positive sizes, heads divide hidden, kv heads divide
  // heads, a RoPE scaling object if any); UserError naming `source` and the key.
  static ModelConfig from_json(const Json& json, const std::string& source);
};

// Reads <dir>/config.json, and eos_token_id from <dir>/generation_config.json when that file names
// one (where generate() stops); UserError if the directory or a file is missing or invalid. RoPE
// scaling: rope_scaling_of() in llm/rope_scaling.hpp.
LLM_API ModelConfig read_model_config(const std::filesystem::path& checkpoint_dir);

// Helpers for a family reading its own keys from config.raw, with errors naming config.source
// and the key.
// A positive integer no larger than `max` (a corrupt file would otherwise drive huge allocations);
// `fallback` when the key is absent or null, required when there is none.
LLM_API int64_t config_size(const ModelConfig& config, const char* key,
                            std::optional<int64_t> fallback = std::nullopt,
                            int64_t max = int64_t{1} << 22);
// A norm epsilon in (0, 1).
LLM_API double config_norm_eps(const ModelConfig& config, const char* key, double fallback);

// The rotary embedding a family computes: transformers 5 nests `rope_theta` and
// `partial_rotary_factor` in `rope_parameters`, older files keep them at the top level. The
// defaults are the family's (a family whose files use other key names reads them and passes their
// values here). rotary_dim = int(head_dim * fraction), even and at least 2.
struct RotaryConfig {
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;  // fraction of head_dim that is rotated
  int64_t rotary_dim = 0;
  RopeScaling scaling;
};
LLM_API RotaryConfig read_rotary_config(const ModelConfig& config, double default_theta,
                                        double default_partial_rotary_factor);

}  // namespace llm
