#include "plugin_registry.hpp"

#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "support/test_support.hpp"

namespace llmhost {
namespace {

using llm::test::test_plugin_dir;

std::string refusal_reason(const PluginRegistry& registry, const std::string& file_stem) {
  for (const auto& r : registry.refused()) {
    if (r.path.stem() == file_stem) return r.reason;
  }
  return "";
}

TEST(PluginRegistry, GoodPluginLoadsWithItsInfoAndFeature) {
  PluginRegistry registry;
  registry.load_directories({test_plugin_dir("good")});
  ASSERT_EQ(registry.loaded().size(), 1u);
  const auto& plugin = registry.loaded()[0];
  EXPECT_EQ(plugin.name, "good");
  EXPECT_EQ(plugin.version, "1.2.3");
  EXPECT_EQ(plugin.kind, llm::PluginKind::kDataset);
  EXPECT_EQ(plugin.path.filename(), "libllm_good.so");
  EXPECT_TRUE(registry.refused().empty());
  EXPECT_EQ(registry.dataset("good_dataset")->name(), "good_dataset");
}

TEST(PluginRegistry, WrongAbiVersionIsRefusedNamingBothVersions) {
  PluginRegistry registry;
  registry.load_directories({test_plugin_dir("wrong_abi")});
  EXPECT_TRUE(registry.loaded().empty());
  const auto reason = refusal_reason(registry, "libllm_wrong_abi");
  EXPECT_NE(reason.find("SDK ABI version mismatch"), std::string::npos) << reason;
  EXPECT_NE(reason.find("999"), std::string::npos) << reason;
  EXPECT_NE(reason.find("expects " + std::to_string(llm::kSdkAbiVersion)), std::string::npos)
      << reason;
}

TEST(PluginRegistry, WrongTorchVersionIsRefusedNamingBothVersions) {
  PluginRegistry registry;
  registry.load_directories({test_plugin_dir("wrong_torch")});
  EXPECT_TRUE(registry.loaded().empty());
  const auto reason = refusal_reason(registry, "libllm_wrong_torch");
  EXPECT_NE(reason.find("LibTorch version mismatch"), std::string::npos) << reason;
  EXPECT_NE(reason.find("99.7"), std::string::npos) << reason;
}

TEST(PluginRegistry, LibraryWithoutEntryPointIsRefused) {
  PluginRegistry registry;
  registry.load_directories({test_plugin_dir("no_entry")});
  EXPECT_TRUE(registry.loaded().empty());
  EXPECT_NE(
      refusal_reason(registry, "libllm_no_entry").find("no 'llmhost_plugin_info' entry point"),
      std::string::npos);
}

TEST(PluginRegistry, DuplicateNameIsRefusedAndTheFirstStaysLoaded) {
  PluginRegistry registry;
  registry.load_directories({test_plugin_dir("good"), test_plugin_dir("duplicate")});
  ASSERT_EQ(registry.loaded().size(), 1u);
  EXPECT_EQ(registry.loaded()[0].version, "1.2.3");
  const auto reason = refusal_reason(registry, "libllm_duplicate");
  EXPECT_NE(reason.find("duplicate plugin name 'good'"), std::string::npos) << reason;
  EXPECT_NE(reason.find("libllm_good.so"), std::string::npos) << reason;
  EXPECT_THROW(registry.dataset("other_dataset"), llm::UserError);
}

TEST(PluginRegistry, PluginThatThrowsWhileRegisteringIsRefusedWithItsMessage) {
  PluginRegistry registry;
  registry.load_directories({test_plugin_dir("throws"), test_plugin_dir("good")});
  ASSERT_EQ(registry.loaded().size(), 1u);
  EXPECT_EQ(registry.loaded()[0].name, "good");
  const auto reason = refusal_reason(registry, "libllm_throws");
  EXPECT_NE(reason.find("threw while registering: cannot find my lookup table"), std::string::npos)
      << reason;
}

TEST(PluginRegistry, AllBadPluginsTogetherLeaveTheGoodOneLoaded) {
  PluginRegistry registry;
  registry.load_directories({test_plugin_dir("wrong_abi"), test_plugin_dir("no_entry"),
                             test_plugin_dir("good"), test_plugin_dir("throws"),
                             test_plugin_dir("duplicate"), test_plugin_dir("wrong_torch")});
  ASSERT_EQ(registry.loaded().size(), 1u);
  EXPECT_EQ(registry.loaded()[0].name, "good");
  EXPECT_EQ(registry.refused().size(), 5u);
}

TEST(PluginRegistry, UnknownFeatureErrorListsTheAvailableNames) {
  PluginRegistry registry;
  registry.load_directories({test_plugin_dir("good")});
  try {
    registry.dataset("dolly");
    FAIL() << "expected UserError";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown dataset 'dolly'; available: good_dataset"),
              std::string::npos)
        << e.what();
  }
}

TEST(PluginRegistry, SearchPathPutsExplicitDirsFirstThenEnvironment) {
  llm::test::TempDir a, b;
  ::setenv("LLMHOST_PLUGIN_PATH", b.path().c_str(), 1);
  const auto dirs = PluginRegistry::default_search_path({a.path()});
  ::unsetenv("LLMHOST_PLUGIN_PATH");
  ASSERT_GE(dirs.size(), 2u);
  EXPECT_EQ(dirs[0], std::filesystem::weakly_canonical(a.path()));
  EXPECT_EQ(dirs[1], std::filesystem::weakly_canonical(b.path()));
}

}  // namespace
}  // namespace llmhost
