#include "llm/eval/scorer.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "llm/error.hpp"
#include "llm/eval/rolling_windows.hpp"
#include "llm/eval/text.hpp"
#include "llm/model.hpp"
#include "llm/tokenizer.hpp"

namespace llm {

namespace {

std::vector<int64_t> concatenated(const TokenRequest& request) {
  std::vector<int64_t> all = request.context;
  all.insert(all.end(), request.continuation.begin(), request.continuation.end());
  return all;
}

// One forward row: the model input (last max_length+1 tokens, minus the last) and which of its
// positions predict the continuation.
struct ScoringRow {
  std::vector<int64_t> input;
  std::vector<int64_t> continuation;
};

ScoringRow scoring_row(const std::vector<int64_t>& whole, std::vector<int64_t> continuation,
                       int64_t max_length) {
  const auto keep = std::min<std::size_t>(whole.size(), static_cast<std::size_t>(max_length) + 1);
  ScoringRow row;
  row.input.assign(whole.end() - static_cast<std::ptrdiff_t>(keep), whole.end() - 1);
  row.continuation = std::move(continuation);
  return row;
}

}  // namespace

LanguageModelScorer::LanguageModelScorer(SelectedLogitsFunction logits, EncodeFunction encode,
                                         int64_t eot_id, torch::Device device,
                                         ScorerOptions options)
    : logits_(std::move(logits)),
      encode_(std::move(encode)),
      eot_id_(eot_id),
      device_(device),
      options_(options) {
  if (options_.max_length < 1) throw UserError("--max_length must be a positive integer");
  if (options_.batch_size < 1) throw UserError("--batch_size must be a positive integer");
}

LanguageModelScorer LanguageModelScorer::for_model(CausalLM& model, const Tokenizer& tokenizer,
                                                   ScorerOptions options) {
  // lit-gpt's EOT: the tokenizer's EOS, else config.json's eos_token_id.
  std::optional<int64_t> eot = tokenizer.eos_id();
  if (!eot && !model.config().eos_token_ids.empty()) eot = model.config().eos_token_ids.front();
  if (!eot) throw UserError("tokenizer: no EOS token configured (needed as the evaluation's EOT)");
  CausalLM* scored = &model;
  auto logits = [scored](const torch::Tensor& input_ids, const torch::Tensor& rows) {
    torch::NoGradGuard no_grad;
    const auto hidden = scored->hidden_states(input_ids, nullptr);
    const auto flat = hidden.reshape({-1, hidden.size(-1)}).index_select(0, rows);
    return scored->output_head()->forward(flat);
  };
  const Tokenizer* tok = &tokenizer;
  auto encode = [tok](const std::string& text) { return tok->encode(text); };
  return LanguageModelScorer(logits, encode, *eot, model.device(), options);
}

TokenRequest LanguageModelScorer::encode_pair(const std::string& context,
                                              const std::string& continuation) const {
  if (context.empty()) return {{eot_id_}, encode_(continuation)};
  const auto moved = trailing_whitespace_bytes(context);
  const std::string kept_context = context.substr(0, context.size() - moved);
  const std::string full_continuation = context.substr(context.size() - moved) + continuation;
  auto whole = encode_(kept_context + full_continuation);
  auto context_tokens = encode_(kept_context);
  const auto split = std::min(context_tokens.size(), whole.size());
  return {std::move(context_tokens),
          std::vector<int64_t>(whole.begin() + static_cast<std::ptrdiff_t>(split), whole.end())};
}

std::vector<LoglikelihoodResult> LanguageModelScorer::loglikelihood(
    const std::vector<LoglikelihoodRequest>& requests) {
  std::vector<TokenRequest> encoded;
  encoded.reserve(requests.size());
  for (const auto& r : requests) encoded.push_back(encode_pair(r.context, r.continuation));
  return loglikelihood_tokens(encoded);
}

std::vector<double> LanguageModelScorer::loglikelihood_rolling(
    const std::vector<std::string>& texts) {
  std::vector<double> sums;
  sums.reserve(texts.size());
  for (const auto& text : texts) {
    const auto windows = rolling_windows(encode_(text), eot_id_, options_.max_length);
    double sum = 0.0;
    for (const auto& r : loglikelihood_tokens(windows)) sum += r.loglikelihood;
    sums.push_back(sum);
  }
  return sums;
}

std::vector<LoglikelihoodResult> LanguageModelScorer::loglikelihood_tokens(
    const std::vector<TokenRequest>& requests) {
  // Group by the concatenated sequence (the first request of a group answers for all of it),
  // then order groups longest first, ties by tokens: utils.Reorderer.
  std::map<std::vector<int64_t>, std::vector<std::size_t>> groups;
  std::vector<std::vector<int64_t>> first_seen;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    if (r.context.empty() || r.continuation.empty()) {
      throw UserError("evaluation request " + std::to_string(i) +
                      ": context and continuation must both be non-empty");
    }
    if (static_cast<int64_t>(r.continuation.size()) > options_.max_length) {
      throw UserError("evaluation request " + std::to_string(i) + ": continuation of " +
                      std::to_string(r.continuation.size()) + " tokens exceeds --max_length " +
                      std::to_string(options_.max_length));
    }
    auto key = concatenated(r);
    auto& members = groups[key];
    if (members.empty()) first_seen.push_back(std::move(key));
    members.push_back(i);
  }
  std::sort(first_seen.begin(), first_seen.end(), [](const auto& a, const auto& b) {
    if (a.size() != b.size()) return a.size() > b.size();
    return a < b;
  });

