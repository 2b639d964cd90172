#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "llm/export.hpp"

namespace llm {

class LanguageModelScorer;  // the SDK's evaluation engine (llm/eval/scorer.hpp)

struct EvalTaskOptions {
  std::filesystem::path data_dir;  // folder holding <task>.jsonl
  int64_t limit = -1;              // -1: all documents, else the first `limit` after the shuffle
  int64_t num_fewshot = 0;
};

// Metric values in the harness's order: each metric, then "<metric>_stderr" when it has one.
using MetricValues = std::vector<std::pair<std::string, double>>;

// An lm-evaluation-harness task: reads its JSONL data, builds requests, scores them through the
// engine and aggregates metrics into {"acc", "acc_stderr", ...}. One plugin may register several
// (the arithmetic variants differ only in their data file).
class LLM_API EvalTask {
 public:
  virtual ~EvalTask();
  virtual std::string name() const = 0;  // "truthfulqa_mc", "arithmetic_1dc", ...
  virtual int version() const = 0;       // the harness's task VERSION
  // UserError for bad data (naming file:line) or unsupported options (naming the flag).
  virtual MetricValues evaluate(LanguageModelScorer& scorer,
                                const EvalTaskOptions& options) const = 0;
};

}  // namespace llm
