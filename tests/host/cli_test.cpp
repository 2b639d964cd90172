// The CLI contract through the real binary: exit codes, one-line errors naming the flag, list.
#include <gtest/gtest.h>

#include <fstream>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"

namespace {

using llm::test::run_llmhost;
using llm::test::test_plugin_dir;

int count_lines(const std::string& text) {
  int lines = 0;
  for (char c : text) lines += c == '\n';
  return lines;
}

TEST(Cli, MissingTaskExitsTwoListingTheTasks) {
  const auto r = run_llmhost({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--task is required"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("generate"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(Cli, UnknownTaskExitsTwo) {
  const auto r = run_llmhost({"--task", "fly"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown --task 'fly'"), std::string::npos) << r.err;
}

TEST(Cli, UnknownFlagExitsTwoNamingTheFlag) {
  const auto r = run_llmhost({"--task", "list", "--colour", "blue"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("colour"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(Cli, MissingRequiredFlagExitsTwoNamingIt) {
  const auto r = run_llmhost({"--task", "tokenize", "--text", "hi"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("checkpoint_dir"), std::string::npos) << r.err;
}

TEST(Cli, NonNumericValueExitsTwoNamingTheFlag) {
  const auto r = run_llmhost(
      {"--task", "generate", "--checkpoint_dir", "x", "--prompt", "p", "--max_new_tokens", "many"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("max_new_tokens"), std::string::npos) << r.err;
}

TEST(Cli, ConfigFileWithUnknownKeyExitsTwoNamingFileAndKey) {
  llm::test::TempDir dir;
  const auto config = dir.path() / "bad.json";
  std::ofstream(config) << R"({"text": "hi", "bogus_key": 3})";
  const auto r = run_llmhost({"--task", "tokenize", "--config", config.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bogus_key"), std::string::npos) << r.err;
}

TEST(Cli, MalformedConfigFileExitsTwoNamingTheFile) {
  llm::test::TempDir dir;
  const auto config = dir.path() / "broken.json";
  std::ofstream(config) << R"({"text": "hi",)";
  const auto r = run_llmhost({"--task", "tokenize", "--config", config.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("broken.json"), std::string::npos) << r.err;
}

TEST(Cli, CommandLineOverridesConfigFile) {
  llm::test::TempDir dir;
  const auto config = dir.path() / "tok.json";
  std::ofstream(config) << R"({"text": "from config", "checkpoint_dir": ")"
                        << (llm::test::data_dir() / "tiny-pythia").string() << R"("})";
  const auto r = run_llmhost(
      {"--task", "tokenize", "--config", config.string(), "--text", "a", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(llm::Json::parse(r.out)["decoded"], "a");
}

TEST(Cli, ListJsonShowsRealAndTestPluginsAndRefusals) {
  const auto r = run_llmhost({"--task", "list", "--format", "json", "--plugin_dir",
                              test_plugin_dir("good").string(), "--plugin_dir",
                              test_plugin_dir("wrong_abi").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto listing = llm::Json::parse(r.out);
  bool good = false, gpt_neox = false, llama = false;
  for (const auto& p : listing["plugins"]) {
    good |= p["name"] == "good" && p["kind"] == "dataset" && p["version"] == "1.2.3";
    gpt_neox |= p["name"] == "gpt_neox" && p["kind"] == "model";
    llama |= p["name"] == "llama" && p["kind"] == "model";
    EXPECT_TRUE(p.contains("path"));
  }
  EXPECT_TRUE(good && gpt_neox && llama) << r.out;
  for (const auto& p : listing["plugins"]) {
    if (p["name"] == "llama") {  // a model plugin says what config.json it accepts
      ASSERT_EQ(p["families"].size(), 1u) << p.dump();
      EXPECT_EQ(p["families"][0]["model_types"], llm::Json::array({"llama"})) << p.dump();
      EXPECT_EQ(p["families"][0]["architectures"], llm::Json::array({"LlamaForCausalLM"}))
          << p.dump();
    }
    if (p["kind"] != "model") {
      EXPECT_FALSE(p.contains("families")) << p.dump();
    }
  }
  ASSERT_EQ(listing["refused"].size(), 1u) << r.out;
  EXPECT_NE(listing["refused"][0]["reason"].get<std::string>().find("SDK ABI version mismatch"),
            std::string::npos);
}

TEST(Cli, BadFormatValueExitsTwo) {
  const auto r = run_llmhost({"--task", "list", "--format", "yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--format 'yaml'"), std::string::npos) << r.err;
}

}  // namespace

namespace {

// An adapter's hyper-parameters are the adapter plugin's: --help shows them under its name, with
// the plugin's defaults, and without --plugin every adapter's under its own title.
TEST(Cli, FinetuneHelpShowsTheAdapterPluginsOwnOptions) {
  const auto named = run_llmhost({"--task", "finetune", "--plugin", "lora", "--help"});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  EXPECT_NE(named.out.find("Options of adapter plugin 'lora'"), std::string::npos) << named.out;
  EXPECT_NE(named.out.find("--lora_r arg (=8)"), std::string::npos) << named.out;
  EXPECT_NE(named.out.find("--lora_mlp"), std::string::npos) << named.out;
  const auto all = run_llmhost({"--task", "finetune", "--help"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("Options of adapter plugin 'lora' (--plugin lora)"), std::string::npos)
      << all.out;
}

// A --config file names the plugin whose options it sets; the options are then known, and the
// run goes on to the next problem (here the task's missing required flags).
TEST(Cli, ConfigFileNamingThePluginMaySetItsOptions) {
  llm::test::TempDir dir;
  const auto config = dir.path() / "run.json";
  std::ofstream(config) << R"({"plugin": "lora", "lora_r": 4, "lora_mlp": true})";
  const auto r = run_llmhost({"--task", "finetune", "--config", config.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is required but missing"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("lora"), std::string::npos) << r.err;
}

// The adapter for --lora_path is the plugin of the directory's peft_type, not a name in the host.
TEST(Cli, AdapterDirectoryOfAPeftTypeNoPluginLoadsExitsTwoNamingFileAndTypes) {
  llm::test::TempDir dir;
  std::ofstream(dir.path() / "adapter_config.json") << R"({"peft_type": "IA3"})";
  const auto r = run_llmhost({"--task", "generate", "--checkpoint_dir",
                              (llm::test::data_dir() / "tiny-pythia").string(), "--prompt", "hi",
                              "--lora_path", dir.path().string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("adapter_config.json: no adapter plugin loads peft_type 'IA3'; loaded: "
                       "LORA (lora)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

}  // namespace
