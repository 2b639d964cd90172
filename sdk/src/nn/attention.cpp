#include "llm/nn/attention.hpp"

#include <cmath>
#include <limits>
#include <mutex>

#include "../host_staging.hpp"
#include "fused_ops.hpp"

namespace llm {
namespace {

// True where query t (the last T of S positions) may not see key s.
torch::Tensor future_mask(int64_t queries, int64_t keys, const torch::Device& device) {
  const auto options = torch::TensorOptions().dtype(torch::kLong).device(device);
  const auto query_positions = torch::arange(queries, options).unsqueeze(1) + (keys - queries);
  const auto key_positions = torch::arange(keys, options).unsqueeze(0);
  return key_positions > query_positions;  // [T, S]
}

// 0 where query t may see key s, -inf where not: [group * T, S], rows in grouped-query order.
torch::Tensor causal_bias(int64_t queries, int64_t keys, int64_t group,
                          const torch::TensorOptions& options) {
  const auto bias = torch::zeros({queries, keys}, options)
                        .masked_fill_(future_mask(queries, keys, options.device()),
                                      -std::numeric_limits<double>::infinity());
  return group == 1 ? bias : bias.repeat({group, 1});
}

#if TORCH_VERSION_MAJOR >= 2
torch::Tensor sdpa_attention(const torch::Tensor& q, const torch::Tensor& k,
                             const torch::Tensor& v) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  if (q.is_cuda()) {
    // cuDNN attention builds an execution plan per shape, and decoding grows the key length every
    // step: on an H100 that cost ~30 ms per layer and step. Flash/efficient kernels take any
    // length; training steps of recurring shapes take cuDNN explicitly (fused_ops.hpp).
    static std::once_flag no_cudnn;
    std::call_once(no_cudnn, [] { at::globalContext().setSDPUseCuDNN(false); });
  }
#endif
  const int64_t queries = q.size(2);
  const int64_t keys = k.size(2);
  c10::optional<torch::Tensor> mask;
  bool is_causal = false;
  if (queries == keys) {
    is_causal = queries > 1;
  } else if (queries > 1) {
    mask = future_mask(queries, keys, q.device()).logical_not();  // SDPA: true = attend
  }
  const int64_t heads = q.size(1);
  const int64_t kv_heads = k.size(1);
  if (is_causal && fused::cudnn_self_attention_applies(q, k, v)) {
    if (auto out = fused::cudnn_self_attention(q, k, v); out.defined()) return out;
  }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal, c10::nullopt,
                                          /*enable_gqa=*/heads != kv_heads);
#else
  if (heads == kv_heads) return at::scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal);
  // Older SDPA has no grouped-query mode: repeat each KV head for its group of query heads.
  const auto repeat = [&](const torch::Tensor& t) {
    return t.unsqueeze(2)
        .expand({t.size(0), kv_heads, heads / kv_heads, t.size(2), t.size(3)})
        .reshape({t.size(0), heads, t.size(2), t.size(3)});
  };
  return at::scaled_dot_product_attention(q, repeat(k), repeat(v), mask, 0.0, is_causal);
#endif
}
#endif

}  // namespace

// softmax(QK^T / sqrt(D) + mask) V. Grouped-query heads are folded into the query-row dim, so
// the smaller K and V are never copied per query head.
torch::Tensor reference_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v) {
  const int64_t batch = q.size(0);
  const int64_t heads = q.size(1);
  const int64_t queries = q.size(2);
  const int64_t head_dim = q.size(3);
  const int64_t kv_heads = k.size(1);
  const int64_t keys = k.size(2);
  const int64_t group = heads / kv_heads;
  const auto grouped_q = q.reshape({batch, kv_heads, group * queries, head_dim});
  // In place: matmul's backward keeps its inputs, not its output. Adding 0 / -inf gives exactly
  // masked_fill's scores (and softmax's zero gradient at -inf), but in one vectorised pass where
  // the CPU's masked_fill and its backward ran a scalar loop each (bench/NOTES.md, "CPU speed").
  auto scores = torch::matmul(grouped_q, k.transpose(-1, -2));
  scores.div_(std::sqrt(double(head_dim)));
  if (queries > 1) scores.add_(causal_bias(queries, keys, group, scores.options()));
  const auto probs = torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type());
  return torch::matmul(probs, v).view({batch, heads, queries, head_dim});
}

torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& bias) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "masked_attention: 4-d q, k, v");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "masked_attention: KV heads must divide query heads");
  const int64_t heads = q.size(1);
  const int64_t kv_heads = k.size(1);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  return at::scaled_dot_product_attention(q, k, v, bias, 0.0, false, c10::nullopt,
                                          /*enable_gqa=*/heads != kv_heads);
#else
  const int64_t batch = q.size(0);
  const int64_t queries = q.size(2);
  const int64_t head_dim = q.size(3);
  const int64_t keys = k.size(2);
  const int64_t group = heads / kv_heads;
  // Grouped-query heads folded into the query rows, as in reference_causal_attention.
  const auto grouped_q = q.reshape({batch, kv_heads, group * queries, head_dim});
  auto scores = torch::matmul(grouped_q, k.transpose(-1, -2)) / std::sqrt(double(head_dim));
  scores = (scores.view({batch, kv_heads, group, queries, keys}) + bias.unsqueeze(2))
               .view({batch, kv_heads, group * queries, keys});
  const auto probs = torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type());
  return torch::matmul(probs, v).view({batch, heads, queries, head_dim});
