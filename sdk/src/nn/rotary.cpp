#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include <c10/core/InferenceMode.h>

#include "fused_ops.hpp"
#include "llm/error.hpp"
#include "llm/nn/attention.hpp"
#include "llm/nn/kv_cache.hpp"

namespace llm {

RotaryEmbedding::RotaryEmbedding(int64_t rotary_dim, double theta, int64_t max_positions,
                                 RopeScaling scaling)
    : rotary_dim_(rotary_dim),
      theta_(theta),
      max_positions_(std::max<int64_t>(max_positions, 1)),
      scaling_(std::move(scaling)) {
  if (rotary_dim < 0 || rotary_dim % 2 != 0) {
    throw UserError("rotary embedding: rotary_dim must be even and >= 0, got " +
                    std::to_string(rotary_dim));
  }
}

torch::Tensor rope_inverse_frequencies(int64_t rotary_dim, double theta, const RopeScaling& scaling,
                                       const torch::Device& device) {
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(device);
  // inv_freq = 1 / theta^(2i / rotary_dim), as Hugging Face computes it, in fp32.
  const auto exponents = torch::arange(0, rotary_dim, 2, long_options).to(torch::kFloat) /
                         static_cast<double>(rotary_dim);
  const auto inv_freq = 1.0 / torch::pow(theta, exponents);
  if (scaling.type == "default") return inv_freq;
  if (scaling.type != "llama3") {
    throw UserError("rotary embedding: RoPE scaling '" + scaling.type +
                    "' is not supported (expected default or llama3)");
  }
  // transformers' _compute_llama3_parameters, step for step (Python's `scalar / tensor` is
  // `tensor.reciprocal() * scalar`).
  const double old_context = scaling.original_max_position_embeddings;
  const double low_freq_wavelen = old_context / scaling.low_freq_factor;
  const double high_freq_wavelen = old_context / scaling.high_freq_factor;
  const auto wavelen = inv_freq.reciprocal() * (2 * M_PI);
  auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq);
  const auto smooth = (wavelen.reciprocal() * old_context - scaling.low_freq_factor) /
                      (scaling.high_freq_factor - scaling.low_freq_factor);
  const auto smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled;
  const auto medium =
      (wavelen < high_freq_wavelen).logical_not() & (wavelen > low_freq_wavelen).logical_not();
  return torch::where(medium, smoothed, scaled);
}

struct RotaryTables {
  torch::Tensor cos;   // [rows, head_dim] in the activations' dtype
  torch::Tensor sin;   // [rows, head_dim], signed (see build_tables)
  torch::Tensor perm;  // [head_dim] int64
};

