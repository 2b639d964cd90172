#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

class CausalLM;

// A hyper-parameter an adapter declares. The host offers it as --NAME (and as a --config key) on
// the tasks that train with the adapter, with this help and default, and passes every value to
// attach() under the same name: the adapter, not the host, knows its options and their defaults.
struct LLM_API AdapterOption {
  enum class Type { kInteger, kNumber, kBoolean, kString };
  std::string name;
  Type type = Type::kNumber;
  std::string help;
  Json default_value;  // of `type`
};

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
  // The options attach() reads (none by default).
  virtual std::vector<AdapterOption> options() const;
  // The adapter_config.json "peft_type" this adapter loads ("LORA"); tasks that load an adapter
  // directory choose the plugin by it. "" (the default): none.
  virtual std::string peft_type() const;
};

}  // namespace llm
