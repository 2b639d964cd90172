#pragma once
// lm-eval metrics.py: aggregations and their standard errors (spec §4).
#include <cstddef>
#include <utility>
#include <vector>

#include "llm/export.hpp"

namespace llm {

LLM_API double mean(const std::vector<double>& values);
// sample_stddev / sqrt(n), with n - 1 in the variance; NaN for fewer than two values.
LLM_API double mean_stderr(const std::vector<double>& values);
// exp(-Σa / Σb) over (log-likelihood, count) pairs.
LLM_API double weighted_perplexity(const std::vector<std::pair<double, double>>& pairs);
// -Σa / Σb / ln 2.
LLM_API double bits_per_byte(const std::vector<std::pair<double, double>>& pairs);
// Index of the first maximum (numpy/python argmax); 0 for an empty list.
LLM_API std::size_t first_argmax(const std::vector<double>& values);

}  // namespace llm