namespace {

struct TablesKey {
  int64_t rotary_dim, head_dim, rows;
  double theta;
  RopeScaling scaling;
  torch::ScalarType dtype;
  std::string device;
  bool operator<(const TablesKey& o) const {
    return std::tie(rotary_dim, head_dim, rows, theta, scaling, dtype, device) <
           std::tie(o.rotary_dim, o.head_dim, o.rows, o.theta, o.scaling, o.dtype, o.device);
  }
};

// Hugging Face's x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1), over the first
// rotary_dim dims, the rest passed through, is x * cos' + x[perm] * sin' with perm = (x2, x1,
// rest), sin' = (-sin1, sin2, 0), cos' = (cos, 1): the same products ((-a) * b == a * (-b)
// exactly, x * 1 + y * 0 == x) in 4 kernels instead of narrows, a negation and two
// concatenations, whose backward would zero-fill and copy full-size gradients.
std::shared_ptr<RotaryTables> build_tables(const TablesKey& key, const torch::Device& device) {
  // Tables are model state shared by inference and training: never create them as inference
  // tensors (autograd refuses to save those), and never record them in a graph.
  c10::InferenceMode not_inference(false);
  torch::NoGradGuard no_grad;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(device);
  // Hugging Face casts the fp32 rows to the activations' dtype on every call: the same values.
  const auto inv_freq = rope_inverse_frequencies(key.rotary_dim, key.theta, key.scaling, device);
  const auto freqs = torch::outer(torch::arange(key.rows, f32), inv_freq);
  const auto angles = torch::cat({freqs, freqs}, -1);  // [rows, rotary_dim]
  const auto cos = angles.cos();
  const auto sin = angles.sin();
  const int64_t half = key.rotary_dim / 2;
  const int64_t rest = key.head_dim - key.rotary_dim;
  auto tables = std::make_shared<RotaryTables>();
  tables->cos = torch::cat({cos, torch::ones({key.rows, rest}, f32)}, -1).to(key.dtype);
  tables->sin = torch::cat({-sin.narrow(1, 0, half), sin.narrow(1, half, half),
                            torch::zeros({key.rows, rest}, f32)},
                           -1)
                    .to(key.dtype);
  tables->perm = torch::cat({torch::arange(half, key.rotary_dim, long_options),
                             torch::arange(0, half, long_options),
                             torch::arange(key.rotary_dim, key.head_dim, long_options)});
  return tables;
}

// Every layer of a model asks for the same tables: one copy, alive while some layer holds it.
std::shared_ptr<const RotaryTables> shared_tables(const TablesKey& key,
                                                  const torch::Device& device) {
  static std::mutex mutex;
  static std::map<TablesKey, std::weak_ptr<const RotaryTables>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto alive = cache[key].lock()) return alive;
  for (auto it = cache.begin(); it != cache.end();) {  // forget tables no model holds any more
    it = it->second.expired() ? cache.erase(it) : std::next(it);
  }
  std::shared_ptr<const RotaryTables> made = build_tables(key, device);
  cache[key] = made;
  return made;
}

// x[..., perm]: the rotary dims' halves swapped, any further dims kept. On the CPU, copying three
// slices is several times faster than index_select's per-element gather and its index_add_
// backward (bench/NOTES.md, "CPU speed"); on a GPU one gather kernel beats three copies.
torch::Tensor swap_halves(const torch::Tensor& x, int64_t rotary_dim, const torch::Tensor& perm) {
  const int64_t width = x.size(-1);
  if (!x.is_cpu()) return x.index_select(-1, perm.narrow(0, 0, width));
  const int64_t half = rotary_dim / 2;
  std::vector<torch::Tensor> parts{x.narrow(-1, half, half), x.narrow(-1, 0, half)};
  if (width > rotary_dim) parts.push_back(x.narrow(-1, rotary_dim, width - rotary_dim));
  return torch::cat(parts, -1);
}

}  // namespace

void RotaryEmbedding::ensure(int64_t positions, const torch::Tensor& x) const {
  const int64_t head_dim = x.size(-1);
  if (tables_ && tables_->cos.size(0) >= positions && tables_->cos.device() == x.device() &&
      tables_->cos.scalar_type() == x.scalar_type() && tables_->cos.size(1) == head_dim) {
    return;
  }
  if (rotary_dim_ > head_dim) {
    throw UserError("rotary embedding: rotary_dim " + std::to_string(rotary_dim_) +
                    " exceeds the head dimension " + std::to_string(head_dim));
  }
  // Rows: the model's context at least; longer inputs grow the tables (sized up to a power of
  // two, so every layer lands on the same shared copy).
  int64_t rows = max_positions_;
  while (rows < positions) rows *= 2;
  const TablesKey key{rotary_dim_,     head_dim,        rows, theta_, scaling_,
                      x.scalar_type(), x.device().str()};
  tables_ = shared_tables(key, x.device());
}

torch::Tensor RotaryEmbedding::rotate(const torch::Tensor& x, const torch::Tensor& cos,
                                      const torch::Tensor& sin) const {
  const int64_t head_dim = x.size(-1);
  const int64_t rows = x.numel() / std::max<int64_t>(head_dim, 1);
  // Partial rotary on a big batch without autograd (scoring) is bandwidth-bound: rotate only the
  // rotary dims and concatenate the rest, rather than run four full-width kernels. Training and
  // decoding keep the full-width form: fewer kernels, and no zero-filled slice gradients.
  if (rotary_dim_ < head_dim && rows >= 4096 && !x.requires_grad()) {
    const auto rotated = x.narrow(-1, 0, rotary_dim_);
    const auto turned =
        rotated * cos.narrow(-1, 0, rotary_dim_) +
        swap_halves(rotated, rotary_dim_, tables_->perm) * sin.narrow(-1, 0, rotary_dim_);
    return torch::cat({turned, x.narrow(-1, rotary_dim_, head_dim - rotary_dim_)}, -1);
  }
  return x * cos + swap_halves(x, rotary_dim_, tables_->perm) * sin;
}

