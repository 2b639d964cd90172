#include <algorithm>
#include <string>

#include <c10/core/InferenceMode.h>

#include "llm/error.hpp"
#include "llm/nn/attention.hpp"
#include "llm/nn/kv_cache.hpp"

namespace llm {

RotaryEmbedding::RotaryEmbedding(int64_t rotary_dim, double theta, int64_t max_positions)
    : rotary_dim_(rotary_dim), theta_(theta), max_positions_(std::max<int64_t>(max_positions, 1)) {
  if (rotary_dim < 0 || rotary_dim % 2 != 0) {
    throw UserError("rotary embedding: rotary_dim must be even and >= 0, got " +
                    std::to_string(rotary_dim));
  }
}

void RotaryEmbedding::ensure(int64_t positions, const torch::Tensor& x) const {
  const auto device = x.device();
  const int64_t head_dim = x.size(-1);
  if (cos_typed_.defined() && cos_typed_.size(0) >= positions && cos_typed_.device() == device &&
      cos_typed_.scalar_type() == x.scalar_type() && cos_typed_.size(1) == head_dim) {
    return;
  }
  if (rotary_dim_ > head_dim) {
    throw UserError("rotary embedding: rotary_dim " + std::to_string(rotary_dim_) +
                    " exceeds the head dimension " + std::to_string(head_dim));
  }
  // Tables are model state shared by inference and training: never create them as inference
  // tensors (autograd refuses to save those), and never record them in a graph.
  c10::InferenceMode not_inference(false);
  torch::NoGradGuard no_grad;
  if (!cos_.defined() || cos_.size(0) < positions || cos_.device() != device) {
    const int64_t rows = std::max({positions, max_positions_, cos_.defined() ? cos_.size(0) : 0});
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
    // inv_freq = 1 / theta^(2i / rotary_dim), as Hugging Face computes it, in fp32.
    const auto exponents =
        torch::arange(0, rotary_dim_, 2, torch::TensorOptions().dtype(torch::kLong).device(device))
            .to(torch::kFloat) /
        static_cast<double>(rotary_dim_);
    const auto inv_freq = 1.0 / torch::pow(theta_, exponents);
    const auto freqs = torch::outer(torch::arange(rows, f32), inv_freq);
    const auto angles = torch::cat({freqs, freqs}, -1);  // [rows, rotary_dim]
    cos_ = angles.cos();
    sin_ = angles.sin();
  }
  // Hugging Face's x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1), over the
  // first rotary_dim dims, the rest passed through, is x * cos' + x[perm] * sin' with
  // perm = (x2, x1, rest), sin' = (-sin1, sin2, 0), cos' = (cos, 1): the same products
  // ((-a) * b == a * (-b) exactly, x * 1 + y * 0 == x) in 4 kernels instead of narrows, a negation
  // and two concatenations, whose backward would zero-fill and copy full-size gradients.
  const int64_t rows = cos_.size(0);
  const int64_t half = rotary_dim_ / 2;
  const int64_t rest = head_dim - rotary_dim_;
  const auto f32 = cos_.options();
  cos_typed_ = torch::cat({cos_, torch::ones({rows, rest}, f32)}, -1).to(x.scalar_type());
  sin_typed_ = torch::cat({-sin_.narrow(1, 0, half), sin_.narrow(1, half, half),
                           torch::zeros({rows, rest}, f32)},
                          -1)
                   .to(x.scalar_type());
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(device);
  perm_ = torch::cat({torch::arange(half, rotary_dim_, long_options),
                      torch::arange(0, half, long_options),
                      torch::arange(rotary_dim_, head_dim, long_options)});
}

torch::Tensor RotaryEmbedding::rotate(const torch::Tensor& x, const torch::Tensor& cos,
                                      const torch::Tensor& sin) const {
  return x * cos + x.index_select(-1, perm_) * sin;
}

torch::Tensor RotaryEmbedding::apply(const torch::Tensor& x, int64_t offset) const {
  if (rotary_dim_ == 0) return x;
  const int64_t tokens = x.size(-2);
  ensure(offset + tokens, x);
  return rotate(x, cos_typed_.narrow(0, offset, tokens), sin_typed_.narrow(0, offset, tokens));
}

torch::Tensor RotaryEmbedding::apply_with_cache(const torch::Tensor& x, const KVCache* cache) const {
  if (cache == nullptr) return apply(x, 0);
  if (!cache->is_static_step(x.size(-2))) return apply(x, cache->length());
  if (rotary_dim_ == 0) return x;
  // The row comes from the device position: no host value in the launched kernels.
  ensure(cache->capacity(), x);
  return rotate(x, cos_typed_.index_select(0, cache->position()),
                sin_typed_.index_select(0, cache->position()));
}

}  // namespace llm
