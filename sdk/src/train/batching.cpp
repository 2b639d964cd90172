#include "llm/train/batching.hpp"

#include <algorithm>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "llm/loss.hpp"

namespace llm {

Batch make_batch(const PreparedSplit& split, const std::vector<int64_t>& samples, bool mask_inputs,
                 int64_t max_seq_length, int64_t pad_id) {
  int64_t longest = 0;
  for (const auto s : samples) longest = std::max(longest, split.length(s));
  if (max_seq_length > 0) longest = std::min(longest, max_seq_length);
  const auto b = static_cast<int64_t>(samples.size());
  Batch batch;
  batch.input_ids = torch::full({b, longest}, pad_id, torch::kInt64);
  batch.labels = torch::full({b, longest}, kIgnoreIndex, torch::kInt64);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto labels = batch.labels.accessor<int64_t, 2>();
  for (int64_t row = 0; row < b; ++row) {
    const int64_t s = samples[row];
    const int64_t length = std::min(split.length(s), longest);
    const int64_t masked = mask_inputs ? std::min(split.prompt_length(s), length) : 0;
    const auto* src = split.ids(s).data_ptr<int32_t>();
    for (int64_t t = 0; t < length; ++t) {
      ids[row][t] = src[t];
      if (t >= masked) labels[row][t] = src[t];
    }
    batch.tokens += length;
    batch.target_tokens += std::max<int64_t>(length - std::max<int64_t>(masked, 1), 0);
  }
  return batch;
}

namespace {

int64_t cut_length(const PreparedSplit& split, int64_t sample, int64_t max_seq_length) {
  const int64_t length = split.length(sample);
  return max_seq_length > 0 ? std::min(length, max_seq_length) : length;
}

}  // namespace

Batch make_packed_batch(const PreparedSplit& split, const std::vector<int64_t>& samples,
                        bool mask_inputs, int64_t max_seq_length) {
  Batch batch;
  std::vector<int64_t> ids, labels;
  for (const auto s : samples) {
    const int64_t length = cut_length(split, s, max_seq_length);
    if (length == 0) continue;  // nothing to attend to or predict
    // The first token is never a target: unpacked, nothing predicts it; packed, it must not be
    // predicted from the previous sample.
    const int64_t masked =
        std::max<int64_t>(mask_inputs ? std::min(split.prompt_length(s), length) : 0, 1);
    const auto* src = split.ids(s).data_ptr<int32_t>();
    for (int64_t t = 0; t < length; ++t) {
      ids.push_back(src[t]);
      labels.push_back(t >= masked ? src[t] : kIgnoreIndex);
    }
    batch.packed_lengths.push_back(length);
    batch.tokens += length;
    batch.target_tokens += length - masked;
  }
  const auto total = static_cast<int64_t>(ids.size());
  batch.input_ids = torch::tensor(ids, torch::kInt64).view({1, total});
  batch.labels = torch::tensor(labels, torch::kInt64).view({1, total});
  return batch;
}

std::vector<std::vector<int64_t>> pack_samples(const PreparedSplit& split,
                                               const std::vector<int64_t>& samples,
                                               int64_t max_seq_length, int64_t token_budget,
                                               int64_t max_samples) {
  std::vector<std::vector<int64_t>> groups;
  int64_t used = 0;
  for (const auto s : samples) {
    const int64_t length = cut_length(split, s, max_seq_length);
    if (groups.empty() || used + length > token_budget ||
        (max_samples > 0 && static_cast<int64_t>(groups.back().size()) >= max_samples)) {
      groups.emplace_back();
      used = 0;
    }
    groups.back().push_back(s);
    used += length;
  }
  return groups;
}

Batch fill_packed_batch(const Batch& packed, int64_t tokens, int64_t longest, int64_t pad_id) {
  const int64_t used = packed.input_ids.numel();
  TORCH_CHECK(
      packed.input_ids.dim() == 2 && packed.input_ids.size(0) == 1 && used <= tokens && longest > 0,
      "fill_packed_batch: a packed batch [1, T <= ", tokens, "] expected, got ",
      packed.input_ids.sizes());
  Batch filled = packed;
  const int64_t filler = tokens - used;
  if (filler == 0) return filled;
  filled.input_ids =
      torch::cat({packed.input_ids, torch::full({1, filler}, pad_id, torch::kInt64)}, 1);
  filled.labels =
      torch::cat({packed.labels, torch::full({1, filler}, kIgnoreIndex, torch::kInt64)}, 1);
  for (int64_t left = filler; left > 0; left -= longest) {
    filled.packed_lengths.push_back(std::min(left, longest));
  }
  return filled;
}

torch::Tensor summed_token_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  return masked_cross_entropy(logits, labels, kIgnoreIndex).sum;
}

SampleOrder::SampleOrder(int64_t dataset_size, uint64_t seed) : size_(dataset_size), seed_(seed) {}

int64_t SampleOrder::sample_at(int64_t k) {
  const int64_t epoch = k / size_;
  if (epoch != cached_epoch_) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(seed_ + static_cast<uint64_t>(epoch));
    const auto perm = torch::randperm(size_, generator, torch::kInt64);
    permutation_.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + size_);
    cached_epoch_ = epoch;
  }
  return permutation_[k % size_];
}

}  // namespace llm
