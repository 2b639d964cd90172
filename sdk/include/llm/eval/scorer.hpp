#pragma once
// The evaluation engine every task plugin shares: lm-evaluation-harness (115206dc) BaseLM scoring.
// See shared/research/lm-eval-spec.md §2 for the rules implemented here.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

class CausalLM;
class Tokenizer;

struct LoglikelihoodRequest {
  std::string context;
  std::string continuation;
};

// One request already tokenised: the model sees context + continuation and scores continuation.
struct TokenRequest {
  std::vector<int64_t> context;
  std::vector<int64_t> continuation;
};

struct LoglikelihoodResult {
  double loglikelihood = 0.0;  // sum of log p(continuation token | everything before it)
  bool is_greedy = false;      // every continuation token is the argmax at its position
};

struct ScorerOptions {
  int64_t max_length = 2048;  // model context: inputs keep their last max_length tokens
  int64_t batch_size = 1;     // de-duplicated requests per forward pass
};

// Scores batches of token sequences. `input_ids` [B, T] (int64, right-padded with 0) and
// `rows` [N] (flat indices b * T + t) -> logits [N, vocab] of exactly those positions, so a
// model only projects the rows that are scored.
using SelectedLogitsFunction =
    std::function<torch::Tensor(const torch::Tensor& input_ids, const torch::Tensor& rows)>;
using EncodeFunction = std::function<std::vector<int64_t>(const std::string& text)>;

class LLM_API LanguageModelScorer {
 public:
  LanguageModelScorer(SelectedLogitsFunction logits, EncodeFunction encode, int64_t eot_id,
                      torch::Device device, ScorerOptions options);

  // A scorer over a loaded model (no gradients) and its tokenizer. EOT = the tokenizer's EOS;
  // UserError when the tokenizer has none.
  static LanguageModelScorer for_model(CausalLM& model, const Tokenizer& tokenizer,
                                       ScorerOptions options);

  // (sum log-prob, is_greedy) per request, in request order. Contexts ending in whitespace
  // give that whitespace to the continuation; continuation tokens are split off by count.
  std::vector<LoglikelihoodResult> loglikelihood(const std::vector<LoglikelihoodRequest>& requests);
  // Sum of log-probs of every token of each text, scored in the harness's disjoint windows.
  std::vector<double> loglikelihood_rolling(const std::vector<std::string>& texts);
  // The core: one forward per distinct context+continuation, sorted longest first, batched.
  std::vector<LoglikelihoodResult> loglikelihood_tokens(const std::vector<TokenRequest>& requests);

  // The harness's _encode_pair (§2.3) and tok_encode (no BOS/EOS).
  TokenRequest encode_pair(const std::string& context, const std::string& continuation) const;
  std::vector<int64_t> encode(const std::string& text) const { return encode_(text); }

  int64_t eot_id() const { return eot_id_; }
  const ScorerOptions& options() const { return options_; }
  int64_t forward_passes() const { return forward_passes_; }  // for tests and progress

 private:
  SelectedLogitsFunction logits_;
  EncodeFunction encode_;
  int64_t eot_id_;
  torch::Device device_;
  ScorerOptions options_;
  int64_t forward_passes_ = 0;
};

}  // namespace llm
