// Loader test plugin: claims to be built against another LibTorch.
#include "llm/plugin.hpp"

namespace {
const llm::PluginInfo* forged_info() {
  static const llm::PluginInfo info{llm::kSdkAbiVersion,
                                    99,
                                    7,
                                    _GLIBCXX_USE_CXX11_ABI,
                                    llm::PluginKind::kModel,
                                    "wrong_torch",
                                    "0.0.1",
                                    "loader test: wrong LibTorch"};
  return &info;
}
void register_nothing(llm::Registrar&) {}
}  // namespace

BOOST_DLL_ALIAS(forged_info, llmhost_plugin_info)
BOOST_DLL_ALIAS(register_nothing, llmhost_plugin_register)
