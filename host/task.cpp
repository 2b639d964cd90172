#include "task.hpp"

#include "llm/error.hpp"

namespace llmhost {

TaskContext::TaskContext(const po::variables_map& values, PluginRegistry& registry,
                         bool json_output, std::ostream& out, std::ostream& err)
    : values_(values), registry_(registry), json_output_(json_output), out_(out), err_(err) {}

bool TaskContext::has(const std::string& key) const { return values_.count(key) > 0; }

std::string TaskContext::format() const {
  return has("format") ? values_["format"].as<std::string>() : "text";
}

std::string TaskContext::plugin(bool required) const {
  if (has("plugin")) return values_["plugin"].as<std::string>();
  if (required) throw llm::UserError("--plugin is required for this task");
  return "";
}

namespace {
std::vector<TaskSpec>& task_table() {
  static std::vector<TaskSpec> tasks;
  return tasks;
}
}  // namespace

bool register_task(TaskSpec spec) {
  task_table().push_back(std::move(spec));
  return true;
}

const std::vector<TaskSpec>& registered_tasks() { return task_table(); }

void add_device_options(po::options_description& options) {
  options.add_options()                                                                  //
      ("device", po::value<std::string>()->default_value("cpu"), "cpu | cuda | cuda:N")  //
      ("precision", po::value<std::string>(),
       "fp32 | bf16 | fp16 (default: bf16 on CUDA, fp32 on CPU)");
}

void add_checkpoint_option(po::options_description& options) {
  options.add_options()(
      "checkpoint_dir", po::value<std::string>()->required(),
      "Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer)");
}

}  // namespace llmhost
