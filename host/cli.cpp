#include "cli.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>

#include <c10/util/Exception.h>

#include "llm/error.hpp"
#include "llm/json_file.hpp"
#include "plugin_registry.hpp"
#include "task.hpp"

namespace llmhost {

namespace {

const char* kUsage =
    "usage: llmhost --task TASK [--plugin NAME] [--config FILE.json] [--key value ...]\n"
    "       llmhost --task TASK --help     options of one task\n";

po::options_description common_options() {
  po::options_description options("Common options");
  options.add_options()                                                                      //
      ("task", po::value<std::string>(), "what to do (see the list below)")                  //
      ("plugin", po::value<std::string>(), "plugin the task uses (e.g. lora, dolly)")        //
      ("config", po::value<std::string>(), "JSON file of option values; flags override it")  //
      ("plugin_dir", po::value<std::vector<std::string>>()->composing(),
       "extra plugin directory, searched first (repeatable)")                             //
      ("format", po::value<std::string>()->default_value("text"), "output: text | json")  //
      ("help", "show help");
  return options;
}

const TaskSpec* find_task(const std::string& name) {
  for (const auto& task : registered_tasks()) {
    if (task.name == name) return &task;
  }
  return nullptr;
}

std::string task_names() {
  std::vector<std::string> names;
  for (const auto& task : registered_tasks()) names.push_back(task.name);
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void print_general_help(std::ostream& out) {
  out << kUsage << "\nTasks:\n";
  auto tasks = registered_tasks();
  std::sort(tasks.begin(), tasks.end(),
            [](const TaskSpec& a, const TaskSpec& b) { return a.name < b.name; });
  for (const auto& task : tasks) out << "  " << task.name << "\t" << task.summary << "\n";
  out << "\n" << common_options();
}

bool is_bool_option(const po::option_description& option) {
  return dynamic_cast<const po::typed_value<bool>*>(option.semantic().get()) != nullptr;
}

const po::option_description* find_option(const po::options_description& all,
                                          const std::string& name) {
  return all.find_nothrow(name, /*approx=*/false);
}

// "--flag true" and "--flag" both work for boolean flags: join "--flag value" into "--flag=value".
std::vector<std::string> join_bool_values(const std::vector<std::string>& args,
                                          const po::options_description& all) {
  static const std::set<std::string> kBoolWords{"true", "false", "1",   "0",    "yes",
                                                "no",   "on",    "off", "True", "False"};
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) == 0 && arg.find('=') == std::string::npos && i + 1 < args.size()) {
      const auto* option = find_option(all, arg.substr(2));
      if (option != nullptr && is_bool_option(*option) && kBoolWords.count(args[i + 1]) > 0) {
        std::string value = args[i + 1];
        std::transform(value.begin(), value.end(), value.begin(), ::tolower);
        out.push_back(arg + "=" + value);
        ++i;
        continue;
      }
    }
    out.push_back(arg);
  }
  return out;
}

// A --config JSON object becomes "--key=value" tokens parsed like the command line.
std::vector<std::string> config_tokens(const std::string& file, const po::options_description& all,
                                       const std::string& task) {
  const llm::Json config = llm::read_json_file(file);
  if (!config.is_object()) throw llm::UserError(file + ": expected a JSON object of option values");
  std::vector<std::string> tokens;
  for (const auto& item : config.items()) {
    // Named copies, not a structured binding: C++17 lambdas cannot capture bindings (clang).
    const std::string& key = item.key();
    const llm::Json& value = item.value();
    if (!key.empty() && key[0] == '_') continue;  // "_comment" and friends
    if (key == "task") continue;
    if (find_option(all, key) == nullptr) {
      throw llm::UserError(file + ": unknown key '" + key + "' for --task " + task +
                           " (see llmhost --task " + task + " --help)");
    }
    auto scalar = [&](const llm::Json& v) -> std::string {
      if (v.is_string()) return v.get<std::string>();
      if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
      if (v.is_number()) return v.dump();
      throw llm::UserError(file + ": key '" + key + "' must be a string, number or boolean");
    };
    if (value.is_array()) {
      std::string joined;
      for (const auto& element : value) joined += (joined.empty() ? "" : ",") + scalar(element);
      tokens.push_back("--" + key + "=" + joined);
    } else if (!value.is_null()) {
      tokens.push_back("--" + key + "=" + scalar(value));
    }
  }
  return tokens;
}

