#include "plugin_registry.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <sstream>
#include <system_error>

#include <boost/dll/runtime_symbol_info.hpp>

#include "elf_check.hpp"
#include "llm/error.hpp"

namespace llmhost {

namespace fs = std::filesystem;

namespace {

constexpr const char* kInfoSymbol = "llmhost_plugin_info";
constexpr const char* kRegisterSymbol = "llmhost_plugin_register";

bool looks_like_plugin(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.rfind("libllm_", 0) == 0 && path.extension() == ".so";
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

// Libraries are never unloaded (see header). Unless LLMHOST_PLUGIN_UNLOAD=1 asks for a clean
// teardown (leak checkers), the handles are parked here at destruction and never closed.
std::vector<boost::dll::shared_library>* parked_libraries() {
  static auto* parked = new std::vector<boost::dll::shared_library>();
  return parked;
}

// Whoever can write a plugin file (or swap it in its directory) runs code as the user of llmhost.
// Empty when the file is safe to load.
std::string unsafe_permissions(const fs::path& path) {
  struct stat file {};
  if (::stat(path.c_str(), &file) != 0) return "";
  if ((file.st_mode & S_IWOTH) != 0) {
    return "is world-writable: anyone on this machine can change the code llmhost runs (chmod o-w)";
  }
  if (file.st_uid != ::geteuid() && file.st_uid != 0) {
    return "is owned by another user (uid " + std::to_string(file.st_uid) +
           "), who can change the code llmhost runs";
  }
  struct stat dir {};
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (::stat(parent.c_str(), &dir) == 0 && (dir.st_mode & S_IWOTH) != 0 &&
      (dir.st_mode & S_ISVTX) == 0) {
    return "is in a world-writable directory: anyone on this machine can replace it";
  }
  return "";
}

}  // namespace

// Collects one plugin's registrations; they are committed only if registration succeeds entirely.
class PluginRegistry::ScopedRegistrar final : public llm::Registrar {
 public:
  explicit ScopedRegistrar(llm::PluginKind kind) : kind_(kind) {}

  void add_model_family(std::shared_ptr<llm::ModelFamily> family) override {
    expect(llm::PluginKind::kModel, family != nullptr);
    names.push_back(family->name());
    families.push_back(std::move(family));
  }
  void add_dataset(std::shared_ptr<llm::Dataset> dataset) override {
    expect(llm::PluginKind::kDataset, dataset != nullptr);
    names.push_back(dataset->name());
    datasets.push_back(std::move(dataset));
  }
  void add_adapter(std::shared_ptr<llm::Adapter> adapter) override {
    expect(llm::PluginKind::kAdapter, adapter != nullptr);
    names.push_back(adapter->name());
    adapters.push_back(std::move(adapter));
  }
  void add_eval_task(std::shared_ptr<llm::EvalTask> task) override {
    expect(llm::PluginKind::kEvalTask, task != nullptr);
    names.push_back(task->name());
    tasks.push_back(std::move(task));
  }

  std::vector<std::string> names;
  std::vector<std::shared_ptr<llm::ModelFamily>> families;
  std::vector<std::shared_ptr<llm::Dataset>> datasets;
  std::vector<std::shared_ptr<llm::Adapter>> adapters;
  std::vector<std::shared_ptr<llm::EvalTask>> tasks;

 private:
  void expect(llm::PluginKind registered, bool non_null) const {
    if (!non_null) throw std::runtime_error("registered a null feature");
    if (registered != kind_) {
      throw std::runtime_error(std::string("a ") + llm::plugin_kind_name(kind_) +
                               " plugin registered a " + llm::plugin_kind_name(registered));
    }
  }
  llm::PluginKind kind_;
};

PluginRegistry::PluginRegistry() = default;

PluginRegistry::~PluginRegistry() {
  // Features first (their code lives in the libraries), then the libraries.
  families_.clear();
  datasets_.clear();
  adapters_.clear();
  eval_tasks_.clear();
  const char* unload = std::getenv("LLMHOST_PLUGIN_UNLOAD");
  if (unload == nullptr || std::string(unload) != "1") {
    for (auto& lib : libraries_) parked_libraries()->push_back(std::move(lib));
  }
}

std::vector<fs::path> PluginRegistry::default_search_path(
    const std::vector<fs::path>& explicit_dirs) {
  std::vector<fs::path> candidates = explicit_dirs;
  if (const char* env = std::getenv("LLMHOST_PLUGIN_PATH")) {
    std::stringstream entries(env);
    std::string entry;
    while (std::getline(entries, entry, ':')) {
      if (!entry.empty()) candidates.emplace_back(entry);
    }
  }
  boost::system::error_code ec;
  const auto exe = boost::dll::program_location(ec);
  if (!ec) {
    candidates.push_back(fs::path(exe.parent_path().string()) / ".." / "lib" / "llmhost" /
                         "plugins");
  }
  candidates.emplace_back(LLMHOST_BUILD_PLUGIN_DIR);

  std::vector<fs::path> dirs;
  std::vector<fs::path> seen;
  for (const auto& dir : candidates) {
    std::error_code fs_ec;
    // Missing directories are skipped; one that exists but cannot be read stays, so that
    // load_directories warns about it instead of leaving it out in silence.
    const bool missing = fs::status(dir, fs_ec).type() == fs::file_type::not_found;
    if (missing || (!fs_ec && !fs::is_directory(dir, fs_ec))) continue;
    fs::path canonical = fs::weakly_canonical(dir, fs_ec);
    if (fs_ec) canonical = fs::absolute(dir, fs_ec).lexically_normal();
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end()) continue;
    seen.push_back(canonical);
    dirs.push_back(canonical);
  }
  return dirs;
}

void PluginRegistry::load_directories(const std::vector<fs::path>& dirs) {
  for (const auto& dir : dirs) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (looks_like_plugin(it->path())) files.push_back(it->path());
    }
    if (ec) {
      warnings_.push_back(
          {dir, "directory cannot be read (" + ec.message() + "): its plugins are not loaded"});
    }
    std::sort(files.begin(), files.end());  // deterministic order: first file wins a duplicate
    for (const auto& file : files) load_file(file);
  }
}

