#include "llm/train/metrics.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "llm/atomic_file.hpp"
#include "llm/error.hpp"
#include "llm/json_file.hpp"

namespace llm {

namespace {

const char* kCsvHeader = "step,epoch,loss,val_loss,lr,tokens_per_s,max_rss_mb,elapsed_s";

// Keeps the header and the rows whose step is <= max_step, rewritten atomically (a kill -9 during
// the rewrite leaves the old file). Lines that do not parse (a row torn by a crash) are dropped.
void truncate_after(const std::filesystem::path& path, int64_t max_step, bool has_header) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (first && has_header) {
      kept += line + "\n";
      first = false;
      continue;
    }
    first = false;
    std::optional<int64_t> step;
    if (has_header) {
      const std::string field = line.substr(0, line.find(','));
      char* end = nullptr;
      errno = 0;
      const long long value = std::strtoll(field.c_str(), &end, 10);
      const bool columns_ok = std::count(line.begin(), line.end(), ',') ==
                              std::count(kCsvHeader, kCsvHeader + std::strlen(kCsvHeader), ',');
      if (!field.empty() && *end == '\0' && errno == 0 && columns_ok) step = value;
    } else {
      const Json row = Json::parse(line, nullptr, false);
      if (row.is_object() && row.contains("step") && row["step"].is_number_integer()) {
        step = row["step"].get<int64_t>();
      }
    }
    if (step && *step <= max_step) kept += line + "\n";
  }
  in.close();
  write_file_atomic(path, kept);
}

int open_for_append(const std::filesystem::path& path, bool truncate) {
  const int fd = ::open(path.c_str(),
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0666);
  if (fd < 0) throw UserError(path.string() + ": cannot write metrics: " + std::strerror(errno));
  return fd;
}

// One write(2) per line, so a crash never interleaves or splits rows from this process; then
// fdatasync, so the row is on disk before training goes on.
void append_line(int fd, const std::filesystem::path& path, const std::string& line) {
  const std::string bytes = line + "\n";
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UserError(path.string() + ": cannot append metrics: " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd) != 0 && errno != EINVAL) {
    throw UserError(path.string() + ": fdatasync of the metrics failed: " + std::strerror(errno));
  }
}

std::optional<double> optional_number(const Json& row, const char* key) {
  const auto it = row.find(key);
  if (it == row.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// The rows a resumed run keeps, so its plot shows the whole run, not just the part since resuming.
void load_plot_points(const std::filesystem::path& jsonl_path, LossPlot& plot) {
  std::ifstream in(jsonl_path);
  std::string line;
  while (std::getline(in, line)) {
    const Json row = Json::parse(line, nullptr, false);
    if (!row.is_object() || !row.contains("step") || !row["step"].is_number_integer()) continue;
    plot.add({row["step"].get<int64_t>(), optional_number(row, "loss"),
              optional_number(row, "val_loss"), optional_number(row, "lr").value_or(0.0)});
  }
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
                             std::optional<int64_t> keep_up_to_step)
    : csv_path_(out_dir / "metrics.csv"),
      jsonl_path_(out_dir / "metrics.jsonl"),
      plot_(out_dir / "loss.svg") {
  const bool resume = keep_up_to_step && std::filesystem::exists(csv_path_);
  if (resume) {
    truncate_after(csv_path_, *keep_up_to_step, true);
    truncate_after(jsonl_path_, *keep_up_to_step, false);
    load_plot_points(jsonl_path_, plot_);
  }
  csv_fd_ = open_for_append(csv_path_, !resume);
  try {
    jsonl_fd_ = open_for_append(jsonl_path_, !resume);
    if (!resume) append_line(csv_fd_, csv_path_, kCsvHeader);
    fsync_directory(out_dir);  // the files' names, created just now, survive a crash too
  } catch (...) {
    ::close(csv_fd_);
    if (jsonl_fd_ >= 0) ::close(jsonl_fd_);
    throw;
  }
}

MetricsWriter::~MetricsWriter() {
  ::close(csv_fd_);
  ::close(jsonl_fd_);
}

void MetricsWriter::write(const StepMetrics& m) {
  std::ostringstream row;
  row.precision(8);
  row << m.step << "," << m.epoch << "," << optional_text(m.loss) << ","
      << optional_text(m.val_loss) << "," << m.lr << "," << m.tokens_per_s << "," << m.max_rss_mb
      << "," << m.elapsed_s;
  append_line(csv_fd_, csv_path_, row.str());
  Json j{{"step", m.step},
         {"epoch", m.epoch},
         {"lr", m.lr},
         {"tokens_per_s", m.tokens_per_s},
         {"max_rss_mb", m.max_rss_mb},
         {"elapsed_s", m.elapsed_s}};
  j["loss"] = m.loss ? Json(*m.loss) : Json(nullptr);
  j["val_loss"] = m.val_loss ? Json(*m.val_loss) : Json(nullptr);
  if (m.loss_scale) j["loss_scale"] = *m.loss_scale;
  if (m.skipped_steps) j["skipped_steps"] = *m.skipped_steps;
  append_line(jsonl_fd_, jsonl_path_, j.dump());
  plot_.add({m.step, m.loss, m.val_loss, m.lr});
  if (m.val_loss) plot_.write();
}

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace llm