// A results line lost on a full disk or a closed pipe is a failed run, not exit 0.
void require_stdout_written() {
  errno = 0;
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    const int err = errno;
    std::clearerr(stdout);
    throw llm::UserError(std::string("cannot write the results to standard output: ") +
                         (err != 0 ? std::strerror(err) : "write error"));
  }
}

// The --config file as read before the full parse, once, for what decides the plugins ("plugin",
// "plugin_dir"); null without one, or when it cannot be read (the full parse reports that).
llm::Json early_config(const po::variables_map& first) {
  if (!first.count("config")) return nullptr;
  try {
    llm::Json config = llm::read_json_file(first["config"].as<std::string>());
    if (config.is_object()) return config;
  } catch (const llm::UserError&) {
  }
  return nullptr;
}

// --plugin_dir (repeatable, searched first; the command line's, then --config's, as the full parse
// composes them), then the default search path.
void load_plugins(PluginRegistry& registry, const po::variables_map& first,
                  const llm::Json& config) {
  std::vector<std::string> dirs;
  if (first.count("plugin_dir")) dirs = first["plugin_dir"].as<std::vector<std::string>>();
  if (config.is_object() && config.contains("plugin_dir")) {
    const llm::Json& configured = config["plugin_dir"];
    if (configured.is_string()) dirs.push_back(configured.get<std::string>());
    if (configured.is_array()) {
      for (const auto& dir : configured) {
        if (dir.is_string()) dirs.push_back(dir.get<std::string>());
      }
    }
  }
  std::vector<std::filesystem::path> explicit_dirs;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      const bool unreadable = ec && ec != std::errc::no_such_file_or_directory;
      throw llm::UserError(
          "--plugin_dir '" + dir + "' " +
          (unreadable ? "cannot be read: " + ec.message() : std::string("is not a directory")));
    }
    explicit_dirs.emplace_back(dir);
  }
  registry.load_directories(PluginRegistry::default_search_path(explicit_dirs));
}

// The plugin a run names before its options are parsed: --plugin, else the --config file's
// "plugin" key; "" when neither does.
std::string named_plugin(const po::variables_map& first, const llm::Json& config) {
  if (first.count("plugin")) return first["plugin"].as<std::string>();
  if (config.is_object() && config.contains("plugin") && config["plugin"].is_string()) {
    return config["plugin"].get<std::string>();
  }
  return "";
}

