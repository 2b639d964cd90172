// Plugins are code that runs as the user: the loader warns about files others can change, and
// never looks in the current directory on its own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>

#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;

// A private copy of the loader's "good" test plugin in its own directory.
fs::path copy_good_plugin(const fs::path& dir) {
  const fs::path from = llm::test::test_plugin_dir("good") / "libllm_good.so";
  fs::create_directories(dir);
  fs::copy_file(from, dir / from.filename());
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  return dir / from.filename();
}

std::vector<std::string> warnings_after_loading(const fs::path& plugin) {
  llmhost::PluginRegistry registry;
  registry.load_file(plugin);
  EXPECT_EQ(registry.loaded().size(), 1u) << "a warning must not refuse the plugin";
  std::vector<std::string> reasons;
  for (const auto& warning : registry.warnings()) reasons.push_back(warning.reason);
  return reasons;
}

TEST(PluginPermissions, PrivatePluginLoadsWithoutWarning) {
  llm::test::TempDir dir;
  const auto plugin = copy_good_plugin(dir.path() / "plugins");
  EXPECT_TRUE(warnings_after_loading(plugin).empty());
}

TEST(PluginPermissions, WorldWritablePluginFileIsLoadedWithAWarning) {
  llm::test::TempDir dir;
  const auto plugin = copy_good_plugin(dir.path() / "plugins");
  fs::permissions(plugin, fs::perms::others_write, fs::perm_options::add);
  const auto warnings = warnings_after_loading(plugin);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("world-writable"), std::string::npos) << warnings[0];
}

TEST(PluginPermissions, PluginInAWorldWritableDirectoryWithoutStickyBitGetsAWarning) {
  llm::test::TempDir dir;
  const auto plugin = copy_good_plugin(dir.path() / "plugins");
  fs::permissions(plugin.parent_path(), fs::perms::others_write, fs::perm_options::add);
  const auto warnings = warnings_after_loading(plugin);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("world-writable directory"), std::string::npos) << warnings[0];
}

TEST(PluginPermissions, TheBinaryPrintsTheWarningOnStderr) {
  llm::test::TempDir dir;
  const auto plugin = copy_good_plugin(dir.path() / "plugins");
  fs::permissions(plugin, fs::perms::others_write, fs::perm_options::add);
  const auto result =
      llm::test::run_llmhost({"--task", "list", "--plugin_dir", plugin.parent_path().string()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("llmhost: warning: plugin " + plugin.string() + " is world-writable"),
            std::string::npos)
      << result.err;
}

// Restores the working directory and LLMHOST_PLUGIN_PATH when the test ends.
class ScopedCwdAndNoPluginPath {
 public:
  explicit ScopedCwdAndNoPluginPath(const fs::path& cwd) : old_cwd_(fs::current_path()) {
    if (const char* value = std::getenv("LLMHOST_PLUGIN_PATH")) old_path_ = value;
    ::unsetenv("LLMHOST_PLUGIN_PATH");
    fs::current_path(cwd);
  }
  ~ScopedCwdAndNoPluginPath() {
    fs::current_path(old_cwd_);
    if (old_path_) ::setenv("LLMHOST_PLUGIN_PATH", old_path_->c_str(), 1);
  }

 private:
  fs::path old_cwd_;
  std::optional<std::string> old_path_;
};

TEST(PluginSearchPath, NeverIncludesTheCurrentDirectoryImplicitly) {
  llm::test::TempDir dir;
  copy_good_plugin(dir.path());
  ScopedCwdAndNoPluginPath scoped(dir.path());
  const auto cwd = fs::weakly_canonical(dir.path());
  for (const char* env : {static_cast<const char*>(nullptr), "", ":", "::"}) {
    if (env != nullptr) ::setenv("LLMHOST_PLUGIN_PATH", env, 1);
    const auto search = llmhost::PluginRegistry::default_search_path({});
    EXPECT_EQ(std::count(search.begin(), search.end(), cwd), 0)
        << "LLMHOST_PLUGIN_PATH=" << (env ? env : "(unset)");
    llmhost::PluginRegistry registry;
    registry.load_directories(search);
    for (const auto& plugin : registry.loaded()) EXPECT_NE(plugin.name, "good") << plugin.path;
  }
}

}  // namespace
