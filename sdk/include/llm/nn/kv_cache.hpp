#pragma once
#include <functional>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

// A static key/value cache: per layer, [batch, kv_heads, capacity, head_dim] allocated once, so
// decoding never reallocates.
//
// Static decoding (for CUDA graph replay): after enable_static_decode(), one-token steps read their
// position from a device tensor, write the cache with index_copy_ and attend over the whole
// capacity under a mask, so every step launches the same kernels on the same buffers with no host
// value baked in. Longer inputs (a prompt) keep the dynamic path.
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
  // append + causal attention of q [batch, heads, T, head_dim] over the cached keys: what a model
  // family calls, so the static path stays the cache's business. Returns [batch, heads, T, D].
  torch::Tensor attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                       const torch::Tensor& v);
  void advance(int64_t tokens);
  void reset() { rewind(0); }

  void enable_static_decode();
  bool is_static_step(int64_t tokens) const { return position_.defined() && tokens == 1; }
  // int64 [1] on the cache's device: the position of the next token (static decoding only).
  const torch::Tensor& position() const { return position_; }
  // Sets the length (and the device position) to `length`, e.g. after a warm-up or capture run.
  void rewind(int64_t length);
  // A replayed graph advanced the device position by one; keep the host count in step.
  void mirror_replayed_step();
  // Static decoding: a value every layer of one step shares (rotary rows for the step's position),
  // computed by the first layer that asks for `key` and forgotten when the step advances.
  torch::Tensor per_step(const void* key, const std::function<torch::Tensor()>& compute);

 private:
  std::vector<torch::Tensor> keys_;
  std::vector<torch::Tensor> values_;
  int64_t capacity_;
  int64_t length_ = 0;
  torch::Tensor position_;       // static decoding: int64 [1]
  torch::Tensor key_positions_;  // static decoding: arange(capacity)
  torch::Tensor step_mask_;      // static decoding: [1, 1, 1, capacity] additive, 0 or -inf
  bool step_mask_current_ = false;
  std::vector<std::pair<const void*, torch::Tensor>> step_values_;
};

}  // namespace llm
