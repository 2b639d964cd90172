#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

class CausalLM;

// An adapter plugin (LoRA): attaches trainable LinearAdapters to a model's AdaptableLinear slots,
// saves/loads them in PEFT's layout and merges them into the base weights.
class LLM_API Adapter {
 public:
  virtual ~Adapter();
  virtual std::string name() const = 0;  // "lora"
  // Attaches fresh adapters per `settings` (plugin-specific keys, e.g. lora_r); returns the
  // trainable parameters (fp32).
  virtual std::vector<torch::Tensor> attach(CausalLM& model, const Json& settings) const = 0;
  // Attaches and loads an adapter directory (adapter_config.json + adapter_model.safetensors).
  virtual void load(CausalLM& model, const std::filesystem::path& adapter_dir) const = 0;
  // Writes the attached adapters in PEFT's layout, atomically.
  virtual void save(CausalLM& model, const std::filesystem::path& adapter_dir) const = 0;
  // Folds the attached adapters into the base weights and detaches them.
  virtual void merge(CausalLM& model) const = 0;
};

}  // namespace llm
