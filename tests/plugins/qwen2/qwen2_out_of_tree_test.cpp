// plugins/models/qwen2 is one folder that builds on its own: install llmhost and the SDK to a
// temporary prefix, configure the folder standalone against the installed package
// (find_package(llmsdk)), build it, and load the result through llmhost --plugin_dir in place of
// the installed copy.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"

namespace llm::test {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int shell(const std::string& command, const fs::path& log) {
  return std::system((command + " >>" + quoted(log) + " 2>&1").c_str());
}

// stdout to `out`, stderr to the log.
int shell_to(const std::string& command, const fs::path& out, const fs::path& log) {
  return std::system((command + " >" + quoted(out) + " 2>>" + quoted(log)).c_str());
}

// Where this build found its dependencies (LibTorch from a wheel, say), from its CMakeCache.txt,
// so the standalone build finds the same ones after the install prefix.
std::string prefix_path(const fs::path& build_dir, const fs::path& install_prefix) {
  std::ifstream cache(build_dir / "CMakeCache.txt");
  std::string line, paths = install_prefix.string();
  const std::string key = "CMAKE_PREFIX_PATH:";
  while (std::getline(cache, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const auto value = line.substr(line.find('=') + 1);
    if (!value.empty()) paths += ";" + value;
  }
  return paths;
}

TEST(Qwen2OutOfTree, FolderBuildsAgainstTheInstalledSdkAndLoadsThroughPluginDir) {
  TempDir tmp;
  const auto log = tmp.path() / "log.txt";
  const auto build_dir = fs::path(LLMHOST_BINARY).parent_path().parent_path();
  const auto prefix = tmp.path() / "prefix";
  ASSERT_EQ(shell("cmake --install " + quoted(build_dir) + " --prefix " + quoted(prefix), log), 0)
      << slurp(log);
  // The standalone build is the qwen2 that loads: --plugin_dir is searched first, and the first
  // of two plugins of one name wins (the build tree's copy, still on the search path, is refused).
  const auto installed = prefix / "lib" / "llmhost" / "plugins" / "libllm_qwen2.so";
  ASSERT_TRUE(fs::exists(installed)) << "the in-tree build installs the plugin";
  fs::remove(installed);

  const auto standalone = tmp.path() / "qwen2-build";
  const std::string launcher = std::system("command -v ccache >/dev/null 2>&1") == 0
                                   ? " -DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
                                   : "";
  ASSERT_EQ(shell("cmake -S " + quoted(source_dir() / "plugins" / "models" / "qwen2") + " -B " +
                      quoted(standalone) + " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" +
                      quoted(fs::path(prefix_path(build_dir, prefix))) + launcher,
                  log),
            0)
      << slurp(log);
  ASSERT_EQ(shell("cmake --build " + quoted(standalone), log), 0) << slurp(log);
  const auto plugins = tmp.path() / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(standalone / "libllm_qwen2.so", plugins / "libllm_qwen2.so");

  const auto llmhost = quoted(prefix / "bin" / "llmhost");
  const auto list = tmp.path() / "list.json";
  ASSERT_EQ(
      shell_to(llmhost + " --task list --format json --plugin_dir " + quoted(plugins), list, log),
      0)
      << slurp(log);
  const auto listed = read_json_file(list);
  bool found = false;
  for (const auto& plugin : listed["plugins"]) {
    if (plugin["name"] != "qwen2") continue;
    found = true;
    EXPECT_EQ(fs::path(plugin["path"].get<std::string>()), plugins / "libllm_qwen2.so");
    EXPECT_EQ(plugin["families"][0]["model_types"], Json::array({"qwen2"}));
  }
  EXPECT_TRUE(found) << listed.dump();

  // A generate with it gives what the in-tree plugin gives.
  const std::string generate = " --task generate --checkpoint_dir " +
                               quoted(data_dir() / "tiny-qwen2") +
                               " --prompt 'The capital of France is' --temperature 0 "
                               "--max_new_tokens 8 --ignore_eos --format json";
  const auto out = tmp.path() / "generate.json";
  ASSERT_EQ(shell_to(llmhost + " --plugin_dir " + quoted(plugins) + generate, out, log), 0)
      << slurp(log);
  const auto in_tree =
      run_llmhost({"--task", "generate", "--checkpoint_dir", (data_dir() / "tiny-qwen2").string(),
                   "--prompt", "The capital of France is", "--temperature", "0", "--max_new_tokens",
                   "8", "--ignore_eos", "--format", "json"});
  ASSERT_EQ(in_tree.exit_code, 0) << in_tree.err;
  EXPECT_EQ(read_json_file(out)["output_ids"], Json::parse(in_tree.out)["output_ids"]);
}

}  // namespace
}  // namespace llm::test
