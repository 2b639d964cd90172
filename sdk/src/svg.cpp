#include "llm/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace llm::svg {

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters even as references.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string number(double value, int significant) {
  if (!std::isfinite(value)) return "0";
  if (value == 0) return "0";  // also folds -0
  char buffer[64];
  // snprintf's %g follows LC_NUMERIC; the host never calls setlocale, so this is the C locale.
  std::snprintf(buffer, sizeof buffer, "%.*g", significant, value);
  return buffer;
}

double Scale::operator()(double value) const {
  if (hi == lo) return (pixel_lo + pixel_hi) / 2;
  return pixel_lo + (value - lo) / (hi - lo) * (pixel_hi - pixel_lo);
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (const double factor : {1.0, 2.0, 5.0, 10.0}) {
    step = factor * magnitude;
    if (step >= raw) break;
  }
  const double first = std::floor(lo / step + 1e-9) * step;
  std::vector<double> ticks;
  for (double t = first; ticks.empty() || ticks.back() < hi - step * 1e-9; t += step) {
    // Multiples of step, not accumulated sums, so 0.30000000000000004 never shows up.
    ticks.push_back(std::round(t / step) * step);
    if (ticks.size() > 100) break;
  }
  return ticks;
}

std::string open_document(int width, int height, std::string_view title) {
  const std::string w = std::to_string(width);
  const std::string h = std::to_string(height);
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w + " " + h +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n<title>" + escape(title) +
         "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
}

}  // namespace llm::svg
