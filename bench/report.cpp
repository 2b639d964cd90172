#include "report.hpp"

#include <cstdio>

namespace llmhost_bench {

llm::Json to_json(const WorkloadResult& r) {
  llm::Json j = {{"shape", r.shape},
                 {"workload", r.workload},
                 {"tok_s", r.tokens_per_second},
                 {"step_ms", r.step_seconds * 1e3},
                 {"mfu", r.mfu},
                 {"passed", r.passed}};
  j["peak_memory_bytes"] = r.peak_memory_bytes ? llm::Json(*r.peak_memory_bytes) : llm::Json();
  if (!r.note.empty()) j["note"] = r.note;
  for (const auto& [key, value] : r.extra.items()) j[key] = value;
  return j;
}

void print_table(std::ostream& out, const std::vector<WorkloadResult>& results) {
  char line[256];
  std::snprintf(line, sizeof line, "%-14s %-12s %14s %11s %7s %10s  %s\n", "shape", "workload",
                "tok/s", "step ms", "MFU", "peak GiB", "check");
  out << line;
  for (const auto& r : results) {
    const std::string peak =
        r.peak_memory_bytes
            ? std::to_string(static_cast<double>(*r.peak_memory_bytes) / (1024.0 * 1024.0 * 1024.0))
                  .substr(0, 6)
            : "-";
    std::snprintf(line, sizeof line, "%-14s %-12s %14.1f %11.2f %6.1f%% %10s  %s%s%s\n",
                  r.shape.c_str(), r.workload.c_str(), r.tokens_per_second, r.step_seconds * 1e3,
                  r.mfu * 100, peak.c_str(), r.passed ? "ok" : "FAIL", r.note.empty() ? "" : ": ",
                  r.note.c_str());
    out << line;
  }
}

}  // namespace llmhost_bench