int run_task(const std::vector<std::string>& raw_args, po::variables_map& values) {
  // First pass: only --task and --help, to know which options to declare.
  po::options_description common = common_options();
  po::variables_map first;
  po::store(po::command_line_parser(raw_args).options(common).allow_unregistered().run(), first);
  if (!first.count("task")) {
    if (first.count("help")) {
      print_general_help(std::cout);
      require_stdout_written();
      return llm::kExitOk;
    }
    throw llm::UserError("--task is required (one of: " + task_names() + ")");
  }
  const std::string task_name = first["task"].as<std::string>();
  const TaskSpec* task = find_task(task_name);
  if (task == nullptr) {
    throw llm::UserError("unknown --task '" + task_name + "' (one of: " + task_names() + ")");
  }

  // The registry outlives every object the task creates from plugin code. A task whose plugins
  // declare options (an adapter's lora_r, ...) loads them before declaring; the others after the
  // parse, so their --help and bad flags cost no plugin loading.
  PluginRegistry registry;
  const llm::Json config = early_config(first);
  const bool plugins_declare = static_cast<bool>(task->declare_plugin_options);
  if (plugins_declare) load_plugins(registry, first, config);

  po::options_description task_options("Options of --task " + task_name);
  task->declare_options(task_options);
  po::options_description plugin_options;
  if (plugins_declare) {
    task->declare_plugin_options(plugin_options, registry, named_plugin(first, config),
                                 first.count("help") > 0);
  }
  po::options_description all;
  all.add(common).add(task_options).add(plugin_options);
  if (first.count("help")) {
    std::cout << kUsage << "\n" << task->summary << "\n\n" << task_options << "\n";
    if (!plugin_options.options().empty()) std::cout << plugin_options << "\n";
    std::cout << common;
    require_stdout_written();
    return llm::kExitOk;
  }

  const auto style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
  po::store(
      po::command_line_parser(join_bool_values(raw_args, all)).options(all).style(style).run(),
      values);
  if (values.count("config")) {
    const auto file = values["config"].as<std::string>();
    po::store(po::command_line_parser(config_tokens(file, all, task_name))
                  .options(all)
                  .style(style)
                  .run(),
              values);
  }
  po::notify(values);

  const std::string format = values["format"].as<std::string>();
  if (std::find(task->formats.begin(), task->formats.end(), format) == task->formats.end()) {
    std::string allowed;
    for (const auto& f : task->formats) allowed += (allowed.empty() ? "" : " | ") + f;
    throw llm::UserError("--format '" + format + "' is not one of " + allowed);
  }

  if (!plugins_declare) load_plugins(registry, first, config);
  for (const auto& unsafe : registry.warnings()) {
    std::cerr << "llmhost: warning: plugin " << unsafe.path.string() << " " << unsafe.reason
              << "\n";
  }
  if (task_name != "list") {
    for (const auto& refused : registry.refused()) {
      std::cerr << "llmhost: warning: plugin " << refused.path.string()
                << " refused: " << refused.reason << "\n";
    }
  }

  TaskContext context(values, registry, format == "json", std::cout, std::cerr);
  const int code = task->run(context);
  require_stdout_written();
  return code;
}

// The flag whose path value is `path` or holds it (the longest such value), or "".
std::string flag_of_path(const po::variables_map& values, const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return "";
  std::error_code ec;
  const fs::path target = fs::absolute(path, ec).lexically_normal();
  std::string best;
  size_t best_depth = 0;
  auto consider = [&](const std::string& flag, const std::string& value) {
    if (value.empty()) return;
    fs::path given = fs::absolute(value, ec).lexically_normal();
    if (given.filename().empty()) given = given.parent_path();
    size_t depth = 0;
    auto t = target.begin();
    for (auto g = given.begin(); g != given.end(); ++g, ++t, ++depth) {
      if (t == target.end() || *t != *g) return;
    }
    if (depth > best_depth) {
      best = flag;
      best_depth = depth;
    }
  };
  for (const auto& [flag, value] : values) {
    if (const auto* text = boost::any_cast<std::string>(&value.value())) consider(flag, *text);
    if (const auto* list = boost::any_cast<std::vector<std::string>>(&value.value())) {
      for (const auto& item : *list) consider(flag, item);
    }
  }
  return best;
}

// Any OS error on a path the user gave is bad input: name the flag, the path and the reason. The
// tasks check their outputs up front (output_path.hpp); this catches the rest.
int run_task_reporting_paths(const std::vector<std::string>& raw_args) {
  po::variables_map values;
  try {
    return run_task(raw_args, values);
  } catch (const std::filesystem::filesystem_error& e) {
    for (const auto& path : {e.path1(), e.path2()}) {
      const std::string flag = flag_of_path(values, path);
      if (!flag.empty()) {
        throw llm::UserError("--" + flag + ": '" + path.string() + "': " + e.code().message());
      }
    }
    throw;
  }
}

}  // namespace

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return run_task_reporting_paths(args);
  } catch (const llm::UserError& e) {
    std::cerr << "llmhost: error: " << e.what() << "\n";
    return llm::kExitBadInput;
  } catch (const po::error& e) {
    std::cerr << "llmhost: error: " << e.what() << " (see llmhost --help)\n";
    return llm::kExitBadInput;
  } catch (const c10::Error& e) {
    std::cerr << "llmhost: internal error: " << e.what_without_backtrace() << "\n";
    return llm::kExitInternal;
  } catch (const std::exception& e) {
    std::cerr << "llmhost: internal error: " << e.what() << "\n";
    return llm::kExitInternal;
  }
}

}  // namespace llmhost
