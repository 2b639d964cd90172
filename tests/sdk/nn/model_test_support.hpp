#pragma once
// Shared by the model-plugin and generation tests: the real plugins through the host's registry,
// the golden tensors, and checkpoint copies to corrupt.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "llm/json_file.hpp"
#include "llm/safetensors.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace llm::test {

inline const llmhost::PluginRegistry& model_plugins() {
  static const auto* registry = [] {
    auto* r = new llmhost::PluginRegistry();  // never destroyed: plugins are never unloaded
    r->load_directories({plugin_dir()});
    return r;
  }();
  return *registry;
}

inline llmhost::LoadedModel load_test_model(const std::filesystem::path& dir,
                                            torch::ScalarType dtype = torch::kFloat,
                                            torch::Device device = torch::kCPU) {
  return llmhost::load_model(model_plugins(), dir, device, dtype, false);
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

inline Json golden_summary() { return read_json_file(data_dir() / "golden" / "summary.json"); }
// One model's goldens: its entry of summary.json, or its own <model>.json for the fixtures made
// after summary.json (tiny-qwen2, tiny-llama3). "greedy_out" is summary.json's: the prompt
// followed by the new tokens (the own files hold the new tokens only).
inline Json golden_model_summary(const std::string& model_name) {
  const auto own = data_dir() / "golden" / (model_name + ".json");
  if (!std::filesystem::exists(own)) return golden_summary()[model_name];
  Json summary = read_json_file(own);
  Json full = summary["greedy_prompt"];
  for (const auto& id : summary["greedy_out"]) full.push_back(id);
  summary["greedy_out"] = full;
  return summary;
}

inline torch::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kLong).view({1, -1});
}

// A copy of a checkpoint directory whose files the test may rewrite.
inline void copy_checkpoint(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::create_directories(to);
  for (const auto& entry : std::filesystem::directory_iterator(from)) {
    std::filesystem::copy_file(entry.path(), to / entry.path().filename(),
                               std::filesystem::copy_options::overwrite_existing);
  }
}

inline void write_json(const std::filesystem::path& path, const Json& json) {
  std::ofstream(path) << json.dump(2);
}

// Every tensor of `file`, `edit` applied to the list, written back as model.safetensors in `dir`.
template <typename Edit>
void rewrite_weights(const std::filesystem::path& source, const std::filesystem::path& dir,
                     Edit edit) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  {
    SafetensorsFile file(source);
    for (const auto& info : file.tensors()) {
      tensors.emplace_back(info.name, file.tensor(info.name).clone());
    }
  }
  edit(tensors);
  write_safetensors(dir / "model.safetensors", tensors);
}

}  // namespace llm::test
