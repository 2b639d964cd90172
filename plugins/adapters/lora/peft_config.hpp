#pragma once
// PEFT's adapter_config.json: what we read from any PEFT LoRA adapter and what we write.
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "llm/json_file.hpp"

namespace llm_lora {

struct PeftLoraConfig {
  int64_t r = 8;
  double lora_alpha = 16;
  double lora_dropout = 0.05;
  bool use_rslora = false;
  std::vector<std::string> target_modules;  // module names or suffixes
  std::string target_regex;                 // when PEFT's target_modules is a string (fullmatch)
  std::shared_ptr<const std::regex> compiled_regex;  // target_regex, compiled once when read
  std::string base_model_name_or_path;

  // Does a module name match target_modules the way PEFT matches it?
  bool targets(const std::string& module_name) const;
  std::string describe_targets() const;
};

// Reads adapter_config.json; UserError naming the file for anything we cannot honour exactly
// (DoRA, fan_in_fan_out, bias, rank/alpha patterns, modules_to_save, non-LORA peft_type), and
// for values that make the adapter meaningless (lora_alpha <= 0, an invalid target regex).
PeftLoraConfig read_peft_config(const std::filesystem::path& file);
// PEFT's long-standing keys, so old and new PEFT versions load it.
llm::Json peft_config_json(const PeftLoraConfig& config);

}  // namespace llm_lora
