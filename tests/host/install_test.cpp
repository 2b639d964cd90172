// Swapping eval tasks without recompiling: install llmhost + SDK to a temporary prefix, build
// examples/ against the installed package only (find_package(llmsdk)), drop the plugin into a
// plugin directory, and evaluate with it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"

namespace llm {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

int shell(const std::string& command, const fs::path& log) {
  return std::system((command + " >>" + quoted(log) + " 2>&1").c_str());
}

// The example's CMAKE_PREFIX_PATH: the install prefix, then wherever this build found its own
// dependencies (LibTorch from a wheel, say).
std::string example_prefix_path(const fs::path& install_prefix) {
  std::string paths = install_prefix.string();
  std::string inherited = LLMHOST_BUILD_PREFIX_PATH;
  for (auto& c : inherited) {
    if (c == '|') c = ';';
  }
  if (!inherited.empty()) paths += ";" + inherited;
  return paths;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(InstalledSdk, OutOfTreeTaskPluginBuildsAndRunsInTheInstalledHost) {
  test::TempDir tmp;
  const auto log = tmp.path() / "log.txt";
  const auto build_dir = fs::path(LLMHOST_BINARY).parent_path().parent_path();
  const auto prefix = tmp.path() / "prefix";
  ASSERT_EQ(shell("cmake --install " + quoted(build_dir) + " --prefix " + quoted(prefix), log), 0)
      << slurp(log);
  ASSERT_TRUE(fs::exists(prefix / "bin" / "llmhost"));

  const auto example_build = tmp.path() / "example-build";
  const std::string launcher = std::system("command -v ccache >/dev/null 2>&1") == 0
                                   ? " -DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
                                   : "";
  ASSERT_EQ(shell("cmake -S " + quoted(test::source_dir() / "examples") + " -B " +
                      quoted(example_build) + " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" +
                      quoted(fs::path(example_prefix_path(prefix))) + launcher,
                  log),
            0)
      << slurp(log);
  ASSERT_EQ(shell("cmake --build " + quoted(example_build), log), 0) << slurp(log);

  const auto plugins = tmp.path() / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(example_build / "libllm_yes_no.so", plugins / "libllm_yes_no.so");
  const auto data = tmp.path() / "data";
  fs::create_directories(data);
  std::ofstream(data / "yes_no.jsonl") << "{\"question\": \"Is 3 + 4 equal to 7?\", \"answer\": "
                                          "\"yes\"}\n"
                                       << "{\"question\": \"Is the sun cold?\", \"answer\": "
                                          "\"no\"}\n";

  // Installed plugins and the dropped-in one serve the same run.
  fs::copy_file(test::data_dir() / "eval-data" / "arithmetic_1dc.jsonl",
                data / "arithmetic_1dc.jsonl");
  const auto results = tmp.path() / "results.json";
  ASSERT_EQ(shell(quoted(prefix / "bin" / "llmhost") + " --task evaluate --plugin_dir " +
                      quoted(plugins) + " --checkpoint_dir " +
                      quoted(test::data_dir() / "tiny-pythia-trained") +
                      " --eval_tasks '[yes_no, arithmetic_1dc]' --data_dir " + quoted(data) +
                      " --save_filepath " + quoted(results),
                  log),
            0)
      << slurp(log);
  const auto json = read_json_file(results);
  EXPECT_TRUE(json["results"]["yes_no"].contains("acc")) << json.dump();
  EXPECT_EQ(json["versions"]["yes_no"], 0);
  EXPECT_EQ(json["results"]["arithmetic_1dc"]["acc"], 1.0);  // the trained model knows these
}

}  // namespace
}  // namespace llm
