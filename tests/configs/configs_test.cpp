// Every file under configs/ must parse, name a registered task, and use only that task's options
// (and those its plugin declares, e.g. LoRA's) with values of the right type: a recipe that drifted
// from the CLI fails here, not on a GPU.
#include <gtest/gtest.h>

#include <algorithm>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"
#include "task.hpp"

namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

// Options every task accepts (declared by the CLI itself).
const std::vector<std::string> kCommonKeys = {"plugin", "format", "plugin_dir"};

std::vector<fs::path> config_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(llm::test::source_dir() / "configs")) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string scalar_text(const llm::Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

TEST(Configs, EveryFileUsesOnlyDeclaredOptionsOfItsTask) {
  const auto files = config_files();
  ASSERT_GE(files.size(), 4u);
  llmhost::PluginRegistry registry;
  registry.load_directories({llm::test::plugin_dir()});
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    const llm::Json config = llm::read_json_file(file);
    ASSERT_TRUE(config.is_object());
    const std::string task_name = config.value("task", file.parent_path().filename().string());
    const auto& tasks = llmhost::registered_tasks();
    const auto task = std::find_if(tasks.begin(), tasks.end(),
                                   [&](const auto& t) { return t.name == task_name; });
    ASSERT_NE(task, tasks.end()) << "no task '" << task_name << "'";
    po::options_description options;
    task->declare_options(options);
    if (task->declare_plugin_options) {
      task->declare_plugin_options(options, registry, config.value("plugin", std::string()),
                                   /*help=*/false);
    }
    std::vector<std::string> args;
    for (const auto& [key, value] : config.items()) {
      if (key.empty() || key[0] == '_' || key == "task") continue;
      if (std::find(kCommonKeys.begin(), kCommonKeys.end(), key) != kCommonKeys.end()) continue;
      EXPECT_NE(options.find_nothrow(key, false), nullptr) << "undeclared key '" << key << "'";
      if (options.find_nothrow(key, false) != nullptr)
        args.push_back("--" + key + "=" + scalar_text(value));
    }
    po::variables_map values;
    EXPECT_NO_THROW(po::store(po::command_line_parser(args).options(options).run(), values))
        << "a value has the wrong type";
  }
}

TEST(Configs, FinetuneRecipesCarryTheTutorialHyperParameters) {
  const auto config =
      llm::read_json_file(llm::test::source_dir() / "configs/finetune/lora-pythia-160m-dolly.json");
  EXPECT_DOUBLE_EQ(config.at("learning_rate").get<double>(), 3e-4);
  EXPECT_EQ(config.at("batch_size").get<int64_t>(), 128);
  EXPECT_EQ(config.at("micro_batch_size").get<int64_t>(), 4);
  EXPECT_DOUBLE_EQ(config.at("weight_decay").get<double>(), 0.01);
  EXPECT_EQ(config.at("warmup_steps").get<int64_t>(), 100);
  EXPECT_EQ(config.at("eval_interval").get<int64_t>(), 100);
  EXPECT_EQ(config.at("save_interval").get<int64_t>(), 100);
}

}  // namespace
