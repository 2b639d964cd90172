#pragma once
// Per-step training metrics, appended to OUT/metrics.csv and OUT/metrics.jsonl. Each row is one
// write(2) of a whole line to an O_APPEND file, then fdatasync: a kill -9 or a power loss leaves
// every row written so far and at most one torn last line, which a resume drops. The same rows
// are drawn in OUT/loss.svg, rewritten at each validation row and by finish().
#include <cstdint>
#include <filesystem>
#include <optional>

#include "llm/export.hpp"
#include "llm/train/loss_plot.hpp"

namespace llm {

struct StepMetrics {
  int64_t step = 0;
  double epoch = 0;                // samples seen / train size
  std::optional<double> loss;      // token-weighted mean over the step's effective batch
  std::optional<double> val_loss;  // when validation ran at this step
  double lr = 0;
  double tokens_per_s = 0;  // real (non-padding) tokens through the model per second
  double max_rss_mb = 0;    // peak resident memory of the process
  double elapsed_s = 0;
  // fp16 dynamic loss scaling (metrics.jsonl only, when on): the scale after this step and the
  // steps skipped so far for inf/NaN gradients.
  std::optional<double> loss_scale;
  std::optional<int64_t> skipped_steps;
};

class LLM_API MetricsWriter {
 public:
  // Starts fresh, or on resume keeps the rows up to `keep_up_to_step` (rows an interrupted run
  // wrote after its last checkpoint are dropped, so the files read as one uninterrupted run).
  MetricsWriter(const std::filesystem::path& out_dir, std::optional<int64_t> keep_up_to_step);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;
  void write(const StepMetrics& metrics);
  // Rewrites OUT/loss.svg with every row so far (the end of a run, or of its --stop_after_step).
  void finish() const { plot_.write(); }

 private:
  std::filesystem::path csv_path_;
  std::filesystem::path jsonl_path_;
  int csv_fd_ = -1;
  int jsonl_fd_ = -1;
  LossPlot plot_;
};

// Peak resident set size of this process in MiB.
LLM_API double peak_rss_mb();

}  // namespace llm
