// --task evaluate through the real binary: the harness's JSON layout and numbers, both task-list
// syntaxes, bad input (exit 2, one line), and an unmerged LoRA adapter equal to the merged model.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "llm/adapter.hpp"
#include "llm/eval/results.hpp"
#include "sdk/eval/golden_eval.hpp"

namespace llm {
namespace {

namespace fs = std::filesystem;
using test::data_dir;
using test::run_llmhost;
using test::TempDir;

const char* kAllTasks = "[truthfulqa_mc, wikitext, openbookqa, arithmetic_1dc]";

std::vector<std::string> evaluate_args(const std::string& model, const std::string& tasks,
                                       const fs::path& data, int64_t max_length) {
  return {"--task",           "evaluate",
          "--checkpoint_dir", (data_dir() / model).string(),
          "--eval_tasks",     tasks,
          "--data_dir",       data.string(),
          "--max_length",     std::to_string(max_length)};
}

OrderedJson read_ordered(const fs::path& path) {
  std::ifstream in(path);
  return OrderedJson::parse(in);
}

std::vector<std::string> keys(const OrderedJson& object) {
  std::vector<std::string> out;
  for (const auto& [key, value] : object.items()) out.push_back(key);
  return out;
}

// Lines of stderr that are not plugin-loading warnings.
std::size_t error_lines(const std::string& err) {
  std::size_t count = 0;
  std::istringstream lines(err);
  std::string line;
  while (std::getline(lines, line)) count += line.find("error") != std::string::npos ? 1 : 0;
  return count;
}

TEST(EvaluateCli, WritesTheHarnessLayoutWithTheReferenceNumbers) {
  TempDir out;
  const auto file = out.path() / "results.json";
  auto args = evaluate_args("tiny-pythia-trained", kAllTasks, data_dir() / "eval-data", 128);
  args.insert(args.end(), {"--batch_size", "4", "--save_filepath", file.string()});
  const auto r = run_llmhost(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("|truthfulqa_mc|1|mc1|"), std::string::npos) << r.out;

  const auto golden = read_ordered(data_dir() / "golden/eval/tiny-pythia-trained-len128.json");
  const auto mine = read_ordered(file);
  EXPECT_EQ(keys(mine), keys(golden));
  EXPECT_EQ(keys(mine["results"]), keys(golden["results"]));
  EXPECT_EQ(mine["versions"], golden["versions"]);
  EXPECT_EQ(keys(mine["config"]), keys(golden["config"]));
  for (const auto& [task, metrics] : golden["results"].items()) {
    EXPECT_EQ(keys(mine["results"][task]), keys(metrics)) << task;
    const double relative = task == "wikitext" ? 5e-4 : task == "truthfulqa_mc" ? 1e-4 : 0.0;
    for (const auto& [metric, value] : metrics.items()) {
      const double expected = value.get<double>();
      EXPECT_NEAR(mine["results"][task][metric].get<double>(), expected,
                  relative * std::abs(expected))
          << task << " " << metric;
    }
  }
  // Written by rename: nothing but the results file is left in the folder.
  EXPECT_EQ(std::distance(fs::directory_iterator(out.path()), fs::directory_iterator()), 1);
}

TEST(EvaluateCli, PlainCommaListEqualsTheSeedListSyntax) {
  auto seed =
      evaluate_args("tiny-pythia", "[arithmetic_1dc, openbookqa]", data_dir() / "eval-data", 64);
  auto plain =
      evaluate_args("tiny-pythia", "openbookqa,arithmetic_1dc", data_dir() / "eval-data", 64);
  for (auto* args : {&seed, &plain}) args->insert(args->end(), {"--format", "json"});
  const auto a = run_llmhost(seed);
  const auto b = run_llmhost(plain);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(Json::parse(a.out)["results"], Json::parse(b.out)["results"]);
  EXPECT_EQ(keys(OrderedJson::parse(a.out)["results"]),
            (std::vector<std::string>{"arithmetic_1dc", "openbookqa"}));
}

TEST(EvaluateCli, TutorialConfigRunsTheFourTasks) {
  const auto r =
      run_llmhost({"--task", "evaluate", "--config",
                   (test::source_dir() / "configs/eval/tutorial.json").string(), "--checkpoint_dir",
                   (data_dir() / "tiny-pythia").string(), "--data_dir",
                   (data_dir() / "eval-data").string(), "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto results = OrderedJson::parse(r.out);
  EXPECT_EQ(keys(results["results"]), (std::vector<std::string>{"arithmetic_1dc", "openbookqa",
                                                                "truthfulqa_mc", "wikitext"}));
  EXPECT_EQ(results["config"]["batch_size"], 4);
}

TEST(EvaluateCli, UnknownTaskListsTheTasksThePluginsProvide) {
  const auto r = run_llmhost(
      evaluate_args("tiny-pythia", "[hellaswag, wikitext]", data_dir() / "eval-data", 64));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(error_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("--eval_tasks: unknown task 'hellaswag'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truthfulqa_mc"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("arithmetic_1dc"), std::string::npos) << r.err;
}

TEST(EvaluateCli, MissingTaskFileNamesTheFile) {
  TempDir data;
  const auto r = run_llmhost(evaluate_args("tiny-pythia", "wikitext", data.path(), 64));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(error_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("wikitext.jsonl: task data file not found"), std::string::npos) << r.err;
}

TEST(EvaluateCli, MalformedRecordNamesFileAndLine) {
  TempDir data;
  std::ofstream(data.path() / "openbookqa.jsonl")
      << "{\"question_stem\": \"Q\", \"choices\": {\"text\": [\"a\", \"b\"]}, \"answerKey\": "
         "\"A\"}\n"
      << "{\"question_stem\": \"Q\", \"choices\": {\"text\": [\"a\"]}, \"answerKey\": \"E\"}\n";
  std::ofstream(data.path() / "arithmetic_1dc.jsonl") << "{\"context\": \"1 + 1\"\n";
  const auto bad_key = run_llmhost(evaluate_args("tiny-pythia", "openbookqa", data.path(), 64));
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_EQ(error_lines(bad_key.err), 1u) << bad_key.err;
  EXPECT_NE(bad_key.err.find("openbookqa.jsonl:2: 'answerKey' must be one of A, B, C, D"),
            std::string::npos)
      << bad_key.err;
  const auto bad_json =
      run_llmhost(evaluate_args("tiny-pythia", "arithmetic_1dc", data.path(), 64));
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_NE(bad_json.err.find("arithmetic_1dc.jsonl:1: not valid JSON"), std::string::npos)
      << bad_json.err;
}

TEST(EvaluateCli, EmptyTaskIsRejected) {
  TempDir data;
  std::ofstream(data.path() / "truthfulqa_mc.jsonl") << "\n";
  const auto r = run_llmhost(evaluate_args("tiny-pythia", "truthfulqa_mc", data.path(), 64));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(error_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("truthfulqa_mc.jsonl: no records"), std::string::npos) << r.err;
}

TEST(EvaluateLora, UnmergedAdapterScoresLikeTheMergedModel) {
  test::EvalFixtureModel fixture("tiny-llama");
  const auto names = fixture.registry().feature_names(PluginKind::kAdapter);
  if (std::find(names.begin(), names.end(), "lora") == names.end()) {
    GTEST_SKIP() << "the lora adapter plugin is not built";
  }
  const auto adapter = fixture.registry().adapter("lora");
  adapter->load(fixture.model(), data_dir() / "golden" / "tiny-llama-lora-adapter");
  std::vector<MetricValues> unmerged;
  for (const char* task : {"openbookqa", "truthfulqa_mc", "wikitext"}) {
    unmerged.push_back(fixture.evaluate(task, 128, 4));
  }
  adapter->merge(fixture.model());
  std::size_t t = 0;
  for (const char* task : {"openbookqa", "truthfulqa_mc", "wikitext"}) {
    const auto merged = fixture.evaluate(task, 128, 4);
    for (std::size_t i = 0; i < merged.size(); ++i) {
      EXPECT_NEAR(unmerged[t][i].second, merged[i].second, 1e-4 * std::abs(merged[i].second))
          << task << " " << merged[i].first;
    }
    ++t;
  }
}

TEST(EvaluateLora, LoraPathFlagChangesTheScores) {
  test::EvalFixtureModel probe("tiny-llama");
  const auto names = probe.registry().feature_names(PluginKind::kAdapter);
  if (std::find(names.begin(), names.end(), "lora") == names.end()) {
    GTEST_SKIP() << "the lora adapter plugin is not built";
  }
  auto base = evaluate_args("tiny-llama", "wikitext", data_dir() / "eval-data", 128);
  auto adapted = base;
  adapted.insert(adapted.end(),
                 {"--lora_path", (data_dir() / "golden" / "tiny-llama-lora-adapter").string()});
  for (auto* args : {&base, &adapted}) args->insert(args->end(), {"--format", "json"});
  const auto a = run_llmhost(base);
  const auto b = run_llmhost(adapted);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  // Same value as the in-process unmerged evaluation, up to fp32 rounding: the binary may run
  // other BLAS kernels than this process (host/blas_kernels.hpp), and a sum of ~10^3 fp32
  // products differs by ~1e-6 relative between kernels; perplexity = exp(mean NLL) turns the
  // NLL's absolute error into its relative one. 1e-5 bounds that with room.
  probe.registry().adapter("lora")->load(probe.model(),
                                         data_dir() / "golden" / "tiny-llama-lora-adapter");
  const auto in_process = probe.evaluate("wikitext", 128, 4);
  const double cli = Json::parse(b.out)["results"]["wikitext"]["word_perplexity"].get<double>();
  EXPECT_NEAR(cli, in_process[0].second, 1e-5 * in_process[0].second);
  EXPECT_NE(Json::parse(a.out)["results"], Json::parse(b.out)["results"]);
}

}  // namespace
}  // namespace llm
