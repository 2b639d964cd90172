#pragma once
// A --task is one file under host/tasks/ that registers itself:
//
//   namespace {
//   void declare(po::options_description& o) {
//     o.add_options()("prompt", po::value<std::string>()->required(), "text to continue");
//   }
//   int run(llmhost::TaskContext& ctx) { ... return llm::kExitOk; }
//   const bool registered = llmhost::register_task({"generate", "continue a prompt", declare,
//   run});
//   }
//
// Values come from the command line, then from --config FILE (a JSON object whose keys are option
// names); the command line wins. Bad values become UserError naming the flag (exit 2).
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "llm/json_file.hpp"
#include "llm/nn/quantize.hpp"
#include "plugin_registry.hpp"

namespace llmhost {

namespace po = boost::program_options;

class TaskContext {
 public:
  TaskContext(const po::variables_map& values, PluginRegistry& registry, bool json_output,
              std::ostream& out, std::ostream& err);

  bool has(const std::string& key) const;  // given on the command line, in --config, or defaulted
  template <typename T>
  T get(const std::string& key) const {
    return values_[key].as<T>();
  }
  // The --plugin value; UserError naming --plugin when it is required and absent.
  std::string plugin(bool required) const;

  PluginRegistry& registry() const { return registry_; }
  bool json_output() const { return json_output_; }  // --format json: print one JSON object
  std::string format() const;                        // the --format value
  std::ostream& out() const { return out_; }         // results (stdout)
  std::ostream& err() const { return err_; }         // progress and diagnostics (stderr)

 private:
  const po::variables_map& values_;
  PluginRegistry& registry_;
  bool json_output_;
  std::ostream& out_;
  std::ostream& err_;
};

struct TaskSpec {
  std::string name;
  std::string summary;  // one line, for --help
  std::function<void(po::options_description&)> declare_options;
  std::function<int(TaskContext&)> run;
  std::vector<std::string> formats = {"text", "json"};  // accepted --format values
  // Options the loaded plugins declare for this task (an adapter's hyper-parameters), added to
  // `options` for the plugin the run names (`plugin`, from --plugin or --config; "" when none is
  // named: then `help` lists every plugin's, each under its own title). Optional.
  std::function<void(po::options_description& options, const PluginRegistry& registry,
                     const std::string& plugin, bool help)>
      declare_plugin_options = nullptr;
};

// Called from a static initialiser in the task's file; returns true.
bool register_task(TaskSpec spec);
const std::vector<TaskSpec>& registered_tasks();

// Options several tasks share, declared identically everywhere.
void add_device_options(po::options_description& options);     // --device, --precision
void add_checkpoint_option(po::options_description& options);  // --checkpoint_dir (required)
void add_quantize_option(po::options_description& options);    // --quantize
// An adapter's own options (llm::AdapterOption) as flags; UserError when one clashes with a flag
// the task already has.
void add_adapter_options(po::options_description& options, const llm::Adapter& adapter);
// The adapter's option values, by name, for Adapter::attach.
llm::Json adapter_settings(const TaskContext& ctx, const llm::Adapter& adapter);
// The adapter plugin that loads the adapter directory given as --FLAG: the one whose peft_type is
// the directory's adapter_config.json "peft_type". UserError naming the flag or file otherwise.
std::shared_ptr<llm::Adapter> adapter_for_directory(const TaskContext& ctx,
                                                    const std::string& flag);

// --precision, or the device's default; when that default applies on CUDA, one line on stderr
// says which and why (a Turing card gets fp16, not bf16).
torch::ScalarType task_precision(const TaskContext& ctx, const torch::Device& device);
llm::QuantizeScheme task_quantize(const TaskContext& ctx);  // UserError naming --quantize

}  // namespace llmhost
