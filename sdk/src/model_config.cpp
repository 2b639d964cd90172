// config.json -> the common ModelConfig (keys every family spells the same way, in the published
// and the transformers-5 layouts), and the readers families use for their own keys.
#include "llm/model_config.hpp"

#include <cmath>
#include <sstream>

#include "llm/error.hpp"
#include "llm/rope_scaling.hpp"

namespace llm {

namespace {

// Far above any real model; values past them are corrupt files, and would drive huge allocations.
constexpr int64_t kMaxVocab = 10'000'000;
constexpr int64_t kMaxHidden = 1 << 20;
constexpr int64_t kMaxLayers = 1000;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxHeadDim = 4096;
constexpr int64_t kMaxPositions = 1 << 24;

std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

int64_t checked_size(int64_t value, const char* key, int64_t max, const std::string& source) {
  if (value <= 0) {
    throw UserError(source + ": '" + key + "' must be a positive integer, got " +
                    std::to_string(value));
  }
  if (value > max) {
    throw UserError(source + ": '" + key + "' = " + std::to_string(value) +
                    " is implausibly large (limit " + std::to_string(max) + ")");
  }
  return value;
}

int64_t required_size(const Json& j, const char* key, int64_t max, const std::string& source) {
  return checked_size(json_int(j, key, source), key, max, source);
}

// A token id field: an integer, a list of integers, or null/absent.
std::vector<int64_t> token_ids(const Json& j, const char* key, const std::string& source) {
  std::vector<int64_t> ids;
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return ids;
  if (it->is_array()) {
    for (const auto& id : *it) {
      const Json single = {{key, id}};
      ids.push_back(json_int(single, key, source));
    }
  } else {
    ids.push_back(json_int(j, key, source));
  }
  return ids;
}

// A RoPE scaling object (`rope_scaling`, or transformers 5's `rope_parameters`). Variants other
// than the plain one and llama3 (linear, dynamic, yarn...) change the model's outputs; refusing
// them beats generating silently wrong text.
RopeScaling parse_rope_scaling(const Json& rope, const char* key, int64_t max_positions,
                               const std::string& source) {
  RopeScaling scaling;
  if (rope.is_null()) return scaling;
  if (!rope.is_object()) throw UserError(source + ": '" + key + "' must be an object or null");
  std::string type = json_string_or(rope, "rope_type", "", source);
  if (type.empty()) type = json_string_or(rope, "type", "default", source);
  scaling.type = type;
  if (type == "default") return scaling;
  if (type != "llama3") {
    throw UserError(source + ": '" + key + "' of type '" + type +
                    "' is not supported (expected 'default' or 'llama3')");
  }
  const std::string where = std::string(key) + "' (llama3)";
  const auto required = [&](const char* name) {
    if (!rope.contains(name) || !rope[name].is_number()) {
      throw UserError(source + ": '" + where + " needs a number '" + name + "'");
    }
    return rope[name].get<double>();
  };
  scaling.factor = required("factor");
  scaling.low_freq_factor = required("low_freq_factor");
  scaling.high_freq_factor = required("high_freq_factor");
  // transformers falls back to max_position_embeddings.
  scaling.original_max_position_embeddings = json_number_or(
      rope, "original_max_position_embeddings", static_cast<double>(max_positions), source);
  if (!(scaling.factor > 0.0)) throw UserError(source + ": '" + where + " 'factor' must be > 0");
  if (!(scaling.low_freq_factor > 0.0 && scaling.high_freq_factor > scaling.low_freq_factor)) {
    throw UserError(source + ": '" + where + " needs 0 < 'low_freq_factor' < 'high_freq_factor'");
  }
  if (!(scaling.original_max_position_embeddings > 0.0)) {
    throw UserError(source + ": '" + where + " 'original_max_position_embeddings' must be > 0");
  }
  return scaling;
}

// A non-null `rope_scaling` wins over `rope_parameters`, as transformers reads them.
RopeScaling rope_scaling_from_json(const Json& json, int64_t max_positions,
                                   const std::string& source) {
  if (const auto it = json.find("rope_scaling"); it != json.end() && !it->is_null()) {
    return parse_rope_scaling(*it, "rope_scaling", max_positions, source);
  }
  if (const auto it = json.find("rope_parameters"); it != json.end() && !it->is_null()) {
    return parse_rope_scaling(*it, "rope_parameters", max_positions, source);
  }
  return {};
}

}  // namespace

RopeScaling rope_scaling_of(const ModelConfig& config) {
  return rope_scaling_from_json(config.raw, config.max_position_embeddings, config.source);
}

ModelConfig ModelConfig::from_json(const Json& json, const std::string& source) {
  if (!json.is_object()) throw UserError(source + ": expected a JSON object");
  ModelConfig c;
  c.raw = json;
  c.source = source;
  c.model_type = json_string_or(json, "model_type", "", source);

  if (const auto it = json.find("architectures"); it != json.end() && !it->is_null()) {
    if (!it->is_array()) throw UserError(source + ": 'architectures' must be a list of strings");
    for (const auto& name : *it) {
      if (!name.is_string()) {
        throw UserError(source + ": 'architectures' must be a list of strings");
      }
      c.architectures.push_back(name.get<std::string>());
    }
  }

  c.vocab_size = required_size(json, "vocab_size", kMaxVocab, source);
  c.hidden_size = required_size(json, "hidden_size", kMaxHidden, source);
  c.num_layers = required_size(json, "num_hidden_layers", kMaxLayers, source);
  c.num_heads = required_size(json, "num_attention_heads", kMaxHeads, source);
  c.num_kv_heads = checked_size(json_int_or(json, "num_key_value_heads", c.num_heads, source),
                                "num_key_value_heads", kMaxHeads, source);
  c.max_position_embeddings =
      checked_size(json_int_or(json, "max_position_embeddings", 2048, source),
                   "max_position_embeddings", kMaxPositions, source);

  if (json.contains("head_dim") && !json["head_dim"].is_null()) {
    c.head_dim = required_size(json, "head_dim", kMaxHeadDim, source);
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      throw UserError(source + ": 'hidden_size' " + std::to_string(c.hidden_size) +
                      " is not divisible by 'num_attention_heads' " + std::to_string(c.num_heads));
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    throw UserError(source + ": 'num_attention_heads' " + std::to_string(c.num_heads) +
                    " is not divisible by 'num_key_value_heads' " + std::to_string(c.num_kv_heads));
  }

  // Both RoPE scaling objects are validated here; rope_scaling_of() reads the one that applies.
  if (const auto it = json.find("rope_parameters"); it != json.end() && !it->is_null()) {
    parse_rope_scaling(*it, "rope_parameters", c.max_position_embeddings, source);
  }
  if (const auto it = json.find("rope_scaling"); it != json.end() && !it->is_null()) {
    parse_rope_scaling(*it, "rope_scaling", c.max_position_embeddings, source);
  }

  const auto bos = token_ids(json, "bos_token_id", source);
  if (bos.size() > 1) throw UserError(source + ": 'bos_token_id' must be a single integer");
  if (!bos.empty()) c.bos_token_id = bos.front();
  c.eos_token_ids = token_ids(json, "eos_token_id", source);
  // Ids past vocab_size are harmless (never sampled); negative ones are corrupt.
  for (const int64_t id : c.eos_token_ids) {
    if (id < 0) throw UserError(source + ": 'eos_token_id' must not be negative");
  }
  if (c.bos_token_id && *c.bos_token_id < 0) {
    throw UserError(source + ": 'bos_token_id' must not be negative");
  }

  // transformers 5 writes `dtype`; older versions `torch_dtype`.
  c.dtype = json_string_or(json, "dtype", json_string_or(json, "torch_dtype", "", source), source);
  return c;
}

int64_t config_size(const ModelConfig& config, const char* key, std::optional<int64_t> fallback,
                    int64_t max) {
  const auto it = config.raw.find(key);
  if ((it == config.raw.end() || it->is_null()) && fallback) {
    return checked_size(*fallback, key, max, config.source);
  }
  return required_size(config.raw, key, max, config.source);
}

double config_norm_eps(const ModelConfig& config, const char* key, double fallback) {
  const double eps = json_number_or(config.raw, key, fallback, config.source);
  if (!(eps > 0.0 && eps < 1.0)) {
    throw UserError(config.source + ": '" + key + "' must be in (0, 1), got " + format_number(eps));
  }
  return eps;
}

RotaryConfig read_rotary_config(const ModelConfig& config, double default_theta,
                                double default_partial_rotary_factor) {
  const Json& json = config.raw;
  const std::string& source = config.source;
  const Json no_rope_parameters = Json::object();
  const Json* rope_parameters = &no_rope_parameters;
  if (const auto it = json.find("rope_parameters"); it != json.end() && !it->is_null()) {
    if (!it->is_object()) throw UserError(source + ": 'rope_parameters' must be an object or null");
    rope_parameters = &*it;
  }
  RotaryConfig r;
  r.theta = json_number_or(*rope_parameters, "rope_theta",
                           json_number_or(json, "rope_theta", default_theta, source), source);
  r.partial_rotary_factor = json_number_or(
      *rope_parameters, "partial_rotary_factor",
      json_number_or(json, "partial_rotary_factor", default_partial_rotary_factor, source), source);
  if (!(r.theta > 0.0)) throw UserError(source + ": 'rope_theta' must be positive");
  if (!(r.partial_rotary_factor > 0.0 && r.partial_rotary_factor <= 1.0)) {
    throw UserError(source + ": the rotary fraction ('partial_rotary_factor') must be in (0, 1], " +
                    "got " + format_number(r.partial_rotary_factor));
  }
  // int() truncation, as transformers computes it.
  r.rotary_dim =
      static_cast<int64_t>(static_cast<double>(config.head_dim) * r.partial_rotary_factor);
  if (r.rotary_dim < 2 || r.rotary_dim % 2 != 0) {
    throw UserError(source + ": rotary dimension head_dim * rotary fraction = " +
                    std::to_string(r.rotary_dim) + " must be even and at least 2");
  }
  r.scaling = rope_scaling_of(config);
  return r;
}

ModelConfig read_model_config(const std::filesystem::path& checkpoint_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(checkpoint_dir, ec)) {
    throw UserError("checkpoint directory '" + checkpoint_dir.string() + "' does not exist");
  }
  if (!std::filesystem::is_directory(checkpoint_dir, ec)) {
    throw UserError("checkpoint directory '" + checkpoint_dir.string() + "' is not a directory");
  }
  const auto path = checkpoint_dir / "config.json";
  if (!std::filesystem::exists(path, ec)) {
    throw UserError("checkpoint directory '" + checkpoint_dir.string() +
                    "' has no config.json (expected a Hugging Face checkpoint directory)");
  }
  ModelConfig config = ModelConfig::from_json(read_json_file(path), path.string());
  // generate() stops at generation_config.json's EOS ids when it names them, as transformers'
  // generate() does (Llama 3 Instruct: <|end_of_text|> and <|eot_id|>).
  const auto generation_path = checkpoint_dir / "generation_config.json";
  if (std::filesystem::exists(generation_path, ec)) {
    const Json generation = read_json_file(generation_path);
    if (!generation.is_object()) {
      throw UserError(generation_path.string() + ": expected a JSON object");
    }
    const auto eos = token_ids(generation, "eos_token_id", generation_path.string());
    for (const int64_t id : eos) {
      if (id < 0)
        throw UserError(generation_path.string() + ": 'eos_token_id' must not be negative");
    }
    if (!eos.empty()) config.eos_token_ids = eos;
  }
  return config;
}

}  // namespace llm
