// Loader test plugin: built "for" another SDK ABI version. Written by hand, not with
// LLMHOST_PLUGIN, to forge the version field.
#include "llm/plugin.hpp"

namespace {
const llm::PluginInfo* forged_info() {
  static const llm::PluginInfo info{999,
                                    TORCH_VERSION_MAJOR,
                                    TORCH_VERSION_MINOR,
                                    _GLIBCXX_USE_CXX11_ABI,
                                    llm::PluginKind::kModel,
                                    "wrong_abi",
                                    "0.0.1",
                                    "loader test: wrong ABI"};
  return &info;
}
void register_nothing(llm::Registrar&) {}
}  // namespace

BOOST_DLL_ALIAS(forged_info, llmhost_plugin_info)
BOOST_DLL_ALIAS(register_nothing, llmhost_plugin_register)
