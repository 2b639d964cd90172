// libFuzzer target: a dataset plugin's read() (Dolly JSONL or Alpaca JSON) on a file holding the
// input. The plugin is the shipped .so, loaded from the build tree (LLMHOST_FUZZ_PLUGIN).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "fuzz/fuzz_bodies.hpp"
#include "fuzz/fuzz_main_support.hpp"
#include "llm/plugin.hpp"

namespace {

class CapturingRegistrar final : public llm::Registrar {
 public:
  std::shared_ptr<llm::Dataset> dataset;
  void add_model_family(std::shared_ptr<llm::ModelFamily>) override {}
  void add_dataset(std::shared_ptr<llm::Dataset> d) override { dataset = std::move(d); }
  void add_adapter(std::shared_ptr<llm::Adapter>) override {}
  void add_eval_task(std::shared_ptr<llm::EvalTask>) override {}
};

const llm::Dataset& dataset() {
  static const std::shared_ptr<llm::Dataset> loaded = [] {
    void* handle = ::dlopen(LLMHOST_FUZZ_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      std::fprintf(stderr, "cannot load %s: %s\n", LLMHOST_FUZZ_PLUGIN, ::dlerror());
      std::abort();
    }
    // BOOST_DLL_ALIAS exports a pointer-sized variable holding the function's address.
    auto* alias = static_cast<void**>(::dlsym(handle, "llmhost_plugin_register"));
    if (!alias) std::abort();
    CapturingRegistrar registrar;
    reinterpret_cast<llm::PluginRegisterFn*> (*alias)(registrar);
    if (!registrar.dataset) std::abort();
    return registrar.dataset;
  }();
  return *loaded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  llm::fuzz::dataset_input(dataset(), data, size);
  return 0;
}
