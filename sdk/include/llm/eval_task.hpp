#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

class LanguageModelScorer;  // the SDK's evaluation engine (llm/eval/scorer.hpp)

struct EvalTaskOptions {
  std::filesystem::path data_dir;  // folder holding <task>.jsonl
  int64_t limit = -1;              // -1: all documents
  int64_t num_fewshot = 0;
};

// An lm-evaluation-harness task: reads its JSONL data, builds requests, scores them through the
// engine and aggregates metrics into {"acc": ..., "acc_stderr": ..., ...}.
class LLM_API EvalTask {
 public:
  virtual ~EvalTask();
  virtual std::string name() const = 0;  // "truthfulqa_mc", "arithmetic_1dc", ...
  virtual int version() const = 0;       // the harness's task VERSION
  virtual Json evaluate(LanguageModelScorer& scorer, const EvalTaskOptions& options) const = 0;
};

}  // namespace llm
