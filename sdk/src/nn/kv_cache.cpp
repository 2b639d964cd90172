#include "llm/nn/kv_cache.hpp"

#include <limits>
#include <string>

#include "llm/error.hpp"
#include "llm/nn/attention.hpp"

namespace llm {

KVCache::KVCache(int64_t num_layers, int64_t batch, int64_t kv_heads, int64_t capacity,
                 int64_t head_dim, const torch::TensorOptions& options)
    : capacity_(capacity) {
  if (num_layers <= 0 || batch <= 0 || kv_heads <= 0 || capacity <= 0 || head_dim <= 0) {
    throw UserError("KV cache: every dimension must be positive (capacity " +
                    std::to_string(capacity) + ", batch " + std::to_string(batch) + ")");
  }
  keys_.reserve(num_layers);
  values_.reserve(num_layers);
  for (int64_t layer = 0; layer < num_layers; ++layer) {
    // Zeroed, not empty: static decoding attends over the whole capacity (masked), and a masked
    // NaN from uninitialised memory would still poison the softmax's matrix product.
    keys_.push_back(torch::zeros({batch, kv_heads, capacity, head_dim}, options));
    values_.push_back(torch::zeros({batch, kv_heads, capacity, head_dim}, options));
  }
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  TORCH_CHECK(layer >= 0 && layer < static_cast<int64_t>(keys_.size()), "KV cache: layer ", layer,
              " out of range");
  const int64_t tokens = k.size(2);
  if (length_ + tokens > capacity_) {
    throw UserError("KV cache: " + std::to_string(length_ + tokens) +
                    " positions exceed its capacity of " + std::to_string(capacity_));
  }
  auto& keys = keys_[layer];
  auto& values = values_[layer];
  if (is_static_step(tokens)) {
    keys.index_copy_(2, position_, k);
    values.index_copy_(2, position_, v);
    return {keys, values};
  }
  keys.narrow(2, length_, tokens).copy_(k);
  values.narrow(2, length_, tokens).copy_(v);
  return {keys.narrow(2, 0, length_ + tokens), values.narrow(2, 0, length_ + tokens)};
}

torch::Tensor KVCache::attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v) {
  const auto [keys, values] = append(layer, k, v);
  if (!is_static_step(q.size(2))) return causal_attention(q, keys, values);
  if (!step_mask_current_) {  // once per step, by the first layer
    // Additive and in the activations' dtype, so attention uses it as is. Its row is laid out 16
    // wide-aligned (key_positions_ is padded), so SDPA's efficient kernel needs no padded copy.
    const auto zero = torch::zeros({}, q.options());
    const auto blocked = torch::full({}, -std::numeric_limits<double>::infinity(), q.options());
    step_mask_ = torch::where(key_positions_.le(position_), zero, blocked)
                     .view({1, 1, 1, -1})
                     .narrow(3, 0, capacity_);
    step_mask_current_ = true;
  }
  return masked_attention(q, keys, values, step_mask_);
}

void KVCache::advance(int64_t tokens) {
  TORCH_CHECK(tokens >= 0 && length_ + tokens <= capacity_, "KV cache: cannot advance by ", tokens);
  length_ += tokens;
  if (position_.defined()) position_.add_(tokens);
  step_mask_current_ = false;
  step_values_.clear();
}

void KVCache::enable_static_decode() {
  const auto options = torch::TensorOptions().dtype(torch::kLong).device(keys_.front().device());
  const int64_t padded = (capacity_ + 15) / 16 * 16;
  key_positions_ = torch::arange(padded, options);
  position_ = torch::full({1}, length_, options);
  step_mask_current_ = false;
}

void KVCache::rewind(int64_t length) {
  TORCH_CHECK(length >= 0 && length <= capacity_, "KV cache: cannot rewind to ", length);
  length_ = length;
  if (position_.defined()) position_.fill_(length);
  step_mask_current_ = false;
  step_values_.clear();
}

torch::Tensor KVCache::per_step(const void* key, const std::function<torch::Tensor()>& compute) {
  for (const auto& [k, value] : step_values_) {
    if (k == key) return value;
  }
  step_values_.emplace_back(key, compute());
  return step_values_.back().second;
}

void KVCache::mirror_replayed_step() {
  TORCH_CHECK(length_ < capacity_, "KV cache: replayed past its capacity");
  ++length_;
}

}  // namespace llm
