#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/dll/shared_library.hpp>

#include "llm/adapter.hpp"
#include "llm/dataset.hpp"
#include "llm/eval_task.hpp"
#include "llm/model.hpp"
#include "llm/nn/quantize.hpp"
#include "llm/plugin.hpp"

namespace llmhost {

// One loaded plugin library, as `--task list` shows it.
struct LoadedPlugin {
  std::filesystem::path path;
  llm::PluginKind kind;
  std::string name;
  std::string version;
  std::string description;
  std::vector<std::string> features;  // names it registered (one task plugin may register several)
};

// A file that looked like a plugin but was refused, and why (dlopen text, ABI versions, ...).
struct RefusedPlugin {
  std::filesystem::path path;
  std::string reason;
};

// Owns every loaded plugin library and the features they registered. Create it first and destroy
// it last: objects made by a plugin point into its code, so libraries are never unloaded.
class PluginRegistry {
 public:
  PluginRegistry();
  ~PluginRegistry();
  PluginRegistry(const PluginRegistry&) = delete;
  PluginRegistry& operator=(const PluginRegistry&) = delete;

  // The search path in DESIGN.md order: explicit dirs (--plugin_dir), LLMHOST_PLUGIN_PATH,
  // <exe>/../lib/llmhost/plugins, the build tree's plugin dir. Missing directories are skipped.
  static std::vector<std::filesystem::path> default_search_path(
      const std::vector<std::filesystem::path>& explicit_dirs);

  // Loads every libllm_*.so in each directory, in order; a name already loaded from an earlier
  // file is refused as a duplicate. Bad files land in refused(), never throw.
  void load_directories(const std::vector<std::filesystem::path>& dirs);
  void load_file(const std::filesystem::path& path);

  const std::vector<LoadedPlugin>& loaded() const { return loaded_; }
  const std::vector<RefusedPlugin>& refused() const { return refused_; }
  // Loaded, but unsafe: a file or directory others can write, a file owned by another user.
  const std::vector<RefusedPlugin>& warnings() const { return warnings_; }

  const std::vector<std::shared_ptr<llm::ModelFamily>>& model_families() const;
  // The family that recognises config (model_type, then architectures); UserError listing the
  // supported model types when none does.
  std::shared_ptr<llm::ModelFamily> family_for(const llm::ModelConfig& config) const;
  // By feature name; UserError listing the available names of that kind when absent.
  std::shared_ptr<llm::Dataset> dataset(const std::string& name) const;
  std::shared_ptr<llm::Adapter> adapter(const std::string& name) const;
  std::shared_ptr<llm::EvalTask> eval_task(const std::string& name) const;
  std::vector<std::string> feature_names(llm::PluginKind kind) const;
  std::vector<std::shared_ptr<llm::Adapter>> adapters() const;
  // The adapter that loads directories whose adapter_config.json says this peft_type (compared
  // without case); UserError naming `source` and the types the loaded adapters take when none.
  std::shared_ptr<llm::Adapter> adapter_for_peft_type(const std::string& peft_type,
                                                      const std::string& source) const;

 private:
  class ScopedRegistrar;
  std::vector<boost::dll::shared_library> libraries_;
  std::vector<LoadedPlugin> loaded_;
  std::vector<RefusedPlugin> refused_;
  std::vector<RefusedPlugin> warnings_;
  std::vector<std::shared_ptr<llm::ModelFamily>> families_;
  std::map<std::string, std::shared_ptr<llm::Dataset>> datasets_;
  std::map<std::string, std::shared_ptr<llm::Adapter>> adapters_;
  std::map<std::string, std::shared_ptr<llm::EvalTask>> eval_tasks_;
  std::map<std::string, std::filesystem::path> feature_owner_;  // feature name -> plugin file
};

// Opens a checkpoint directory for inference/training: reads config.json, picks the family,
// builds on device/dtype, loads weights (or random-initialises). UserError on any bad input.
struct LoadedModel {
  llm::ModelConfig config;
  std::shared_ptr<llm::ModelFamily> family;
  std::shared_ptr<llm::CausalLM> model;
  llm::QuantizeReport quantized;  // what --quantize compressed (nothing by default)
};
// With a quantize scheme the model is built and loaded on the CPU and each frozen Linear reaches
// the device already compressed, so the full-precision weights never need to fit there.
LoadedModel load_model(const PluginRegistry& registry, const std::filesystem::path& checkpoint_dir,
                       const torch::Device& device, torch::ScalarType dtype, bool random_init,
                       uint64_t seed = 0,
                       llm::QuantizeScheme quantize = llm::QuantizeScheme::kNone);

}  // namespace llmhost
