// --task list: every plugin found on the search path, and every file refused with the reason.
#include <iomanip>
#include <iostream>

#include "llm/error.hpp"
#include "task.hpp"

namespace llmhost {
namespace {

void declare(po::options_description&) {}

int run(TaskContext& ctx) {
  const auto& registry = ctx.registry();
  if (ctx.json_output()) {
    llm::Json plugins = llm::Json::array();
    for (const auto& p : registry.loaded()) {
      plugins.push_back({{"kind", llm::plugin_kind_name(p.kind)},
                         {"name", p.name},
                         {"version", p.version},
                         {"description", p.description},
                         {"features", p.features},
                         {"path", p.path.string()}});
    }
    llm::Json refused = llm::Json::array();
    for (const auto& r : registry.refused()) {
      refused.push_back({{"path", r.path.string()}, {"reason", r.reason}});
    }
    ctx.out() << llm::Json{{"plugins", plugins}, {"refused", refused}}.dump(2) << "\n";
    return llm::kExitOk;
  }
  auto& out = ctx.out();
  out << std::left << std::setw(10) << "KIND" << std::setw(16) << "NAME" << std::setw(9)
      << "VERSION"
      << "PATH\n";
  for (const auto& p : registry.loaded()) {
    out << std::setw(10) << llm::plugin_kind_name(p.kind) << std::setw(16) << p.name << std::setw(9)
        << p.version << p.path.string() << "\n";
    if (p.features.size() > 1 || (p.features.size() == 1 && p.features[0] != p.name)) {
      out << std::setw(35) << ""
          << "provides:";
      for (const auto& f : p.features) out << " " << f;
      out << "\n";
    }
  }
  if (registry.loaded().empty()) out << "(no plugins found)\n";
  for (const auto& r : registry.refused()) {
    out << "refused " << r.path.string() << ": " << r.reason << "\n";
  }
  return llm::kExitOk;
}

const bool registered = register_task(
    {"list", "show the plugins found (kind, name, version, path) and refused files", declare, run});

}  // namespace
}  // namespace llmhost
