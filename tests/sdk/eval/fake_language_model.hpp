#pragma once
// Deterministic stand-ins for a model and a tokenizer, so the engine's bookkeeping (windows,
// truncation, batching, de-duplication) is tested exactly, without a checkpoint.
#include <string>
#include <vector>

#include <torch/torch.h>

#include "llm/eval/scorer.hpp"

namespace llm::test {

constexpr int64_t kFakeVocab = 300;  // bytes 0..255 plus a few spare ids
constexpr int64_t kFakeEot = 299;

// Bigram model: the logits at a position depend only on the token there, so
// log p(next | prefix) = bigram_log_prob(token, next) regardless of padding or batching.
inline torch::Tensor bigram_logits(const torch::Tensor& tokens) {
  const auto t = tokens.to(torch::kFloat64).unsqueeze(-1);
  const auto v = torch::arange(kFakeVocab, torch::kFloat64);
  return torch::sin(t * 0.37 + v * 0.11 + t * v * 0.013).mul(3.0).to(torch::kFloat32);
}

inline double bigram_log_prob(int64_t token, int64_t next) {
  const auto logits = bigram_logits(torch::tensor({token}, torch::kLong));
  return torch::log_softmax(logits, -1)[0][next].item<float>();
}

// A causal model whose logits depend on the whole prefix (a running weighted sum).
inline torch::Tensor prefix_logits(const torch::Tensor& ids) {
  const auto weights = torch::arange(1, ids.size(1) + 1, torch::kFloat64);
  const auto running = (ids.to(torch::kFloat64) * 0.01).cumsum(1) + weights * 0.0;
  const auto v = torch::arange(kFakeVocab, torch::kFloat64);
  return torch::cos(running.unsqueeze(-1) * (v * 0.05 + 1.0)).mul(4.0).to(torch::kFloat32);
}

inline SelectedLogitsFunction selected(torch::Tensor (*full)(const torch::Tensor&)) {
  return [full](const torch::Tensor& ids, const torch::Tensor& rows) {
    const auto logits = full(ids);
    return logits.reshape({-1, logits.size(-1)}).index_select(0, rows);
  };
}

// One token per byte: splits and truncation are then visible in the text itself.
inline std::vector<int64_t> byte_encode(const std::string& text) {
  std::vector<int64_t> ids;
  for (const unsigned char c : text) ids.push_back(c);
  return ids;
}

inline LanguageModelScorer fake_scorer(torch::Tensor (*full)(const torch::Tensor&),
                                       int64_t max_length, int64_t batch_size) {
  ScorerOptions options;
  options.max_length = max_length;
  options.batch_size = batch_size;
  return LanguageModelScorer(selected(full), byte_encode, kFakeEot, torch::kCPU, options);
}

}  // namespace llm::test
