#include "llm/train/metrics.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "llm/error.hpp"
#include "llm/json_file.hpp"

namespace llm {

namespace {

const char* kCsvHeader = "step,epoch,loss,val_loss,lr,tokens_per_s,max_rss_mb,elapsed_s";

// Keeps the header and rows whose first field (the step) is <= max_step.
void truncate_after(const std::filesystem::path& path, int64_t max_step, bool has_header) {
  std::ifstream in(path);
  if (!in) return;
  std::vector<std::string> kept;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (first && has_header) {
      kept.push_back(line);
      first = false;
      continue;
    }
    first = false;
    int64_t step = 0;
    if (has_header) {
      step = std::stoll(line.substr(0, line.find(',')));
    } else {
      step = Json::parse(line, nullptr, false).value("step", int64_t{0});
    }
    if (step <= max_step) kept.push_back(line);
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  for (const auto& k : kept) out << k << "\n";
}

std::string optional_text(const std::optional<double>& value) {
  if (!value) return "";
  std::ostringstream s;
  s.precision(8);
  s << *value;
  return s.str();
}

}  // namespace

MetricsWriter::MetricsWriter(const std::filesystem::path& out_dir,
                             std::optional<int64_t> keep_up_to_step) {
  const auto csv_path = out_dir / "metrics.csv";
  const auto jsonl_path = out_dir / "metrics.jsonl";
  if (keep_up_to_step && std::filesystem::exists(csv_path)) {
    truncate_after(csv_path, *keep_up_to_step, true);
    truncate_after(jsonl_path, *keep_up_to_step, false);
    csv_.open(csv_path, std::ios::app);
    jsonl_.open(jsonl_path, std::ios::app);
  } else {
    csv_.open(csv_path, std::ios::trunc);
    jsonl_.open(jsonl_path, std::ios::trunc);
    csv_ << kCsvHeader << "\n";
  }
  if (!csv_ || !jsonl_) throw UserError(out_dir.string() + ": cannot write metrics files");
}

void MetricsWriter::write(const StepMetrics& m) {
  std::ostringstream row;
  row.precision(8);
  row << m.step << "," << m.epoch << "," << optional_text(m.loss) << ","
      << optional_text(m.val_loss) << "," << m.lr << "," << m.tokens_per_s << "," << m.max_rss_mb
      << "," << m.elapsed_s;
  csv_ << row.str() << "\n" << std::flush;
  Json j{{"step", m.step},
         {"epoch", m.epoch},
         {"lr", m.lr},
         {"tokens_per_s", m.tokens_per_s},
         {"max_rss_mb", m.max_rss_mb},
         {"elapsed_s", m.elapsed_s}};
  j["loss"] = m.loss ? Json(*m.loss) : Json(nullptr);
  j["val_loss"] = m.val_loss ? Json(*m.val_loss) : Json(nullptr);
  jsonl_ << j.dump() << "\n" << std::flush;
}

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace llm
