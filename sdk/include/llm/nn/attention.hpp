#pragma once
#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

// Causal scaled-dot-product attention. q [B, H, T, D]; k, v [B, KVH, S, D] with S >= T: the T
// queries are the last T positions of the S keys (a KV cache holds the first S - T). KVH divides H
// (grouped-query attention). Uses at::scaled_dot_product_attention on LibTorch 2.x, an explicit
// softmax on 1.13. Returns [B, H, T, D].
LLM_API torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v);
// The same computation written out (softmax in fp32): the 1.13 path, and the oracle that tests
// hold the SDPA path to.
LLM_API torch::Tensor reference_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                 const torch::Tensor& v);

// Rotary position embedding, Hugging Face "rotate_half" layout, applied to the first rotary_dim
// dims of each head (partial rotary for GPT-NeoX). cos/sin tables are computed in fp32.
class LLM_API RotaryEmbedding {
 public:
  RotaryEmbedding(int64_t rotary_dim, double theta, int64_t max_positions);
  // x [B, H, T, D]; position of x[..., t, :] = offset + t.
  torch::Tensor apply(const torch::Tensor& x, int64_t offset) const;
  int64_t rotary_dim() const { return rotary_dim_; }

 private:
  int64_t rotary_dim_;
  double theta_;
  int64_t max_positions_;
  mutable torch::Tensor cos_;  // [max_positions, rotary_dim], grown and moved to x's device lazily
  mutable torch::Tensor sin_;
  void ensure(int64_t positions, const torch::Device& device) const;
};

}  // namespace llm
