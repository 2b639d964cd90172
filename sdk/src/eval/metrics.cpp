#include "llm/eval/metrics.hpp"

#include <cmath>
#include <limits>

namespace llm {

double mean(const std::vector<double>& values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0.0;
  for (const double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double mean_stderr(const std::vector<double>& values) {
  const auto n = values.size();
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  const double mu = mean(values);
  double squares = 0.0;
  for (const double v : values) squares += (v - mu) * (v - mu);
  const double stddev = std::sqrt(squares / static_cast<double>(n - 1));
  return stddev / std::sqrt(static_cast<double>(n));
}

namespace {
double weighted_mean(const std::vector<std::pair<double, double>>& pairs) {
  double a = 0.0;
  double b = 0.0;
  for (const auto& [x, y] : pairs) {
    a += x;
    b += y;
  }
  return a / b;
}
}  // namespace

double weighted_perplexity(const std::vector<std::pair<double, double>>& pairs) {
  return std::exp(-weighted_mean(pairs));
}

double bits_per_byte(const std::vector<std::pair<double, double>>& pairs) {
  return -weighted_mean(pairs) / std::log(2.0);
}

std::size_t first_argmax(const std::vector<double>& values) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}

}  // namespace llm
