// --task list: every plugin found on the search path, and every file refused with the reason.
#include <algorithm>
#include <iomanip>
#include <iostream>

#include "llm/error.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::list_task {
namespace {

void declare(po::options_description&) {}

// A model plugin's families and what each accepts from config.json (model_type, architectures).
llm::Json families_of(const PluginRegistry& registry, const LoadedPlugin& plugin) {
  llm::Json families = llm::Json::array();
  if (plugin.kind != llm::PluginKind::kModel) return families;
  for (const auto& family : registry.model_families()) {
    if (std::find(plugin.features.begin(), plugin.features.end(), family->name()) ==
        plugin.features.end()) {
      continue;
    }
    families.push_back({{"name", family->name()},
                        {"model_types", family->model_types()},
                        {"architectures", family->architectures()}});
  }
  return families;
}

std::string joined(const llm::Json& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n.get<std::string>();
  return out;
}

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
      const auto families = families_of(registry, p);
      if (!families.empty()) plugins.back()["families"] = families;
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
    for (const auto& family : families_of(registry, p)) {
      out << std::setw(35) << ""
          << "config.json model_type: " << joined(family["model_types"])
          << "; architectures: " << joined(family["architectures"]) << "\n";
    }
  }
  if (registry.loaded().empty()) out << "(no plugins found)\n";
  for (const auto& r : registry.refused()) {
    out << "refused " << r.path.string() << ": " << r.reason << "\n";
  }
  return llm::kExitOk;
}

const bool registered = register_task(
    {"list",
     "show the plugins found (kind, name, version, path; model families with the config.json "
     "model_type values they accept) and refused files",
     declare, run});

}  // namespace
}  // namespace llmhost::list_task
