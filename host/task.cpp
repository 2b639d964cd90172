#include "task.hpp"

#include <ostream>

#include "llm/device.hpp"
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
       "fp32 | bf16 | fp16 (default: fp32 on CPU; on CUDA bf16, or fp16 below compute capability "
       "8.0)");
}

void add_checkpoint_option(po::options_description& options) {
  options.add_options()(
      "checkpoint_dir", po::value<std::string>()->required(),
      "Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer)");
}

void add_quantize_option(po::options_description& options) {
  options.add_options()(
      "quantize", po::value<std::string>()->default_value("none"),
      "store the frozen base Linear weights compressed: nf4 (QLoRA's 4-bit NormalFloat, blocks "
      "of 64), bnb.nf4-dq (nf4 plus 8-bit block scales); also bnb.nf4; none");
}

torch::ScalarType task_precision(const TaskContext& ctx, const torch::Device& device) {
  if (ctx.has("precision")) return llm::parse_precision(ctx.get<std::string>("precision"), device);
  if (device.is_cuda()) ctx.err() << "llmhost: " << llm::default_precision_reason(device) << "\n";
  return llm::parse_precision("", device);
}

llm::QuantizeScheme task_quantize(const TaskContext& ctx) {
  return ctx.has("quantize") ? llm::parse_quantize(ctx.get<std::string>("quantize"))
                             : llm::QuantizeScheme::kNone;
}

}  // namespace llmhost
