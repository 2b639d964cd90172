#pragma once
// --task report --svg FILE: the comparison as a bar chart. One group per (task, metric), one bar
// per results file with its standard error as a whisker, the verdict against the baseline beside
// it. Plain SVG written by hand.
#include <optional>
#include <string>
#include <vector>

namespace llmhost {

struct ReportCell {
  bool present = false;
  double value = 0.0;
  std::optional<double> stderr_value;
};

struct ReportRow {
  std::string task;
  std::string metric;
  std::vector<ReportCell> cells;  // one per input file
};

// `verdicts[r][f - 1]` compares file f of row r with the baseline (file 0).
std::string render_report_svg(const std::vector<std::string>& inputs,
                              const std::vector<ReportRow>& rows,
                              const std::vector<std::vector<std::string>>& verdicts);

}  // namespace llmhost