torch::Tensor RotaryEmbedding::apply(const torch::Tensor& x, int64_t offset) const {
  if (rotary_dim_ == 0) return x;
  const int64_t tokens = x.size(-2);
  ensure(offset + tokens, x);
  if (fused::rotary_kernel_applies(x, tables_->cos)) {
    // One kernel each way instead of four multiplies/adds, a gather and its atomic scatter-add
    // backward (bench/NOTES.md, "Issue 13").
    return fused::rotary(x, tables_->cos, tables_->sin, offset, rotary_dim_);
  }
  return rotate(x, tables_->cos.narrow(0, offset, tokens), tables_->sin.narrow(0, offset, tokens));
}

torch::Tensor RotaryEmbedding::apply_packed(const torch::Tensor& x,
                                            const PackedSequences& packing) const {
  if (rotary_dim_ == 0) return x;
  ensure(packing.longest(), x);
  const auto& positions = packing.positions();
  if (fused::rotary_kernel_applies(x, tables_->cos)) {
    return fused::rotary(x, tables_->cos, tables_->sin, 0, rotary_dim_, positions);
  }
  return rotate(x, tables_->cos.index_select(0, positions),
                tables_->sin.index_select(0, positions));
}

torch::Tensor RotaryEmbedding::apply_with_cache(const torch::Tensor& x, KVCache* cache) const {
  if (cache == nullptr) return apply(x, 0);
  if (!cache->is_static_step(x.size(-2))) return apply(x, cache->length());
  if (rotary_dim_ == 0) return x;
  // The rows come from the device position (no host value in the launched kernels), gathered
  // once per step for all layers.
  ensure(cache->capacity(), x);
  const auto& tables = *tables_;
  const auto cos =
      cache->per_step(&tables.cos, [&] { return tables.cos.index_select(0, cache->position()); });
  const auto sin =
      cache->per_step(&tables.sin, [&] { return tables.sin.index_select(0, cache->position()); });
  return rotate(x, cos, sin);
}

std::array<torch::Tensor, 3> RotaryEmbedding::split_interleaved_qkv(
    const torch::Tensor& qkv, int64_t heads, KVCache* cache, const PackedSequences* packing) const {
  const int64_t batch = qkv.size(0);
  const int64_t tokens = qkv.size(1);
  const int64_t head_dim = qkv.size(2) / (3 * heads);
  const auto parts = qkv.view({batch, tokens, heads, 3, head_dim});
  if (cache == nullptr && rotary_dim_ > 0) {
    ensure(packing ? packing->longest() : tokens, parts);
    if (fused::rotary_interleaved_qkv_applies(parts, tables_->cos, rotary_dim_)) {
      return fused::rotary_interleaved_qkv(parts, tables_->cos, tables_->sin, rotary_dim_,
                                           packing ? packing->positions() : torch::Tensor());
    }
  }
  // unbind, not selects or narrows: its backward is one stack instead of zero-filled full-size
  // gradients. q and k rotate together as [B, heads, 2, T, head_dim]: one set of rotary kernels.
  const auto qkv_parts = parts.unbind(3);
  const auto qk_in = torch::stack({qkv_parts[0], qkv_parts[1]}, 3).permute({0, 2, 3, 1, 4});
  const auto qk =
      (packing ? apply_packed(qk_in, *packing) : apply_with_cache(qk_in, cache)).unbind(2);
  return {qk[0], qk[1], qkv_parts[2].transpose(1, 2)};
}

}  // namespace llm