#endif
}

PackedSequences::PackedSequences(std::vector<int64_t> lengths, const torch::Device& device)
    : lengths_(std::move(lengths)) {
  for (const int64_t length : lengths_) {
    TORCH_CHECK(length > 0, "PackedSequences: sample lengths must be positive");
    tokens_ += length;
    longest_ = std::max(longest_, length);
  }
  slots_ = static_cast<int64_t>(lengths_.size());
  fill(device);
}

PackedSequences::PackedSequences(int64_t tokens, int64_t slots, int64_t longest,
                                 const torch::Device& device)
    : lengths_{tokens}, tokens_(tokens), longest_(longest), slots_(slots) {
  TORCH_CHECK(tokens > 0 && slots > 0 && longest > 0 && tokens <= slots * longest,
              "PackedSequences: a fixed layout needs tokens <= slots x longest, all positive");
  lengths_.assign(static_cast<size_t>(tokens / longest), longest);
  if (tokens % longest != 0) lengths_.push_back(tokens % longest);
  fill(device);
}

void PackedSequences::assign(const std::vector<int64_t>& lengths) {
  int64_t total = 0;
  for (const int64_t length : lengths) {
    TORCH_CHECK(length > 0 && length <= longest_,
                "PackedSequences::assign: sample lengths must be in [1, ", longest_, "], got ",
                length);
    total += length;
  }
  TORCH_CHECK(total == tokens_ && static_cast<int64_t>(lengths.size()) <= slots_,
              "PackedSequences::assign: ", lengths.size(), " samples of ", total,
              " tokens do not fill a layout of ", slots_, " slots and ", tokens_, " tokens");
  lengths_ = lengths;
  fill(positions_.device());
}

// Positions, owners and starts of lengths_, written into the existing tensors when there are
// some (a fixed layout: the same memory every batch), else into new ones.
void PackedSequences::fill(const torch::Device& device) {
  std::vector<int64_t> positions, sample_of;
  positions.reserve(static_cast<size_t>(tokens_));
  sample_of.reserve(static_cast<size_t>(tokens_));
  std::vector<int32_t> starts{0};
  for (size_t i = 0; i < lengths_.size(); ++i) {
    for (int64_t t = 0; t < lengths_[i]; ++t) {
      positions.push_back(t);
      sample_of.push_back(static_cast<int64_t>(i));
    }
    starts.push_back(starts.back() + static_cast<int32_t>(lengths_[i]));
  }
  starts.resize(static_cast<size_t>(slots_ + 1), starts.back());  // empty slots at the end
  bias_ = torch::Tensor();
  const auto put = [&](torch::Tensor& target, const torch::Tensor& host) {
    if (target.defined()) {
      copy_from_host(target, host);
    } else {
      target = staged_for(host, device).to(device, /*non_blocking=*/true);
    }
  };
  const auto options = torch::TensorOptions().dtype(torch::kLong);
  put(positions_, torch::tensor(positions, options));
  put(sample_of_, torch::tensor(sample_of, options));
  put(cumulative_lengths_, torch::tensor(starts, torch::TensorOptions().dtype(torch::kInt)));
}

const torch::Tensor& PackedSequences::attention_bias(torch::ScalarType dtype) const {
  if (!bias_.defined() || bias_.scalar_type() != dtype) {
    const auto same_sample = sample_of_.unsqueeze(1) == sample_of_.unsqueeze(0);
    const auto index = torch::arange(tokens_, sample_of_.options());
    const auto visible = same_sample & (index.unsqueeze(0) <= index.unsqueeze(1));  // [query, key]
    bias_ = torch::zeros({tokens_, tokens_}, sample_of_.options().dtype(dtype))
                .masked_fill_(visible.logical_not(), -std::numeric_limits<double>::infinity());
  }
  return bias_;
}

torch::Tensor packed_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const PackedSequences& packing) {
  TORCH_CHECK(q.dim() == 4 && q.size(0) == 1 && q.size(2) == packing.tokens() &&
                  k.size(2) == packing.tokens(),
              "packed_attention: q [1, H, T, D] and k, v [1, KVH, T, D] with T = ",
              packing.tokens(), " expected, got ", q.sizes(), " and ", k.sizes());
  const int64_t tokens = packing.tokens();
  if (fused::varlen_attention_applies(q)) {
    // [1, H, T, D] -> [T, H, D]: a view, since the projections lay q, k and v out as [1, T, H, D].
    const auto tokens_first = [](const torch::Tensor& t) { return t.squeeze(0).transpose(0, 1); };
    return fused::varlen_attention(tokens_first(q), tokens_first(k), tokens_first(v),
                                   packing.cumulative_lengths(), packing.longest())
        .transpose(0, 1)
        .unsqueeze(0);
  }
  return masked_attention(q, k, v,
                          packing.attention_bias(q.scalar_type()).view({1, 1, tokens, tokens}));
}

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "causal_attention: 4-d q, k, v");
  TORCH_CHECK(k.size(2) >= q.size(2), "causal_attention: fewer keys than queries");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "causal_attention: KV heads must divide query heads");
#if TORCH_VERSION_MAJOR >= 2
  return sdpa_attention(q, k, v);
#else
  return reference_causal_attention(q, k, v);
#endif
}

}  // namespace llm
