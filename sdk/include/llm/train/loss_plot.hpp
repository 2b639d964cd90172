#pragma once
// OUT/loss.svg: training and validation loss over the steps, the learning rate on a second axis.
// Plain SVG written by hand. The trainer's MetricsWriter feeds it the rows it logs and rewrites
// it atomically at each validation and at the end, so a browser shows the run so far.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llm/export.hpp"

namespace llm {

struct LossPoint {
  int64_t step = 0;
  std::optional<double> loss;      // training loss of the step
  std::optional<double> val_loss;  // when validation ran at this step
  double lr = 0;
};

// The chart as an SVG document. Each series (polylines of class train-loss, val-loss, lr) carries
// its logged values as data-points="step,value ...", so tools can read the numbers back.
LLM_API std::string render_loss_svg(const std::vector<LossPoint>& points);

class LLM_API LossPlot {
 public:
  explicit LossPlot(std::filesystem::path svg_path) : path_(std::move(svg_path)) {}
  void add(const LossPoint& point) { points_.push_back(point); }
  // Renders every point added so far and replaces the file atomically (temp file + rename).
  void write() const;
  const std::vector<LossPoint>& points() const { return points_; }

 private:
  std::filesystem::path path_;
  std::vector<LossPoint> points_;
};

}  // namespace llm
