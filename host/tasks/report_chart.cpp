#include "report_chart.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "llm/svg.hpp"

namespace llmhost {

namespace {

namespace svg = llm::svg;

constexpr int kWidth = 920;
constexpr double kBarLeft = 240;
constexpr double kBarRight = 560;
constexpr double kValueColumn = 572;
constexpr double kVerdictColumn = 712;
constexpr double kBarHeight = 14;
constexpr double kBarGap = 4;
constexpr double kRowPadding = 16;
constexpr double kTop = 70;

const char* const kPalette[] = {"#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"};

const char* colour(size_t file) { return kPalette[file % (sizeof kPalette / sizeof *kPalette)]; }

std::string cell_text(const ReportCell& cell) {
  if (!cell.present) return "-";
  std::string text = svg::number(cell.value, 4);
  if (cell.stderr_value) text += " ± " + svg::number(*cell.stderr_value, 2);
  return text;
}

std::string attr(const char* name, double value) {
  return std::string(" ") + name + "=\"" + svg::number(value, 7) + "\"";
}

}  // namespace

std::string render_report_svg(const std::vector<std::string>& inputs,
                              const std::vector<ReportRow>& rows,
                              const std::vector<std::vector<std::string>>& verdicts) {
  const double row_height =
      static_cast<double>(inputs.size()) * (kBarHeight + kBarGap) + kRowPadding;
  const int height = static_cast<int>(kTop + static_cast<double>(rows.size()) * row_height + 20);
  std::ostringstream out;
  out << svg::open_document(kWidth, height, "Evaluation results compared with " + inputs.at(0));
  out << "<text x=\"12\" y=\"22\" font-size=\"15\">Evaluation results (bars: value, whiskers: ± "
         "standard error; each row has its own scale)</text>\n";
  // Legend: one swatch per results file; the first is the baseline.
  double legend_x = 12;
  for (size_t f = 0; f < inputs.size(); ++f) {
    const std::string label = inputs[f] + (f == 0 ? " (baseline)" : "");
    out << "<rect x=\"" << svg::number(legend_x, 7)
        << "\" y=\"36\" width=\"12\" height=\"12\" fill=\"" << colour(f) << "\"/>";
    out << "<text x=\"" << svg::number(legend_x + 16, 7) << "\" y=\"46\">" << svg::escape(label)
        << "</text>\n";
    legend_x += 16 + 7.0 * static_cast<double>(label.size()) + 24;
  }
  out << "<text x=\"" << kVerdictColumn << "\" y=\"" << kTop - 8
      << "\" font-weight=\"bold\">vs baseline</text>\n";

  for (size_t r = 0; r < rows.size(); ++r) {
    const ReportRow& row = rows[r];
    const double row_top = kTop + static_cast<double>(r) * row_height;
    if (r > 0) {
      out << "<line x1=\"12\" x2=\"" << kWidth - 12 << "\"" << attr("y1", row_top - kRowPadding / 2)
          << attr("y2", row_top - kRowPadding / 2) << " stroke=\"#e0e0e0\"/>\n";
    }
    out << "<text x=\"12\"" << attr("y", row_top + 12) << " font-weight=\"bold\">"
        << svg::escape(row.task) << "</text>";
    out << "<text x=\"12\"" << attr("y", row_top + 27) << " fill=\"#555\">"
        << svg::escape(row.metric) << "</text>\n";

    // The row's scale spans 0 and every value with its whisker.
    double lo = 0;
    double hi = 0;
    for (const auto& cell : row.cells) {
      if (!cell.present || !std::isfinite(cell.value)) continue;
      const double se =
          cell.stderr_value && std::isfinite(*cell.stderr_value) ? *cell.stderr_value : 0;
      lo = std::min(lo, cell.value - se);
      hi = std::max(hi, cell.value + se);
    }
    if (hi == lo) hi = lo + 1;
    const svg::Scale x{lo, hi, kBarLeft, kBarRight};
    if (lo < 0) {
      out << "<line" << attr("x1", x(0)) << attr("x2", x(0)) << attr("y1", row_top - 2)
          << attr("y2", row_top + row_height - kRowPadding) << " stroke=\"#333\"/>\n";
    }
    for (size_t f = 0; f < row.cells.size(); ++f) {
      const ReportCell& cell = row.cells[f];
      const double bar_top = row_top + static_cast<double>(f) * (kBarHeight + kBarGap);
      if (cell.present && std::isfinite(cell.value)) {
        const double left = std::min(x(0), x(cell.value));
        const double width = std::abs(x(cell.value) - x(0));
        out << "<rect class=\"bar\" data-task=\"" << svg::escape(row.task) << "\" data-metric=\""
            << svg::escape(row.metric) << "\" data-file=\"" << f << "\" data-value=\""
            << svg::number(cell.value, 10) << "\"";
        if (cell.stderr_value)
          out << " data-stderr=\"" << svg::number(*cell.stderr_value, 10) << "\"";
        out << attr("x", left) << attr("y", bar_top) << attr("width", width)
            << attr("height", kBarHeight) << " fill=\"" << colour(f) << "\"><title>"
            << svg::escape(inputs[f] + ": " + row.task + " " + row.metric + " = " + cell_text(cell))
            << "</title></rect>\n";
        if (cell.stderr_value && *cell.stderr_value > 0 && std::isfinite(*cell.stderr_value)) {
          const double mid = bar_top + kBarHeight / 2;
          const double a = x(cell.value - *cell.stderr_value);
          const double b = x(cell.value + *cell.stderr_value);
          out << "<path class=\"whisker\" d=\"M" << svg::number(a, 7) << " " << svg::number(mid, 7)
              << " H" << svg::number(b, 7) << " M" << svg::number(a, 7) << " "
              << svg::number(mid - 4, 7) << " V" << svg::number(mid + 4, 7) << " M"
              << svg::number(b, 7) << " " << svg::number(mid - 4, 7) << " V"
              << svg::number(mid + 4, 7) << "\" stroke=\"#222\" fill=\"none\"/>\n";
        }
      }
      out << "<text" << attr("x", kValueColumn) << attr("y", bar_top + 11) << ">"
          << svg::escape(cell_text(cell)) << "</text>\n";
      if (f == 0) continue;
      const std::string& verdict = verdicts.at(r).at(f - 1);
      const bool different = verdict == "different";
      out << "<text class=\"verdict\" data-file=\"" << f << "\"" << attr("x", kVerdictColumn)
          << attr("y", bar_top + 11) << " fill=\"" << (different ? "#d62728" : "#555") << "\""
          << (different ? " font-weight=\"bold\"" : "") << ">" << svg::escape(verdict)
          << "</text>\n";
    }
  }
  out << "</svg>\n";
  return out.str();
}

}  // namespace llmhost
