#pragma once
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

// A static key/value cache: per layer, [batch, kv_heads, capacity, head_dim] allocated once, so
// decoding never reallocates (and can later be captured in a CUDA graph).
class LLM_API KVCache {
 public:
  KVCache(int64_t num_layers, int64_t batch, int64_t kv_heads, int64_t capacity, int64_t head_dim,
          const torch::TensorOptions& options);

  // Positions already cached (the next token's position).
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }

  // Writes k, v [batch, kv_heads, T, head_dim] at positions length()..length()+T of `layer` and
  // returns views over positions 0..length()+T. Call advance(T) once all layers have appended.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k,
                                                 const torch::Tensor& v);
  void advance(int64_t tokens);
  void reset() { length_ = 0; }

 private:
  std::vector<torch::Tensor> keys_;
  std::vector<torch::Tensor> values_;
  int64_t capacity_;
  int64_t length_ = 0;
};

}  // namespace llm