  std::vector<LoglikelihoodResult> results(requests.size());
  const auto batch = static_cast<std::size_t>(options_.batch_size);
  for (std::size_t start = 0; start < first_seen.size(); start += batch) {
    const std::size_t end = std::min(first_seen.size(), start + batch);
    std::vector<ScoringRow> rows;
    for (std::size_t g = start; g < end; ++g) {
      const auto& leader = requests[groups[first_seen[g]].front()];
      rows.push_back(scoring_row(first_seen[g], leader.continuation, options_.max_length));
    }
    const auto width = static_cast<int64_t>(rows.front().input.size());
    const auto count = static_cast<int64_t>(rows.size());
    // Right-padded with token 0 and no mask, as the harness does: a causal model's real
    // positions never see the padding.
    auto ids = torch::zeros({count, width}, torch::kLong);
    std::vector<int64_t> selected;
    for (int64_t b = 0; b < count; ++b) {
      const auto& row = rows[static_cast<std::size_t>(b)];
      const auto length = static_cast<int64_t>(row.input.size());
      ids[b].narrow(0, 0, length).copy_(torch::tensor(row.input, torch::kLong));
      const auto n = static_cast<int64_t>(row.continuation.size());
      for (int64_t p = length - n; p < length; ++p) selected.push_back(b * width + p);
    }
    const auto row_index = torch::tensor(selected, torch::kLong).to(device_);
    const auto logits = logits_(ids.to(device_), row_index);
    ++forward_passes_;
    const auto log_probs = torch::log_softmax(logits.to(torch::kFloat32), -1);
    int64_t offset = 0;
    for (std::size_t g = start; g < end; ++g) {
      const auto& row = rows[g - start];
      const auto n = static_cast<int64_t>(row.continuation.size());
      const auto mine = log_probs.narrow(0, offset, n);
      offset += n;
      const auto targets = torch::tensor(row.continuation, torch::kLong).to(device_);
      const auto picked = mine.gather(1, targets.unsqueeze(1)).squeeze(1);
      LoglikelihoodResult result;
      result.loglikelihood = picked.sum().item<float>();
      result.is_greedy = mine.argmax(-1).eq(targets).all().item<bool>();
      for (const auto member : groups[first_seen[g]]) results[member] = result;
    }
  }
  return results;
}

}  // namespace llm
