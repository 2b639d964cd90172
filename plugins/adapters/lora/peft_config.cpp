#include "peft_config.hpp"

#include <cmath>
#include <regex>

#include "llm/error.hpp"

namespace llm_lora {

bool PeftLoraConfig::targets(const std::string& module_name) const {
  if (!target_regex.empty()) {
    return std::regex_match(module_name,
                            compiled_regex ? *compiled_regex : std::regex(target_regex));
  }
  for (const auto& target : target_modules) {
    if (module_name == target) return true;
    if (module_name.size() > target.size() &&
        module_name.compare(module_name.size() - target.size(), target.size(), target) == 0 &&
        module_name[module_name.size() - target.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

std::string PeftLoraConfig::describe_targets() const {
  if (!target_regex.empty()) return "'" + target_regex + "'";
  return llm::Json(target_modules).dump();
}

PeftLoraConfig read_peft_config(const std::filesystem::path& file) {
  const llm::Json j = llm::read_json_file(file);
  const std::string source = file.string();
  if (!j.is_object()) throw llm::UserError(source + ": expected a JSON object");
  const std::string peft_type = llm::json_string_or(j, "peft_type", "LORA", source);
  if (peft_type != "LORA") {
    throw llm::UserError(source + ": peft_type '" + peft_type + "' is not LORA");
  }
  auto unsupported = [&](const char* key, const std::string& why) {
    throw llm::UserError(source + ": '" + key + "' " + why + " is not supported");
  };
  auto truthy = [&](const char* key) {
    return j.contains(key) && !j[key].is_null() && j[key] != false &&
           !(j[key].is_object() && j[key].empty()) && !(j[key].is_array() && j[key].empty());
  };
  if (truthy("use_dora")) unsupported("use_dora", "(DoRA)");
  if (truthy("fan_in_fan_out")) unsupported("fan_in_fan_out", "= true");
  if (j.contains("bias") && j["bias"] != "none") unsupported("bias", "other than \"none\"");
  for (const char* key :
       {"rank_pattern", "alpha_pattern", "modules_to_save", "layers_to_transform", "lora_bias"}) {
    if (truthy(key)) unsupported(key, "(per-layer settings)");
  }
  PeftLoraConfig config;
  config.r = llm::json_int(j, "r", source);
  if (config.r <= 0 || config.r > 65536) throw llm::UserError(source + ": 'r' must be in 1..65536");
  config.lora_alpha = llm::json_number_or(j, "lora_alpha", static_cast<double>(config.r), source);
  // alpha 0 scales every update to nothing; PEFT would merge a no-op without a word.
  if (!(config.lora_alpha > 0) || !std::isfinite(config.lora_alpha)) {
    throw llm::UserError(source + ": 'lora_alpha' must be a finite positive number, got " +
                         std::to_string(config.lora_alpha));
  }
  config.lora_dropout = llm::json_number_or(j, "lora_dropout", 0.0, source);
  if (!(config.lora_dropout >= 0 && config.lora_dropout < 1)) {
    throw llm::UserError(source + ": 'lora_dropout' must be in [0, 1)");
  }
  config.use_rslora = llm::json_bool_or(j, "use_rslora", false, source);
  config.base_model_name_or_path =
      j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()
          ? j["base_model_name_or_path"].get<std::string>()
          : "";
  const auto targets = j.find("target_modules");
  if (targets != j.end() && targets->is_string()) {
    config.target_regex = targets->get<std::string>();
    try {
      config.compiled_regex = std::make_shared<const std::regex>(config.target_regex);
    } catch (const std::regex_error& e) {
      throw llm::UserError(source + ": 'target_modules' is not a valid regular expression (" +
                           e.what() + ")");
    }
  } else if (targets != j.end() && targets->is_array() && !targets->empty()) {
    for (const auto& t : *targets) {
      if (!t.is_string()) throw llm::UserError(source + ": 'target_modules' must list strings");
      config.target_modules.push_back(t.get<std::string>());
    }
  } else {
    throw llm::UserError(source + ": 'target_modules' must be a non-empty list or a regex string");
  }
  return config;
}

llm::Json peft_config_json(const PeftLoraConfig& c) {
  llm::Json j = llm::Json::object();
  j["alpha_pattern"] = llm::Json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] =
      c.base_model_name_or_path.empty() ? llm::Json(nullptr) : llm::Json(c.base_model_name_or_path);
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = nullptr;
  // 16, not 16.0, when whole: what PEFT itself writes for an int alpha.
  if (c.lora_alpha == std::floor(c.lora_alpha) && std::abs(c.lora_alpha) < 1e15) {
    j["lora_alpha"] = static_cast<int64_t>(c.lora_alpha);
  } else {
    j["lora_alpha"] = c.lora_alpha;
  }
  j["lora_dropout"] = c.lora_dropout;
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = c.r;
  j["rank_pattern"] = llm::Json::object();
  j["revision"] = nullptr;
  j["target_modules"] = c.target_modules;
  j["task_type"] = "CAUSAL_LM";
  j["use_dora"] = false;
  j["use_rslora"] = c.use_rslora;
  return j;
}

}  // namespace llm_lora
