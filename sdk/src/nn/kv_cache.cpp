#include "llm/nn/kv_cache.hpp"

#include <string>

#include "llm/error.hpp"

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
    keys_.push_back(torch::empty({batch, kv_heads, capacity, head_dim}, options));
    values_.push_back(torch::empty({batch, kv_heads, capacity, head_dim}, options));
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
  keys.narrow(2, length_, tokens).copy_(k);
  values.narrow(2, length_, tokens).copy_(v);
  return {keys.narrow(2, 0, length_ + tokens), values.narrow(2, 0, length_ + tokens)};
}

void KVCache::advance(int64_t tokens) {
  TORCH_CHECK(tokens >= 0 && length_ + tokens <= capacity_, "KV cache: cannot advance by ", tokens);
  length_ += tokens;
}

}  // namespace llm
