#pragma once
#include <array>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"
#include "llm/rope_scaling.hpp"

namespace llm {

class KVCache;
struct RotaryTables;

// Causal scaled-dot-product attention. q [B, H, T, D]; k, v [B, KVH, S, D] with S >= T: the T
// queries are the last T positions of the S keys (a KV cache holds the first S - T). KVH divides H
// (grouped-query attention). Uses at::scaled_dot_product_attention on LibTorch 2.x, an explicit
// softmax on 1.13. Returns [B, H, T, D].
LLM_API torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v);
// Attention of q over k, v with `bias` (q's dtype, broadcastable to [B, 1, T, S]; 0 where a query
// may see a key, -inf where not) added to the scores: static-shape decoding over a whole KV cache.
LLM_API torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const torch::Tensor& bias);
// Samples laid end to end in one row (padding-free packing): each attends only to itself,
// causally, and its positions start again at 0, so every sample is computed as if it were alone.
class LLM_API PackedSequences {
 public:
  // lengths: the samples' token counts in row order (each > 0); tensors live on `device`.
  PackedSequences(std::vector<int64_t> lengths, const torch::Device& device);
  // A fixed layout, for work recorded once and replayed (a CUDA graph): always `tokens` positions
  // in `slots` samples of at most `longest` tokens, unused slots empty; assign() refills the same
  // tensors with each batch's lengths. Attention kernels size their grids by slots and longest.
  PackedSequences(int64_t tokens, int64_t slots, int64_t longest, const torch::Device& device);
  // The next lengths, in the same tensors: summing to tokens(), at most `slots` of them (a
  // variable layout: as many as it has), each in [1, longest]. Copies are queued on the current
  // stream; nothing waits for the device.
  void assign(const std::vector<int64_t>& lengths);
  const std::vector<int64_t>& lengths() const { return lengths_; }
  int64_t tokens() const { return tokens_; }
  int64_t longest() const { return longest_; }
  const torch::Tensor& positions() const { return positions_; }  // [T] int64: index in its sample
  // [samples + 1] int32: where each sample starts, then T (flash attention's cu_seqlens).
  const torch::Tensor& cumulative_lengths() const { return cumulative_lengths_; }
  // [T, T] in `dtype`: 0 where query t may see key s (same sample, s <= t), -inf elsewhere. Built
  // once per dtype and shared by every layer.
  const torch::Tensor& attention_bias(torch::ScalarType dtype) const;

 private:
  std::vector<int64_t> lengths_;
  int64_t tokens_ = 0;
  int64_t longest_ = 0;
  torch::Tensor positions_;
  torch::Tensor sample_of_;  // [T] int64: which sample each token belongs to
  mutable torch::Tensor bias_;
  torch::Tensor cumulative_lengths_;  // last: plugins built against ABI 4 see the same offsets
  int64_t slots_ = 0;                 // fixed layouts: the cumulative lengths' entries - 1
  void fill(const torch::Device& device);
};

// Attention within each packed sample. q [1, H, T, D]; k, v [1, KVH, T, D]; T = packing.tokens().
LLM_API torch::Tensor packed_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const PackedSequences& packing);

// The same computation written out (softmax in fp32): the 1.13 path, and the oracle that tests
// hold the SDPA path to.
LLM_API torch::Tensor reference_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                 const torch::Tensor& v);

// The rotary_dim / 2 inverse frequencies 1 / theta^(2i / rotary_dim), then `scaling`, in fp32 with
// the operations transformers uses (so the same values to the last bit on the same kernels).
LLM_API torch::Tensor rope_inverse_frequencies(int64_t rotary_dim, double theta,
                                               const RopeScaling& scaling = {},
                                               const torch::Device& device = torch::kCPU);

// Rotary position embedding, Hugging Face "rotate_half" layout, applied to the first rotary_dim
// dims of each head (partial rotary for GPT-NeoX). cos/sin tables are computed in fp32.
class LLM_API RotaryEmbedding {
 public:
  RotaryEmbedding(int64_t rotary_dim, double theta, int64_t max_positions,
                  RopeScaling scaling = {});
  // x [B, H, T, D]; position of x[..., t, :] = offset + t.
  torch::Tensor apply(const torch::Tensor& x, int64_t offset) const;
  // Positions from the cache: cache->length() + t, or its device position in a static step;
  // no cache: 0 + t.
  torch::Tensor apply_with_cache(const torch::Tensor& x, KVCache* cache) const;
  // x [..., T, D] of a packed row: token t at its position within its sample.
  torch::Tensor apply_packed(const torch::Tensor& x, const PackedSequences& packing) const;
  int64_t rotary_dim() const { return rotary_dim_; }
  // q, k, v [B, heads, T, head_dim] out of one projection's output qkv [B, T, heads * 3 * head_dim]
  // that holds, per head, [q | k | v] (GPT-NeoX's query_key_value), q and k rotated at the
  // positions apply_with_cache (cache) or apply_packed (packing) would use. Without a cache on
  // CUDA: one kernel each way, q and k rotated inside qkv and the three returned as views of it,
  // so qkv must be the projection's output, not read again by the caller.
  std::array<torch::Tensor, 3> split_interleaved_qkv(const torch::Tensor& qkv, int64_t heads,
                                                     KVCache* cache,
                                                     const PackedSequences* packing) const;

 private:
  int64_t rotary_dim_;
  double theta_;
  int64_t max_positions_;
  RopeScaling scaling_;
  // Head-dim wide tables in x's dtype and the permutation rotate() applies (rotary.cpp), shared
  // by every layer with the same settings, grown and moved to x's device lazily. The shared
  // registry is thread-safe; one model's forward is not meant to run on two threads at once.
  mutable std::shared_ptr<const RotaryTables> tables_;
  void ensure(int64_t positions, const torch::Tensor& x) const;
  torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos,
                       const torch::Tensor& sin) const;
};

}  // namespace llm
