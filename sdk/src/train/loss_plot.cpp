#include "llm/train/loss_plot.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "llm/atomic_file.hpp"
#include "llm/svg.hpp"

namespace llm {

namespace {

constexpr int kWidth = 760;
constexpr int kHeight = 420;
constexpr double kLeft = 70;
constexpr double kRight = kWidth - 80;
constexpr double kTop = 50;
constexpr double kBottom = kHeight - 55;
constexpr double kLegend = kRight - 200;

const char* const kTrainColour = "#1f77b4";
const char* const kValColour = "#2ca02c";
const char* const kLrColour = "#ff7f0e";

using Series = std::vector<std::pair<int64_t, double>>;

// Non-finite values (a diverged step) are left out: they have no place on a linear axis.
Series collect(const std::vector<LossPoint>& points, std::optional<double> LossPoint::*field) {
  Series series;
  for (const auto& p : points) {
    const auto& value = p.*field;
    if (value && std::isfinite(*value)) series.emplace_back(p.step, *value);
  }
  return series;
}

std::string data_points(const Series& series) {
  std::string out;
  for (const auto& [step, value] : series) {
    if (!out.empty()) out += ' ';
    out += std::to_string(step) + "," + svg::number(value, 8);
  }
  return out;
}

std::string polyline(const Series& series, const svg::Scale& x, const svg::Scale& y,
                     const char* css_class, const char* colour, const char* extra) {
  std::string pixels;
  for (const auto& [step, value] : series) {
    if (!pixels.empty()) pixels += ' ';
    pixels += svg::number(x(static_cast<double>(step)), 7) + "," + svg::number(y(value), 7);
  }
  return std::string("<polyline class=\"") + css_class + "\" fill=\"none\" stroke=\"" + colour +
         "\" stroke-width=\"1.5\"" + extra + " points=\"" + pixels + "\" data-points=\"" +
         data_points(series) + "\"/>\n";
}

std::string text(double x, double y, const std::string& content, const char* anchor,
                 const std::string& extra = "") {
  return "<text x=\"" + svg::number(x, 7) + "\" y=\"" + svg::number(y, 7) + "\" text-anchor=\"" +
         anchor + "\"" + extra + ">" + svg::escape(content) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const char* stroke) {
  return "<line x1=\"" + svg::number(x1, 7) + "\" y1=\"" + svg::number(y1, 7) + "\" x2=\"" +
         svg::number(x2, 7) + "\" y2=\"" + svg::number(y2, 7) + "\" stroke=\"" + stroke + "\"/>\n";
}

}  // namespace

std::string render_loss_svg(const std::vector<LossPoint>& points) {
  const Series train = collect(points, &LossPoint::loss);
  const Series val = collect(points, &LossPoint::val_loss);
  Series lr;
  for (const auto& p : points) {
    if (std::isfinite(p.lr)) lr.emplace_back(p.step, p.lr);
  }

  int64_t max_step = 1;
  for (const auto& p : points) max_step = std::max(max_step, p.step);
  double loss_lo = INFINITY;
  double loss_hi = -INFINITY;
  for (const Series* s : {&train, &val}) {
    for (const auto& [step, value] : *s) {
      loss_lo = std::min(loss_lo, value);
      loss_hi = std::max(loss_hi, value);
    }
  }
  if (!std::isfinite(loss_lo)) {
    loss_lo = 0;
    loss_hi = 1;
  }
  double lr_hi = 0;
  for (const auto& [step, value] : lr) lr_hi = std::max(lr_hi, value);

  const auto x_ticks = svg::nice_ticks(0, static_cast<double>(max_step), 8);
  const auto loss_ticks = svg::nice_ticks(std::min(loss_lo, std::max(0.0, loss_lo)), loss_hi, 6);
  const auto lr_ticks = svg::nice_ticks(0, lr_hi > 0 ? lr_hi : 1, 6);
  const svg::Scale x{x_ticks.front(), x_ticks.back(), kLeft, kRight};
  const svg::Scale y{loss_ticks.front(), loss_ticks.back(), kBottom, kTop};
  const svg::Scale y_lr{lr_ticks.front(), lr_ticks.back(), kBottom, kTop};

  std::ostringstream out;
  out << svg::open_document(kWidth, kHeight, "Training and validation loss, learning rate");
  out << text(kWidth / 2.0, 22, "Loss over training steps", "middle", " font-size=\"15\"");
  // Grid and axes.
  for (const double t : loss_ticks) {
    out << line(kLeft, y(t), kRight, y(t), "#e0e0e0");
    out << text(kLeft - 6, y(t) + 4, svg::number(t, 4), "end");
  }
  for (const double t : x_ticks) {
    out << line(x(t), kBottom, x(t), kBottom + 5, "#333");
    out << text(x(t), kBottom + 18, svg::number(t, 8), "middle");
  }
  for (const double t : lr_ticks) {
    out << line(kRight, y_lr(t), kRight + 5, y_lr(t), kLrColour);
    out << text(kRight + 8, y_lr(t) + 4, svg::number(t, 3), "start",
                std::string(" fill=\"") + kLrColour + "\"");
  }
  out << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kRight - kLeft
      << "\" height=\"" << kBottom - kTop << "\" fill=\"none\" stroke=\"#333\"/>\n";
  out << text(kWidth / 2.0, kHeight - 15, "step", "middle");
  out << text(18, (kTop + kBottom) / 2, "loss", "middle",
              " transform=\"rotate(-90 18 " + svg::number((kTop + kBottom) / 2, 7) + ")\"");
  out << text(kWidth - 12, (kTop + kBottom) / 2, "learning rate", "middle",
              " fill=\"" + std::string(kLrColour) + "\" transform=\"rotate(90 " +
                  svg::number(kWidth - 12.0, 7) + " " + svg::number((kTop + kBottom) / 2, 7) +
                  ")\"");

  // Series: learning rate under the losses.
  out << polyline(lr, x, y_lr, "lr", kLrColour, " stroke-dasharray=\"5,4\"");
  out << polyline(train, x, y, "train-loss", kTrainColour, "");
  out << polyline(val, x, y, "val-loss", kValColour, "");
  for (const auto& [step, value] : val) {
    out << "<circle class=\"val-point\" cx=\"" << svg::number(x(static_cast<double>(step)), 7)
        << "\" cy=\"" << svg::number(y(value), 7) << "\" r=\"3.5\" fill=\"" << kValColour
        << "\"><title>step " << step << ": validation loss " << svg::number(value, 5)
        << "</title></circle>\n";
  }
  if (train.empty() && val.empty()) {
    out << text((kLeft + kRight) / 2, (kTop + kBottom) / 2, "no loss logged yet", "middle",
                " fill=\"#888\"");
  }

  // Legend, top right inside the plot: losses and a decaying learning rate are low there.
  const struct {
    const char* label;
    const char* colour;
    const char* dash;
  } legend[] = {{"training loss", kTrainColour, ""},
                {"validation loss", kValColour, ""},
                {"learning rate (right axis)", kLrColour, " stroke-dasharray=\"5,4\""}};
  out << "<rect x=\"" << kLegend - 6 << "\" y=\"" << kTop + 4 << "\" width=\"196\" height=\"54\" "
      << "fill=\"white\" fill-opacity=\"0.85\"/>\n";
  double legend_y = kTop + 16;
  for (const auto& entry : legend) {
    out << "<line x1=\"" << kLegend << "\" y1=\"" << legend_y - 4 << "\" x2=\"" << kLegend + 24
        << "\" y2=\"" << legend_y - 4 << "\" stroke=\"" << entry.colour << "\" stroke-width=\"2\""
        << entry.dash << "/>\n";
    out << text(kLegend + 30, legend_y, entry.label, "start");
    legend_y += 16;
  }
  out << "</svg>\n";
  return out.str();
}

void LossPlot::write() const { write_file_atomic(path_, render_loss_svg(points_)); }

}  // namespace llm
