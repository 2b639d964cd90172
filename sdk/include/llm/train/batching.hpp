#pragma once
// Turning prepared samples into padded micro-batches, and the order samples are visited in.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"
#include "llm/train/prepared_data.hpp"

namespace llm {

inline constexpr int64_t kIgnoreIndex = -100;

struct Batch {
  torch::Tensor input_ids;    // int64 [B, T], right-padded with pad_id
  torch::Tensor labels;       // int64 [B, T], kIgnoreIndex on padding (and on prompt if masked)
  int64_t target_tokens = 0;  // labels[:, 1:] != kIgnoreIndex: the tokens the loss averages over
  int64_t tokens = 0;         // real (non-padding) input tokens
  std::vector<int64_t> packed_lengths;  // packed batches: the samples' lengths in the one row
};

// Pads to the longest sample of the batch; samples longer than max_seq_length (> 0) are cut.
LLM_API Batch make_batch(const PreparedSplit& split, const std::vector<int64_t>& samples,
                         bool mask_inputs, int64_t max_seq_length, int64_t pad_id = 0);

// The samples laid end to end in one row [1, sum of lengths], no padding (padding-free packing):
// labels as make_batch's, and additionally ignored at each sample's first token, which the previous
// sample's last token would otherwise be trained to predict. Cut to max_seq_length as make_batch.
LLM_API Batch make_packed_batch(const PreparedSplit& split, const std::vector<int64_t>& samples,
                                bool mask_inputs, int64_t max_seq_length);

// Consecutive groups of `samples` (order kept) whose lengths, cut to max_seq_length, sum to at most
// token_budget each, and of at most max_samples samples when > 0; a sample longer than the budget
// is a group of its own.
LLM_API std::vector<std::vector<int64_t>> pack_samples(const PreparedSplit& split,
                                                       const std::vector<int64_t>& samples,
                                                       int64_t max_seq_length, int64_t token_budget,
                                                       int64_t max_samples = 0);

// A packed batch brought to exactly `tokens` positions: the rest is filler (pad_id, every label
// ignored) cut into pieces of at most `longest` tokens, appended to packed_lengths as samples of
// their own, so it attends only to itself and adds nothing to the loss or the gradients.
// `tokens` and target_tokens keep counting the real samples only.
LLM_API Batch fill_packed_batch(const Batch& packed, int64_t tokens, int64_t longest,
                                int64_t pad_id = 0);

// Summed next-token cross-entropy over positions whose shifted label is not ignored, in fp32.
// logits [B, T, V], labels [B, T]: position t predicts labels[t + 1].
LLM_API torch::Tensor summed_token_loss(const torch::Tensor& logits, const torch::Tensor& labels);

// Epochs of a seeded shuffle laid end to end: global sample k belongs to epoch k / N and is
// permutation(seed + epoch)[k % N]. A pure function of (seed, k), so a data position is one number.
class LLM_API SampleOrder {
 public:
  SampleOrder(int64_t dataset_size, uint64_t seed);
  int64_t sample_at(int64_t k);
  int64_t dataset_size() const { return size_; }

 private:
  int64_t size_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> permutation_;
};

}  // namespace llm
