#pragma once
// Shared by the eval parity tests: the golden cases (spec §8, lit-gpt flavor, float32), a scorer
// over a real fixture checkpoint loaded through the real plugins, and tolerance checks.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "llm/eval/scorer.hpp"
#include "llm/eval/task_data.hpp"
#include "llm/eval_task.hpp"
#include "llm/json_file.hpp"
#include "llm/tokenizer.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace llm::test {

struct GoldenCase {
  std::string model;
  int64_t max_length;
  std::string name() const { return model + "-len" + std::to_string(max_length); }
};

inline std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> cases;
  for (const char* model : {"tiny-pythia", "tiny-llama", "tiny-pythia-trained"}) {
    for (const int64_t length : {128, 64}) cases.push_back({model, length});
  }
  return cases;
}

inline std::string golden_case_name(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string name = info.param.name();
  for (auto& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

inline Json golden_results(const GoldenCase& c) {
  return read_json_file(data_dir() / "golden" / "eval" / (c.name() + ".json"));
}

inline std::vector<Json> golden_details(const GoldenCase& c) {
  std::ifstream in(data_dir() / "golden" / "eval" / (c.name() + "-details.jsonl"));
  std::vector<Json> records;
  std::string line;
  while (std::getline(in, line)) records.push_back(Json::parse(line));
  return records;
}

// Registry, model and tokenizer of one fixture checkpoint, float32 on the CPU.
class EvalFixtureModel {
 public:
  explicit EvalFixtureModel(const std::string& model) {
    registry_.load_directories({plugin_dir()});
    const auto dir = data_dir() / model;
    loaded_ = llmhost::load_model(registry_, dir, torch::kCPU, torch::kFloat32, false);
    tokenizer_ = load_tokenizer(dir);
  }
  LanguageModelScorer scorer(int64_t max_length, int64_t batch_size) {
    ScorerOptions options;
    options.max_length = max_length;
    options.batch_size = batch_size;
    return LanguageModelScorer::for_model(*loaded_.model, *tokenizer_, options);
  }
  MetricValues evaluate(const std::string& task, int64_t max_length, int64_t batch_size) {
    auto s = scorer(max_length, batch_size);
    EvalTaskOptions options;
    options.data_dir = data_dir() / "eval-data";
    return registry_.eval_task(task)->evaluate(s, options);
  }
  llmhost::PluginRegistry& registry() { return registry_; }
  CausalLM& model() { return *loaded_.model; }

 private:
  llmhost::PluginRegistry registry_;
  llmhost::LoadedModel loaded_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

inline bool is_stderr(const std::string& metric) {
  return metric.size() > 7 && metric.compare(metric.size() - 7, 7, "_stderr") == 0;
}

// Every metric of `golden` is present with the same value: exactly when relative == 0 (the
// accuracies, whose margins the details file shows are wide), else within relative * |golden|.
inline void expect_metrics_match(const MetricValues& actual, const Json& golden, double relative,
                                 const std::string& label) {
  ASSERT_EQ(actual.size(), golden.size()) << label;
  for (const auto& [metric, value] : actual) {
    ASSERT_TRUE(golden.contains(metric)) << label << ": unexpected metric " << metric;
    const double expected = golden[metric].get<double>();
    if (relative == 0.0) {
      EXPECT_DOUBLE_EQ(value, expected) << label << " " << metric;
    } else {
      EXPECT_NEAR(value, expected, relative * std::abs(expected)) << label << " " << metric;
    }
  }
}

}  // namespace llm::test
