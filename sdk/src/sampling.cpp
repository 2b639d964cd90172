#include "llm/sampling.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "llm/error.hpp"

namespace llm {

void check_sampling_options(const SamplingOptions& options) {
  if (!(options.temperature >= 0.0) || !std::isfinite(options.temperature)) {
    throw UserError("--temperature must be a finite number >= 0, got " +
                    std::to_string(options.temperature));
  }
  if (options.temperature > 0.0 && options.temperature < kMinTemperature) {
    std::ostringstream value;
    value << options.temperature;
    throw UserError("--temperature " + value.str() +
                    " is too small to divide the logits by (at least 1e-06; 0 = greedy)");
  }
  if (options.top_k < 0) {
    throw UserError("--top_k must be >= 0 (0 = off), got " + std::to_string(options.top_k));
  }
  if (!(options.top_p > 0.0 && options.top_p <= 1.0)) {
    throw UserError("--top_p must be in (0, 1], got " + std::to_string(options.top_p));
  }
}

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Keeps the k largest logits per row.
torch::Tensor keep_top_k(const torch::Tensor& logits, int64_t k) {
  const auto kth_largest = std::get<0>(logits.topk(k, -1)).narrow(-1, k - 1, 1);
  return logits.masked_fill(logits < kth_largest, kNegInf);
}

// Keeps the smallest set of most likely tokens whose probability reaches top_p (at least one).
torch::Tensor keep_nucleus(const torch::Tensor& logits, double top_p) {
  const auto sorted = logits.sort(-1, /*descending=*/true);
  const auto& sorted_logits = std::get<0>(sorted);
  const auto& order = std::get<1>(sorted);
  const auto probs = sorted_logits.softmax(-1);
  const auto mass_before = probs.cumsum(-1) - probs;
  const auto drop_sorted = mass_before >= top_p;
  const auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
  return logits.masked_fill(drop, kNegInf);
}

}  // namespace

torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& options,
                          torch::Generator* generator) {
  TORCH_CHECK(logits.dim() == 2, "sample_next: logits must be [batch, vocab]");
  check_sampling_options(options);
  if (options.temperature == 0.0) return logits.argmax(-1);

  auto scaled = logits.to(torch::kFloat) / options.temperature;
  const int64_t vocab = scaled.size(-1);
  if (options.top_k > 0 && options.top_k < vocab) scaled = keep_top_k(scaled, options.top_k);
  if (options.top_p < 1.0) scaled = keep_nucleus(scaled, options.top_p);
  auto probs = scaled.softmax(-1);
  if (generator == nullptr) return probs.multinomial(1).squeeze(-1);
  // A generator draws on its own device; a seeded CPU generator makes runs reproducible anywhere.
  const auto home = probs.device();
  return probs.to(generator->device()).multinomial(1, false, *generator).squeeze(-1).to(home);
}

}  // namespace llm
