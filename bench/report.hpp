#pragma once
// One measured workload, as a JSON line (for scripts) and as a row of the closing table.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "llm/json_file.hpp"

namespace llmhost_bench {

struct WorkloadResult {
  std::string shape;
  std::string workload;  // lora-train | score | generate | correctness
  double tokens_per_second = 0;
  double step_seconds = 0;  // per timed step (a generate run counts as one step)
  double mfu = 0;           // achieved / peak matrix FLOP rate
  std::optional<int64_t> peak_memory_bytes;
  bool passed = true;  // the workload's own correctness check (loss falls, 128 tokens made, ...)
  std::string note;    // why it failed, or what was checked
  llm::Json extra = llm::Json::object();
};

llm::Json to_json(const WorkloadResult& result);
void print_table(std::ostream& out, const std::vector<WorkloadResult>& results);

}  // namespace llmhost_bench
