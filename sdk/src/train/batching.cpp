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