void PluginRegistry::load_file(const fs::path& path) {
  auto refuse = [&](const std::string& reason) { refused_.push_back({path, reason}); };
  if (const std::string damaged = elf_library_problem(path); !damaged.empty()) {
    return refuse(damaged);  // never handed to dlopen: mapping it could crash the process
  }
  if (const std::string unsafe = unsafe_permissions(path); !unsafe.empty()) {
    warnings_.push_back({path, unsafe});
  }

  boost::dll::shared_library lib;
  try {
    // rtld_now: an unresolved symbol (e.g. another LibTorch) fails here, not mid-training.
    lib = boost::dll::shared_library(path.string(), boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    refuse(std::string("cannot be loaded: ") + e.what());
    return;
  }
  if (!lib.has(kInfoSymbol)) {
    refuse(std::string("not an llmhost plugin: no '") + kInfoSymbol + "' entry point");
    libraries_.push_back(std::move(lib));
    return;
  }
  const llm::PluginInfo* info = lib.get_alias<llm::PluginInfoFn>(kInfoSymbol)();
  libraries_.push_back(lib);  // from here on its code may have run: never unload it

  if (info == nullptr) return refuse("plugin info is null");
  if (info->sdk_abi_version != llm::kSdkAbiVersion) {
    return refuse("SDK ABI version mismatch: plugin has " + std::to_string(info->sdk_abi_version) +
                  ", llmhost expects " + std::to_string(llm::kSdkAbiVersion));
  }
  if (info->torch_major != TORCH_VERSION_MAJOR || info->torch_minor != TORCH_VERSION_MINOR) {
    return refuse("LibTorch version mismatch: plugin built against " +
                  std::to_string(info->torch_major) + "." + std::to_string(info->torch_minor) +
                  ", llmhost uses " + std::to_string(TORCH_VERSION_MAJOR) + "." +
                  std::to_string(TORCH_VERSION_MINOR));
  }
  if (info->cxx11_abi != _GLIBCXX_USE_CXX11_ABI) {
    return refuse(
        "C++11 ABI mismatch: plugin has _GLIBCXX_USE_CXX11_ABI=" + std::to_string(info->cxx11_abi) +
        ", llmhost has " + std::to_string(_GLIBCXX_USE_CXX11_ABI));
  }
  const std::string name = info->name != nullptr ? info->name : "";
  if (name.empty()) return refuse("plugin info has no name");
  for (const auto& other : loaded_) {
    if (other.name == name) {
      return refuse("duplicate plugin name '" + name + "': already loaded from " +
                    other.path.string());
    }
  }
  if (!lib.has(kRegisterSymbol)) {
    return refuse(std::string("no '") + kRegisterSymbol + "' entry point");
  }

  ScopedRegistrar registrar(info->kind);
  try {
    lib.get_alias<llm::PluginRegisterFn>(kRegisterSymbol)(registrar);
  } catch (const std::exception& e) {
    return refuse(std::string("threw while registering: ") + e.what());
  } catch (...) {
    return refuse("threw a non-standard exception while registering");
  }
  if (registrar.names.empty()) return refuse("registered no features");
  for (size_t i = 0; i < registrar.names.size(); ++i) {
    const auto& feature = registrar.names[i];
    if (feature.empty()) return refuse("registered a feature with an empty name");
    if (auto it = feature_owner_.find(feature); it != feature_owner_.end()) {
      return refuse("duplicate feature name '" + feature + "': already provided by " +
                    it->second.string());
    }
    for (size_t j = 0; j < i; ++j) {
      if (registrar.names[j] == feature) return refuse("registered '" + feature + "' twice");
    }
  }

  for (const auto& feature : registrar.names) feature_owner_[feature] = path;
  for (auto& f : registrar.families) families_.push_back(std::move(f));
  for (auto& d : registrar.datasets) datasets_[d->name()] = std::move(d);
  for (auto& a : registrar.adapters) adapters_[a->name()] = std::move(a);
  for (auto& t : registrar.tasks) eval_tasks_[t->name()] = std::move(t);
  loaded_.push_back({path, info->kind, name, info->version != nullptr ? info->version : "",
                     info->description != nullptr ? info->description : "", registrar.names});
}

const std::vector<std::shared_ptr<llm::ModelFamily>>& PluginRegistry::model_families() const {
  return families_;
}

std::shared_ptr<llm::ModelFamily> PluginRegistry::family_for(const llm::ModelConfig& config) const {
  for (const auto& family : families_) {
    if (family->recognises(config)) return family;
  }
  std::vector<std::string> supported;
  for (const auto& family : families_) {
    supported.push_back(family->name() + " (model_type " + join(family->model_types(), "/") + ", " +
                        join(family->architectures(), "/") + ")");
  }
  throw llm::UserError(config.source + ": unknown model_type '" + config.model_type +
                       "' (architectures: [" + join(config.architectures, ", ") +
                       "]); the loaded model plugins support: " +
                       (supported.empty() ? std::string("none (no model plugin was loaded)")
                                          : join(supported, "; ")));
}

namespace {
template <typename Map>
auto find_feature(const Map& features, const std::string& name, const char* what) {
  if (auto it = features.find(name); it != features.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [key, value] : features) names.push_back(key);
  throw llm::UserError(
      "unknown " + std::string(what) + " '" + name + "'; available: " +
      (names.empty() ? std::string("none (no such plugin was loaded)") : join(names, ", ")));
}
}  // namespace

std::shared_ptr<llm::Dataset> PluginRegistry::dataset(const std::string& name) const {
  return find_feature(datasets_, name, "dataset");
}
std::shared_ptr<llm::Adapter> PluginRegistry::adapter(const std::string& name) const {
  return find_feature(adapters_, name, "adapter");
}
std::vector<std::shared_ptr<llm::Adapter>> PluginRegistry::adapters() const {
  std::vector<std::shared_ptr<llm::Adapter>> list;
  for (const auto& [name, a] : adapters_) list.push_back(a);
  return list;
}

std::shared_ptr<llm::Adapter> PluginRegistry::adapter_for_peft_type(
    const std::string& peft_type, const std::string& source) const {
  const auto upper = [](std::string text) {
    for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
  };
  std::vector<std::string> known;
  for (const auto& [name, a] : adapters_) {
    const std::string type = a->peft_type();
    if (type.empty()) continue;
    if (upper(type) == upper(peft_type)) return a;
    known.push_back(type + " (" + name + ")");
  }
  throw llm::UserError(source + ": no adapter plugin loads peft_type '" + peft_type +
                       "'; loaded: " + (known.empty() ? std::string("none") : join(known, ", ")));
}

std::shared_ptr<llm::EvalTask> PluginRegistry::eval_task(const std::string& name) const {
  return find_feature(eval_tasks_, name, "eval task");
}

std::vector<std::string> PluginRegistry::feature_names(llm::PluginKind kind) const {
  std::vector<std::string> names;
  switch (kind) {
    case llm::PluginKind::kModel:
      for (const auto& f : families_) names.push_back(f->name());
      break;
    case llm::PluginKind::kDataset:
      for (const auto& [name, d] : datasets_) names.push_back(name);
      break;
    case llm::PluginKind::kAdapter:
      for (const auto& [name, a] : adapters_) names.push_back(name);
      break;
    case llm::PluginKind::kEvalTask:
      for (const auto& [name, t] : eval_tasks_) names.push_back(name);
      break;
  }
  return names;
}

LoadedModel load_model(const PluginRegistry& registry, const fs::path& checkpoint_dir,
                       const torch::Device& device, torch::ScalarType dtype, bool random_init,
                       uint64_t seed, llm::QuantizeScheme quantize) {
  LoadedModel loaded;
  loaded.config = llm::read_model_config(checkpoint_dir);
  loaded.family = registry.family_for(loaded.config);
  loaded.family->validate(loaded.config);
  const bool quantized = quantize != llm::QuantizeScheme::kNone;
  const auto options =
      torch::TensorOptions().device(quantized ? torch::Device(torch::kCPU) : device).dtype(dtype);
  loaded.model = loaded.family->build(loaded.config, options);
  llm::check_quantizable(*loaded.model, quantize);  // before any weight is read
  if (random_init) {
    llm::random_init(*loaded.model, seed);
  } else {
    llm::load_weights(*loaded.model, checkpoint_dir);
  }
  if (quantized) {
    loaded.quantized = llm::quantize_frozen_linears(*loaded.model, quantize, device);
    loaded.model->to(device);
  }
  for (auto& parameter : loaded.model->parameters()) parameter.set_requires_grad(false);
  loaded.model->eval();
  return loaded;
}

}  // namespace llmhost
