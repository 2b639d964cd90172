#include "task.hpp"

#include <filesystem>
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

void add_adapter_options(po::options_description& options, const llm::Adapter& adapter) {
  using Type = llm::AdapterOption::Type;
  for (const auto& option : adapter.options()) {
    if (options.find_nothrow(option.name, false) != nullptr) {
      throw llm::UserError("adapter plugin '" + adapter.name() + "' declares --" + option.name +
                           ", which the task already has");
    }
    const auto& fallback = option.default_value;
    const char* name = option.name.c_str();
    const char* help = option.help.c_str();
    try {
      switch (option.type) {
        case Type::kInteger:
          options.add_options()(name, po::value<int64_t>()->default_value(fallback.get<int64_t>()),
                                help);
          break;
        case Type::kNumber:
          options.add_options()(name, po::value<double>()->default_value(fallback.get<double>()),
                                help);
          break;
        case Type::kBoolean:
          options.add_options()(
              name, po::value<bool>()->default_value(fallback.get<bool>())->implicit_value(true),
              help);
          break;
        case Type::kString:
          options.add_options()(
              name, po::value<std::string>()->default_value(fallback.get<std::string>()), help);
          break;
      }
    } catch (const llm::Json::exception&) {
      throw llm::UserError("adapter plugin '" + adapter.name() + "': the default of --" +
                           option.name + " is not of the option's type");
    }
  }
}

llm::Json adapter_settings(const TaskContext& ctx, const llm::Adapter& adapter) {
  using Type = llm::AdapterOption::Type;
  llm::Json settings = llm::Json::object();
  for (const auto& option : adapter.options()) {
    switch (option.type) {
      case Type::kInteger:
        settings[option.name] = ctx.get<int64_t>(option.name);
        break;
      case Type::kNumber:
        settings[option.name] = ctx.get<double>(option.name);
        break;
      case Type::kBoolean:
        settings[option.name] = ctx.get<bool>(option.name);
        break;
      case Type::kString:
        settings[option.name] = ctx.get<std::string>(option.name);
        break;
    }
  }
  return settings;
}

std::shared_ptr<llm::Adapter> adapter_for_directory(const TaskContext& ctx,
                                                    const std::string& flag) {
  namespace fs = std::filesystem;
  const fs::path dir = ctx.get<std::string>(flag);
  if (!fs::is_directory(dir)) {
    throw llm::UserError("--" + flag + " '" + dir.string() +
                         "' is not a directory (expected an adapter: adapter_config.json and its "
                         "weights, PEFT's layout)");
  }
  const fs::path config_file = dir / "adapter_config.json";
  const llm::Json config = llm::read_json_file(config_file);
  if (!config.is_object() || !config.contains("peft_type") || !config["peft_type"].is_string()) {
    throw llm::UserError(config_file.string() +
                         ": expected a \"peft_type\" string (PEFT's adapter_config.json)");
  }
  return ctx.registry().adapter_for_peft_type(config["peft_type"].get<std::string>(),
                                              config_file.string());
}

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
