#pragma once
// The plugin contract. A plugin is a shared library exporting, through Boost.DLL aliases, exactly
// two symbols, written by LLMHOST_PLUGIN:
// clang-format off
//   llmhost_plugin_info      const PluginInfo* ()   plain data, read and checked before anything else
//   llmhost_plugin_register  void (Registrar&)      the factory: registers the plugin's features
// clang-format on
// The host refuses a plugin whose SDK ABI version, LibTorch version or C++11-ABI flag differs from
// its own, naming the file and both values. Loaded libraries are never unloaded during a run.
#include <cstdint>
#include <memory>
#include <string>

#include <torch/version.h>
#include <boost/dll/alias.hpp>

#include "llm/export.hpp"

namespace llm {

// Bump whenever a plugin-implemented interface (ModelFamily, Dataset, Adapter, EvalTask,
// LinearAdapter, CausalLM), PluginInfo or a struct that crosses the boundary (ModelConfig,
// EvalTaskOptions, InstructionExample, DatasetReadOptions) changes in any way: a new virtual
// shifts vtable slots, a new field shifts the layout.
// 5: ModelConfig keeps the common keys only; ModelFamily::settings.
// 6: CausalLM::adaptable_linears returns ModelLinear (typed roles).
// 7: Adapter::options, Adapter::peft_type.
// 8: llm::CausalDecoder, DecoderBlock, DecoderParts.
// 9: LinearAdapter::add_to (the fused low-rank update).
// 10: RotaryEmbedding::split_interleaved_qkv, PackedSequences fixed layouts, PackedMicroStep.
// 11: LinearAdapter::apply (the frozen product and the update in one autograd node).
inline constexpr std::uint32_t kSdkAbiVersion = 11;

enum class PluginKind : std::uint32_t { kModel = 1, kDataset = 2, kAdapter = 3, kEvalTask = 4 };
LLM_API const char* plugin_kind_name(PluginKind kind);  // "model", "dataset", ...

// Standard layout. sdk_abi_version stays the first field forever, so any host can read it.
struct PluginInfo {
  std::uint32_t sdk_abi_version;
  std::uint32_t torch_major;
  std::uint32_t torch_minor;
  std::uint32_t cxx11_abi;
  PluginKind kind;
  const char* name;         // unique among loaded plugins
  const char* version;      // the plugin's own version
  const char* description;  // one line
};

class ModelFamily;
class Dataset;
class Adapter;
class EvalTask;

// Implemented by the host. A plugin registers features of its own kind only; names are unique
// across all plugins (a duplicate is an error naming both files).
class LLM_API Registrar {
 public:
  virtual void add_model_family(std::shared_ptr<ModelFamily> family) = 0;
  virtual void add_dataset(std::shared_ptr<Dataset> dataset) = 0;
  virtual void add_adapter(std::shared_ptr<Adapter> adapter) = 0;
  virtual void add_eval_task(std::shared_ptr<EvalTask> task) = 0;

 protected:
  ~Registrar();
};

using PluginInfoFn = const PluginInfo*();
using PluginRegisterFn = void(Registrar&);

}  // namespace llm

#ifndef _GLIBCXX_USE_CXX11_ABI
#define _GLIBCXX_USE_CXX11_ABI 0
#endif

// One per plugin, at namespace scope in one .cpp:
//   LLMHOST_PLUGIN(kModel, "gpt_neox", "0.1.0", "GPT-NeoX / Pythia", register_gpt_neox)
// where `void register_gpt_neox(llm::Registrar&)` registers the plugin's features.
#define LLMHOST_PLUGIN(KIND, NAME, VERSION, DESCRIPTION, REGISTER_FN)                    \
  namespace llmhost_plugin_entry {                                                       \
  static const ::llm::PluginInfo* info() {                                               \
    static const ::llm::PluginInfo kInfo{::llm::kSdkAbiVersion,                          \
                                         TORCH_VERSION_MAJOR,                            \
                                         TORCH_VERSION_MINOR,                            \
                                         _GLIBCXX_USE_CXX11_ABI,                         \
                                         ::llm::PluginKind::KIND,                        \
                                         NAME,                                           \
                                         VERSION,                                        \
                                         DESCRIPTION};                                   \
    return &kInfo;                                                                       \
  }                                                                                      \
  static void register_features(::llm::Registrar& registrar) { REGISTER_FN(registrar); } \
  }                                                                                      \
  BOOST_DLL_ALIAS(llmhost_plugin_entry::info, llmhost_plugin_info)                       \
  BOOST_DLL_ALIAS(llmhost_plugin_entry::register_features, llmhost_plugin_register)
