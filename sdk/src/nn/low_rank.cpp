#include "llm/nn/low_rank.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#ifdef LLM_WITH_FUSED_CUDA
#include "cuda_launch.hpp"
#include "low_rank_cuda_kernels.h"
#include "tuned_gemm.hpp"
#endif

namespace llm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The operations autograd would record for (dropout(x32) A^T) B^T * scaling, with the same
// arithmetic in backward, but saving x in its own dtype and the dropout mask instead of the fp32
// dropped copy of x that the second product would keep (at Llama 2 7B, 64 MB per adapted layer
// and micro-batch of 4k tokens). Backward recomputes that copy from x and the mask.
class LowRankDelta : public torch::autograd::Function<LowRankDelta> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& A,
                               const torch::Tensor& B, double scaling, double dropout) {
    const auto x32 = x.to(torch::kFloat);
    torch::Tensor h = x32;
    torch::Tensor mask;
    if (dropout > 0) std::tie(h, mask) = at::native_dropout(x32, dropout, true);
    const auto a = torch::matmul(h, A.t());
    ctx->save_for_backward({x, A, B, a, mask});
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["dropout"] = dropout;
    return (torch::matmul(a, B.t()) * scaling).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &A = saved[1], &B = saved[2], &a = saved[3], &mask = saved[4];
    const double scaling = ctx->saved_data["scaling"].toDouble();
    const double dropout = ctx->saved_data["dropout"].toDouble();
    const double keep_scale = dropout > 0 ? 1.0 / (1.0 - dropout) : 1.0;
    const auto g = grad_outputs[0].to(torch::kFloat) * scaling;
    const int64_t out = B.size(0), r = A.size(0), in = A.size(1);
    const auto g2 = g.reshape({-1, out});
    const auto grad_a = torch::matmul(g, B);
    torch::Tensor grad_A, grad_B, grad_x;
    if (ctx->needs_input_grad(2)) grad_B = torch::matmul(g2.t(), a.reshape({-1, r}));
    if (ctx->needs_input_grad(1)) {
      auto h = x.to(torch::kFloat);
      if (dropout > 0) h = at::native_dropout_backward(h, mask, keep_scale);  // x32 * mask * scale
      grad_A = torch::matmul(grad_a.reshape({-1, r}).t(), h.reshape({-1, in}));
    }
    if (ctx->needs_input_grad(0)) {
      auto grad_h = torch::matmul(grad_a, A);
      if (dropout > 0) grad_h = at::native_dropout_backward(grad_h, mask, keep_scale);
      grad_x = grad_h.to(x.scalar_type());
    }
    return {grad_x, grad_A, grad_B, torch::Tensor(), torch::Tensor()};
  }
};

#ifdef LLM_WITH_FUSED_CUDA
using fused::check_launch;
using fused::kind_of;
using fused::packed;
using fused::stream_of;

// The kernels' dropout arguments: the seed tensor (empty: none), the keep threshold on a 16-bit
// draw and the kept elements' scale.
struct KeepMask {
  const int64_t* seed = nullptr;
  uint32_t threshold = 0;
  float scale = 1.0f;
  // The mask as a byte per 8-element pack: forward's down records it there and backward's kernels
  // read it instead of drawing it again (the Philox draws cost the kernels that regenerate the
  // mask ~10 us a call at 7b, session 16; the bytes are 2 MB a layer there). Null: drawn.
  uint8_t* bits = nullptr;
  // The tensor-core down's drawing path compares 16-bit draws with threshold - 1.
  bool keeps_some() const { return seed == nullptr || (threshold >= 1 && threshold <= 65536); }
};

KeepMask keep_mask(const torch::Tensor& seed, double dropout, const torch::Tensor& bits) {
  if (dropout <= 0 || seed.numel() == 0) return {};
  const double keep = 1.0 - dropout;
  const double threshold = std::round(keep * 65536.0);  // on 16-bit draws
  return {seed.data_ptr<int64_t>(), static_cast<uint32_t>(threshold),
          static_cast<float>(1.0 / keep), bits.defined() ? bits.data_ptr<uint8_t>() : nullptr};
}

// Rows of a [..., cols] tensor seen as [rows, cols].
int64_t rows_of(const torch::Tensor& t) { return t.numel() / std::max<int64_t>(t.size(-1), 1); }

// What the tensor-core kernels take: bf16 activations, r <= 8, sm_80 and later.
bool tensor_cores_take(const torch::Tensor& x, int64_t r) {
  return x.scalar_type() == torch::kBFloat16 && r <= 8 &&
         at::cuda::getDeviceProperties(x.device().index())->major >= 8;
}

// The down product on tensor cores (bench/NOTES.md, session 14); LLMHOST_LOW_RANK_MMA=0 keeps the
// CUDA-core kernel, which fp16 and Turing always take.
bool down_on_tensor_cores(const torch::Tensor& x, int64_t r) {
  return fused::kernels_switched_on("LLMHOST_LOW_RANK_MMA") && tensor_cores_take(x, r);
}

// u [rows, r] = scale * dropout(x) w^T, w [r, cols] fp32.
torch::Tensor down(const torch::Tensor& x, const torch::Tensor& w, const KeepMask& mask,
                   double scale) {
  const int64_t rows = rows_of(x), r = w.size(0);
  auto u = torch::empty({rows, r}, x.options().dtype(torch::kFloat));
  if (down_on_tensor_cores(x, r)) {
    check_launch(
        llm_low_rank_down_mma_cuda(x.data_ptr(), rows, x.size(-1), w.data_ptr<float>(), r,
                                   mask.seed, mask.threshold, mask.scale, mask.bits,
                                   static_cast<float>(scale), u.data_ptr<float>(), stream_of(x)),
        "low-rank down (tensor cores)");
    return u;
  }
  check_launch(
      llm_low_rank_down_cuda(x.data_ptr(), rows, x.size(-1), w.data_ptr<float>(), r, mask.seed,
                             mask.threshold, mask.scale, mask.bits, static_cast<float>(scale),
                             u.data_ptr<float>(), kind_of(x), stream_of(x)),
      "low-rank down");
  return u;
}

// The up product on tensor cores: opt-in (LLMHOST_LOW_RANK_UP_MMA=1) until a device call has run
// its test and a training step (bench/NOTES.md, session 15); bf16, r <= 8, whole 32-column blocks.
bool up_on_tensor_cores(const torch::Tensor& out, int64_t r) {
  return fused::kernels_opted_in("LLMHOST_LOW_RANK_UP_MMA") && tensor_cores_take(out, r) &&
         out.size(-1) % 32 == 0;
}

// out (contiguous [..., cols]) = y + dropout(scale * u w), w [r, cols] fp32; y may be undefined
// or out itself (each element is read once, before it is written, by the thread that writes it).
void launch_up(const torch::Tensor& y, const torch::Tensor& u, const torch::Tensor& w,
               const KeepMask& mask, double scale, torch::Tensor& out) {
  const void* y_data = y.defined() ? y.data_ptr() : nullptr;
  if (up_on_tensor_cores(out, u.size(1))) {
    check_launch(llm_low_rank_up_mma_cuda(
                     y_data, u.data_ptr<float>(), w.data_ptr<float>(), u.size(0), w.size(1),
                     u.size(1), mask.seed, mask.threshold, mask.scale, mask.bits,
                     static_cast<float>(scale), out.data_ptr(), stream_of(out)),
                 "low-rank up (tensor cores)");
    return;
  }
  check_launch(
      llm_low_rank_up_cuda(y_data, u.data_ptr<float>(), w.data_ptr<float>(), u.size(0), w.size(1),
                           u.size(1), mask.seed, mask.threshold, mask.scale, mask.bits,
                           static_cast<float>(scale), out.data_ptr(), kind_of(out), stream_of(out)),
      "low-rank up");
}

torch::Tensor up_into(const torch::Tensor& y, const torch::Tensor& u, const torch::Tensor& w,
                      const KeepMask& mask, double scale, torch::Tensor out) {
  launch_up(y, u, w, mask, scale, out);
  return out;
}

// The same in a new tensor of `like`'s dtype and shape.
torch::Tensor up(const torch::Tensor& y, const torch::Tensor& u, const torch::Tensor& w,
                 const KeepMask& mask, double scale, const torch::Tensor& like) {
  return up_into(y, u, w, mask, scale, torch::empty_like(like, torch::MemoryFormat::Contiguous));
}

// y += dropout(scale * u w) in place, y [..., cols] contiguous: each element is read once, before
// it is written, by the thread that writes it.
void up_in_place(torch::Tensor& y, const torch::Tensor& u, const torch::Tensor& w,
                 const KeepMask& mask, double scale) {
  TORCH_CHECK(y.is_contiguous(), "low-rank up in place: y must be contiguous");
  launch_up(y, u, w, mask, scale, y);
}

// The outer products on tensor cores (bench/NOTES.md, session 15: 7b's dA 31.5 -> 29.4 us, dB
// 22.0 -> 19.8 us); LLMHOST_LOW_RANK_OUTER_MMA=0 keeps the CUDA-core kernel.
bool outer_on_tensor_cores(const torch::Tensor& x, int64_t r) {
  return fused::kernels_switched_on("LLMHOST_LOW_RANK_OUTER_MMA") && tensor_cores_take(x, r);
}

// Each fp32 operand of LoRA's tensor-core products split into its three bf16 parts once, where it
// is formed, instead of in every block that takes it: the factors before the forward down pair,
// each u by that kernel, each g by the sum that forms it (opt-in until a device has timed it).
bool split_once() { return fused::kernels_opted_in("LLMHOST_LOW_RANK_SPLIT_ONCE"); }

// u's (or g's) three bf16 parts, [3, r, rows], where split_once() applies to this [rows, r]
// product; else undefined.
torch::Tensor rank_parts_for(const torch::Tensor& like, int64_t rows, int64_t r) {
  if (!split_once() || rows % 2 != 0) return {};
  return torch::empty({3, r, rows}, like.options().dtype(torch::kBFloat16));
}

// The partial sums' total over their first dimension, [r, cols]; `transposed`: stored as
// [cols, r] (B's gradient), written so by the sum itself rather than by a copy afterwards (7b: a
// 128 KB transpose a call, 64 calls a step).
// One kernel of ours, in order over the chunks, writing either layout directly (session 19's
// call, 7b: at::sum's reduces 0.63 ms a step, this kernel 0.46);
// LLMHOST_LOW_RANK_CHUNK_SUM=0 keeps LibTorch's.
// `parts` (or undefined): the total also as its three bf16 parts (rank_parts_for), by our kernel.
// `into` (or undefined): a factor's .grad that the total is added to in place (FactorGradients);
// then nothing is returned.
torch::Tensor sum_of_chunks(const torch::Tensor& partial, bool transposed,
                            const torch::Tensor& parts = {}, const torch::Tensor& into = {}) {
  if (fused::kernels_switched_on("LLMHOST_LOW_RANK_CHUNK_SUM")) {
    const int64_t rows = partial.size(1), cols = partial.size(2);
    auto total = into.defined() ? into
                 : transposed   ? torch::empty({cols, rows}, partial.options())
                                : torch::empty({rows, cols}, partial.options());
    check_launch(llm_low_rank_sum_chunks_cuda(
                     partial.data_ptr<float>(), partial.size(0), rows, cols, transposed ? 1 : 0,
                     into.defined() ? 1 : 0, total.data_ptr<float>(),
                     parts.defined() ? parts.data_ptr() : nullptr, stream_of(partial)),
                 "low-rank partial sums");
    return into.defined() ? torch::Tensor() : total;
  }
  TORCH_CHECK(!parts.defined(), "low-rank partial sums: parts need LLMHOST_LOW_RANK_CHUNK_SUM");
  if (into.defined()) {
    into.add_(sum_of_chunks(partial, transposed));
    return {};
  }
  if (!transposed) return partial.sum(0);
  auto total = torch::empty({partial.size(2), partial.size(1)}, partial.options());
  auto as_summed = total.t();
  at::sum_out(as_summed, partial, {0});
  return total;
}

// [r, cols] = scale * u^T dropout(x), from per-chunk partial sums added in a fixed order;
// `transposed`: as [cols, r].
// `into` (or undefined): added in place there instead (sum_of_chunks).
torch::Tensor outer(const torch::Tensor& x, const torch::Tensor& u, const KeepMask& mask,
                    double scale, bool transposed = false, const torch::Tensor& into = {}) {
  const int64_t rows = rows_of(x), cols = x.size(-1), r = u.size(1);
  auto partial =
      torch::empty({llm_low_rank_chunks(rows, cols), r, cols}, x.options().dtype(torch::kFloat));
  if (outer_on_tensor_cores(x, r)) {
    check_launch(llm_low_rank_outer_mma_cuda(x.data_ptr(), u.data_ptr<float>(), rows, cols, r,
                                             mask.seed, mask.threshold, mask.scale, mask.bits,
                                             static_cast<float>(scale), partial.data_ptr<float>(),
                                             stream_of(x)),
                 "low-rank outer product (tensor cores)");
    return sum_of_chunks(partial, transposed, {}, into);
  }
  check_launch(
      llm_low_rank_outer_cuda(x.data_ptr(), u.data_ptr<float>(), rows, cols, r, mask.seed,
                              mask.threshold, mask.scale, mask.bits, static_cast<float>(scale),
                              partial.data_ptr<float>(), kind_of(x), stream_of(x)),
      "low-rank outer product");
  return sum_of_chunks(partial, transposed, {}, into);
}

torch::Tensor draw_seed(const torch::Tensor& x, double dropout) {
  const auto options = x.options().dtype(torch::kLong);
  // On the device from LibTorch's generator: reproducible under manual_seed, and a fresh draw on
  // each replay of a captured CUDA graph.
  return dropout > 0 ? torch::randint(std::numeric_limits<int64_t>::max(), {1}, options)
                     : torch::empty({0}, options);
}

// The fused forward pass: out = y + s (dropout(x) A^T) B^T, and what backward needs from it (B^T:
// both kernels read their factor as [r, cols]).
struct FusedForward {
  torch::Tensor out, x, A, Bt, u, seed, bits;  // bits: the dropout mask as recorded, if any
  torch::Tensor u_parts;                       // u's three bf16 parts, if split_once()
};

// The operands as the kernels read them, the dropout seed and the buffer its mask is recorded in:
// everything of the forward pass but u and `out` (the caller holds a CUDAGuard on x's device).
FusedForward update_inputs(const torch::Tensor& x, const torch::Tensor& A, const torch::Tensor& B,
                           double dropout) {
  FusedForward f;
  f.x = packed(x);
  f.A = packed(A);
  f.Bt = packed(B.t());
  f.seed = draw_seed(x, dropout);
  // LLMHOST_LOW_RANK_KEEP_BITS=0: backward draws the mask again instead of reading it.
  if (dropout > 0 && fused::kernels_switched_on("LLMHOST_LOW_RANK_KEEP_BITS")) {
    f.bits = torch::empty({rows_of(f.x), f.x.size(-1) / 8}, f.x.options().dtype(torch::kByte));
  }
  return f;
}

// The same and u = dropout(x) A^T.
FusedForward update_operands(const torch::Tensor& x, const torch::Tensor& A, const torch::Tensor& B,
                             double dropout) {
  auto f = update_inputs(x, A, B, dropout);
  f.u = down(f.x, f.A, keep_mask(f.seed, dropout, f.bits), 1.0);
  return f;
}

FusedForward fused_forward(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& A,
                           const torch::Tensor& B, double scaling, double dropout) {
  const c10::cuda::CUDAGuard guard(x.device());
  auto f = update_operands(x, A, B, dropout);
  f.out = up(packed(y), f.u, f.Bt, KeepMask{}, scaling, y);
  return f;
}

// Backward's shared part: g = dL/du = scaling * dy B, the rank-r gradient every input's gradient
// goes through, and the factors' gradients where asked for (the caller holds a CUDAGuard).
struct UpdateGradients {
  torch::Tensor g, grad_A, grad_B;
  torch::Tensor g_parts;  // g's three bf16 parts, if split_once() (for the outer pair)
};

// The factors' .grad that their gradients are added to in place (FactorGradientsIntoGrad), or
// undefined where autograd receives them.
struct FactorGradients {
  torch::Tensor A, B;
};

// g = scale dy B and B's gradient scale u^T dy (as [out, r]) from one pass over dy: bf16, r <= 8,
// tensor cores (session 19's call: 35.4 -> 26.5 us for both at 7b); LLMHOST_LOW_RANK_DY_PASS=0
// keeps the two kernels.
bool dy_pass_applies(const torch::Tensor& dy, int64_t r) {
  return fused::kernels_switched_on("LLMHOST_LOW_RANK_DY_PASS") && tensor_cores_take(dy, r);
}

// u_parts (or undefined): u's three bf16 parts, which the pass loads instead of splitting u;
// then g too is formed in parts where `g_in_parts` (for the outer pair).
void down_and_outer(const torch::Tensor& dy, const torch::Tensor& Bt, const torch::Tensor& u,
                    const torch::Tensor& u_parts, bool g_in_parts, double scale,
                    const torch::Tensor& into_B, UpdateGradients& d) {
  const int64_t rows = rows_of(dy), cols = dy.size(-1), r = Bt.size(0);
  int64_t ranges = 0, chunks = 0;
  llm_low_rank_down_outer_shape(rows, cols, &ranges, &chunks);
  const auto f32 = dy.options().dtype(torch::kFloat);
  auto g_partial = torch::empty({ranges, rows, r}, f32);
  auto partial = torch::empty({chunks, r, cols}, f32);
  check_launch(llm_low_rank_down_outer_mma_cuda(
                   dy.data_ptr(), rows, cols, Bt.data_ptr<float>(), u.data_ptr<float>(),
                   u_parts.defined() ? u_parts.data_ptr() : nullptr, r, static_cast<float>(scale),
                   g_partial.data_ptr<float>(), partial.data_ptr<float>(), stream_of(dy)),
               "low-rank down and outer product over dy (tensor cores)");
  if (g_in_parts && u_parts.defined() && ranges > 1 &&
      fused::kernels_switched_on("LLMHOST_LOW_RANK_CHUNK_SUM")) {
    d.g_parts = rank_parts_for(g_partial, rows, r);
  }
  d.g = ranges == 1 ? g_partial[0] : sum_of_chunks(g_partial, /*transposed=*/false, d.g_parts);
  d.grad_B = sum_of_chunks(partial, /*transposed=*/true, {}, into_B);
}

// u_parts (or undefined): u's three bf16 parts, as the forward down pair wrote them.
// into: the factors' .grad to add to in place (FactorGradientsIntoGrad), or none. g_in_parts:
// g formed in parts too where u came in them (the outer pair takes g that way).
UpdateGradients update_gradients(const torch::Tensor& dy, const torch::Tensor& x,
                                 const torch::Tensor& Bt, const torch::Tensor& u,
                                 const KeepMask& mask, double scaling, bool need_A, bool need_B,
                                 const torch::Tensor& u_parts = {},
                                 const FactorGradients& into = {}, bool g_in_parts = false) {
  UpdateGradients d;
  if (need_B && dy_pass_applies(dy, Bt.size(0))) {
    down_and_outer(dy, Bt, u, u_parts, g_in_parts, scaling, into.B, d);
  } else {
    d.g = down(dy, Bt, KeepMask{}, scaling);
    if (need_B) d.grad_B = outer(dy, u, KeepMask{}, scaling, /*transposed=*/true, into.B);
  }
  if (need_A) d.grad_A = outer(x, d.g, mask, 1.0, /*transposed=*/false, into.A);
  return d;
}

class FusedLowRankUpdate : public torch::autograd::Function<FusedLowRankUpdate> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& y,
                               const torch::Tensor& A, const torch::Tensor& B, double scaling,
                               double dropout) {
    auto f = fused_forward(x, y, A, B, scaling, dropout);
    ctx->save_for_backward({f.x, f.A, f.Bt, f.u, f.seed, f.bits});
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["dropout"] = dropout;
    return f.out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &A = saved[1], &Bt = saved[2], &u = saved[3], &seed = saved[4];
    const double scaling = ctx->saved_data["scaling"].toDouble();
    const auto mask = keep_mask(seed, ctx->saved_data["dropout"].toDouble(), saved[5]);
    const c10::cuda::CUDAGuard guard(x.device());
    const auto dy = packed(grad_outputs[0]);
    const auto d = update_gradients(dy, x, Bt, u, mask, scaling, ctx->needs_input_grad(2),
                                    ctx->needs_input_grad(3));
    torch::Tensor grad_x;
    if (ctx->needs_input_grad(0)) grad_x = up(torch::Tensor(), d.g, A, mask, 1.0, x);
    return {grad_x,          ctx->needs_input_grad(1) ? grad_outputs[0] : torch::Tensor(),
            d.grad_A,        d.grad_B,
            torch::Tensor(), torch::Tensor()};
  }
};

// x W^T + b + s (dropout(x) A^T) B^T as one tensor, and backward x's gradient dy W plus the
// update's as one: no add. Without a bias, the update is written first and the product adds
// itself to it in its epilogue (fused::tuned_mm_accumulate), so the update kernel writes its
// output without reading the product's (half its traffic: 7b, 33.5 MB a call, 128 calls a step).
// `tuned`: the product through fused::tuned_mm (training, where shapes repeat).
// f.out from the update's operands and u (update_operands): the product and the update.
void add_product(FusedForward& f, const torch::Tensor& weight,
                 const c10::optional<torch::Tensor>& bias, double scaling, bool tuned) {
  const bool tuned_product = tuned && !bias.has_value();
  if (tuned_product && fused::kernels_switched_on("LLMHOST_GEMM_EPILOGUE_ADD")) {
    auto sizes = f.x.sizes().vec();
    sizes.back() = weight.size(0);
    f.out = up_into(torch::Tensor(), f.u, f.Bt, KeepMask{}, scaling,
                    torch::empty(sizes, f.x.options()));
    fused::tuned_mm_accumulate(f.x, weight, true, f.out);
    return;
  }
  f.out = tuned_product ? fused::tuned_mm(f.x, weight, true)
                        : torch::linear(f.x, weight, bias).contiguous();
  up_in_place(f.out, f.u, f.Bt, KeepMask{}, scaling);
}

FusedForward fused_linear_forward(const torch::Tensor& x, const torch::Tensor& weight,
                                  const c10::optional<torch::Tensor>& bias, const torch::Tensor& A,
                                  const torch::Tensor& B, double scaling, double dropout,
                                  bool tuned) {
  const c10::cuda::CUDAGuard guard(x.device());
  auto f = update_operands(x, A, B, dropout);
  add_product(f, weight, bias, scaling, tuned);
  return f;
}

class FusedLowRankLinear : public torch::autograd::Function<FusedLowRankLinear> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight,
                               const c10::optional<torch::Tensor>& bias, const torch::Tensor& A,
                               const torch::Tensor& B, double scaling, double dropout) {
    auto f = fused_linear_forward(x, weight, bias, A, B, scaling, dropout, /*tuned=*/true);
    ctx->save_for_backward({f.x, weight, f.A, f.Bt, f.u, f.seed, f.bits});
    ctx->saved_data["has_bias"] = bias.has_value();
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["dropout"] = dropout;
    return f.out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &A = saved[2], &Bt = saved[3], &u = saved[4],
               &seed = saved[5];
    const double scaling = ctx->saved_data["scaling"].toDouble();
    const auto mask = keep_mask(seed, ctx->saved_data["dropout"].toDouble(), saved[6]);
    const c10::cuda::CUDAGuard guard(x.device());
    const auto dy = packed(grad_outputs[0]);
    // needs_input_grad counts the tensor inputs only: an absent bias is not one.
    const size_t a_input = ctx->saved_data["has_bias"].toBool() ? 3 : 2;
    const auto d = update_gradients(dy, x, Bt, u, mask, scaling, ctx->needs_input_grad(a_input),
                                    ctx->needs_input_grad(a_input + 1));
    torch::Tensor grad_x;
    if (ctx->needs_input_grad(0)) {
      if (fused::kernels_switched_on("LLMHOST_GEMM_EPILOGUE_ADD")) {
        grad_x = up(torch::Tensor(), d.g, A, mask, 1.0, x);
        fused::tuned_mm_accumulate(dy, weight, false, grad_x);
      } else {
        grad_x = fused::tuned_mm(dy, weight, false);
        up_in_place(grad_x, d.g, A, mask, 1.0);
      }
    }
    return {grad_x,   torch::Tensor(), torch::Tensor(), d.grad_A,
            d.grad_B, torch::Tensor(), torch::Tensor()};
  }
};

// Two downs over one x in one pass: both on tensor cores with the same rank (session 19's call:
// 51.1 -> 48.7 us at 7b); LLMHOST_LOW_RANK_DOWN_PAIR=0 keeps one launch each.
bool down_pair_applies(const FusedForward& first, const FusedForward& second) {
  const int64_t r = first.A.size(0);
  return fused::kernels_switched_on("LLMHOST_LOW_RANK_DOWN_PAIR") && second.A.size(0) == r &&
         down_on_tensor_cores(first.x, r);
}

// f's half of a paired down: f.u (and, with `split`, f.u_parts) allocated for the kernel to
// write, the mask recorded in f.bits.
LlmLowRankDownPart down_part(FusedForward& f, double dropout, bool split) {
  const auto mask = keep_mask(f.seed, dropout, f.bits);
  const int64_t rows = rows_of(f.x), r = f.A.size(0);
  f.u = torch::empty({rows, r}, f.x.options().dtype(torch::kFloat));
  if (split) f.u_parts = rank_parts_for(f.x, rows, r);
  return {f.A.data_ptr<float>(),
          mask.seed,
          mask.threshold,
          mask.scale,
          mask.bits,
          f.u.data_ptr<float>(),
          f.u_parts.defined() ? f.u_parts.data_ptr() : nullptr};
}

// Each update's u = dropout(x) A^T over the one x they share (update_inputs' operands): the first
// two in one pass where they can be, each other alone.
void downs_over_one_input(std::vector<FusedForward>& parts, const std::vector<double>& dropouts) {
  size_t next = 0;
  if (parts.size() >= 2 && down_pair_applies(parts[0], parts[1])) {
    const auto& x = parts[0].x;
    // Both factors split into their bf16 parts once, not in every 16 rows, and each u written in
    // parts too: not where a part keeps no element (the kernel's split path needs threshold >= 1).
    const bool split = split_once() && keep_mask(parts[0].seed, dropouts[0], {}).keeps_some() &&
                       keep_mask(parts[1].seed, dropouts[1], {}).keeps_some();
    const auto first = down_part(parts[0], dropouts[0], split);
    const auto second = down_part(parts[1], dropouts[1], split);
    const int64_t r = parts[0].A.size(0);
    torch::Tensor factor_parts;
    if (split) factor_parts = torch::empty({2, 3, r, x.size(-1)}, x.options());
    check_launch(llm_low_rank_down_mma_pair_cuda(
                     x.data_ptr(), rows_of(x), x.size(-1), r, first, second, 1.0f,
                     factor_parts.defined() ? factor_parts.data_ptr() : nullptr, stream_of(x)),
                 "low-rank down, two updates (tensor cores)");
    next = 2;
  }
  for (; next < parts.size(); ++next) {
    auto& f = parts[next];
    f.u = down(f.x, f.A, keep_mask(f.seed, dropouts[next], f.bits), 1.0);
  }
}

// One update's part of x's gradient: dropout(g A), g = dL/du.
struct InputGradientPart {
  torch::Tensor g, A;
  KeepMask mask;
};

// Two parts in one pass (LLMHOST_LOW_RANK_UP_PAIR=0: the second added in place): r <= 8 each.
bool pair_applies(const InputGradientPart& first, const InputGradientPart& second) {
  return fused::kernels_switched_on("LLMHOST_LOW_RANK_UP_PAIR") && first.g.size(1) <= 8 &&
         second.g.size(1) <= 8;
}

LlmLowRankPart pair_part(const InputGradientPart& part) {
  return {part.g.data_ptr<float>(), part.A.data_ptr<float>(), part.g.size(1), part.mask.seed,
          part.mask.threshold,      part.mask.scale,          part.mask.bits, 1.0f};
}

// The updates' parts of x's gradient in one new tensor shaped as x: the first two written in one
// pass where they can be, each other added in place.
torch::Tensor updates_input_gradient(const std::vector<InputGradientPart>& parts,
                                     const torch::Tensor& x) {
  torch::Tensor grad_x;
  size_t next = 0;
  if (parts.size() >= 2 && pair_applies(parts[0], parts[1])) {
    grad_x = torch::empty_like(x, torch::MemoryFormat::Contiguous);
    // 4 columns a lane, two blocks an SM (session 19's call: 38.9 -> 30.0 us at 7b);
    // LLMHOST_LOW_RANK_UP_PAIR_NARROW=0 keeps 8 columns a lane.
    const int narrow = fused::kernels_switched_on("LLMHOST_LOW_RANK_UP_PAIR_NARROW") ? 1 : 0;
    check_launch(llm_low_rank_up_pair_cuda(pair_part(parts[0]), pair_part(parts[1]),
                                           rows_of(grad_x), grad_x.size(-1), grad_x.data_ptr(),
                                           narrow, kind_of(grad_x), stream_of(grad_x)),
                 "low-rank up, two updates");
    next = 2;
  }
  for (; next < parts.size(); ++next) {
    const auto& part = parts[next];
    if (grad_x.defined()) {
      up_in_place(grad_x, part.g, part.A, part.mask, 1.0);
    } else {
      grad_x = up(torch::Tensor(), part.g, part.A, part.mask, 1.0, x);
    }
  }
  return grad_x;
}

// Two updates' A gradients over one x in one pass: both on tensor cores with the same rank, each
// mask drawn, absent, or recorded as whole, aligned 4-byte words (session 19's call 4: a 7b step
// 0.39 ms faster); LLMHOST_LOW_RANK_OUTER_PAIR=0 keeps low_rank_outer_mma for each.
bool outer_pair_applies(const torch::Tensor& x, const torch::Tensor& A0, const torch::Tensor& A1,
                        const KeepMask& m0, const KeepMask& m1) {
  if (!fused::kernels_switched_on("LLMHOST_LOW_RANK_OUTER_PAIR") || A0.size(0) != A1.size(0) ||
      !outer_on_tensor_cores(x, A0.size(0))) {
    return false;
  }
  for (const KeepMask* m : {&m0, &m1}) {
    if (m->bits != nullptr &&
        ((x.size(-1) / 8) % 4 != 0 || reinterpret_cast<uintptr_t>(m->bits) % 4 != 0)) {
      return false;
    }
  }
  return true;
}

// [r, cols] = u_k^T dropout_k(x) for both parts, from one pass over x.
// g0_parts, g1_parts (or undefined): g's three bf16 parts (the sum that formed g wrote them).
// into0, into1 (or undefined): the A gradients' .grad to add to in place instead.
std::array<torch::Tensor, 2> outer_pair(const torch::Tensor& x, const torch::Tensor& g0,
                                        const torch::Tensor& g1, const KeepMask& m0,
                                        const KeepMask& m1, const torch::Tensor& g0_parts,
                                        const torch::Tensor& g1_parts, const torch::Tensor& into0,
                                        const torch::Tensor& into1) {
  const int64_t rows = rows_of(x), cols = x.size(-1), r = g0.size(1);
  const auto f32 = x.options().dtype(torch::kFloat);
  const int64_t chunks = llm_low_rank_chunks(rows, cols);
  auto partial0 = torch::empty({chunks, r, cols}, f32);
  auto partial1 = torch::empty({chunks, r, cols}, f32);
  const auto pointer = [](const torch::Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; };
  const LlmLowRankOuterPart first{
      g0.data_ptr<float>(),       m0.seed,          m0.threshold, m0.scale, m0.bits,
      partial0.data_ptr<float>(), pointer(g0_parts)};
  const LlmLowRankOuterPart second{
      g1.data_ptr<float>(),       m1.seed,          m1.threshold, m1.scale, m1.bits,
      partial1.data_ptr<float>(), pointer(g1_parts)};
  check_launch(llm_low_rank_outer_mma_pair_cuda(x.data_ptr(), rows, cols, r, first, second, 1.0f,
                                                stream_of(x)),
               "low-rank outer products, two updates (tensor cores)");
  return {sum_of_chunks(partial0, false, {}, into0), sum_of_chunks(partial1, false, {}, into1)};
}

// Layers over one x (q, k, v) as one node: each output is what FusedLowRankLinear (a layer with
// an update) or fused::frozen_linear (one without) computes, and backward forms x's gradient in
// one buffer: the updates' parts first (updates_input_gradient: two written in one pass, any
// others added in place), then each product added in its epilogue. updates[p] is the index of layer
// p's update (its A and B at 2 i and 2 i + 1 of `factors`, its scaling and dropout at i), or -1.
class SharedInputLinears : public torch::autograd::Function<SharedInputLinears> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, at::TensorList weights,
                               at::TensorList factors, const std::vector<int64_t>& updates,
                               const std::vector<double>& scalings,
                               const std::vector<double>& dropouts) {
    const c10::cuda::CUDAGuard guard(x.device());
    const auto xp = packed(x);
    // x is kept for the factors' gradients only: frozen products need just their weights (a
    // layer's x at 7b is 33.5 MB; gate and up have no update in lora-train).
    variable_list outputs, saved{scalings.empty() ? torch::Tensor() : xp};
    saved.insert(saved.end(), weights.begin(), weights.end());
    // The updates' operands in layer order (their seeds drawn as layer-by-layer nodes draw them),
    // then their downs over x, then each layer's product and update.
    std::vector<FusedForward> parts;
    for (size_t i = 0; i < scalings.size(); ++i) {
      parts.push_back(update_inputs(xp, factors[2 * i], factors[2 * i + 1], dropouts[i]));
    }
    downs_over_one_input(parts, dropouts);
    for (size_t p = 0; p < weights.size(); ++p) {
      const int64_t i = updates[p];
      if (i < 0) {
        outputs.push_back(fused::tuned_mm(xp, weights[p], true));
        continue;
      }
      auto& f = parts[static_cast<size_t>(i)];
      add_product(f, weights[p], c10::nullopt, scalings[i], true);
      outputs.push_back(f.out);
      saved.insert(saved.end(),
                   {f.A, f.Bt, f.u, f.seed, f.bits, f.u_parts, factors[2 * i], factors[2 * i + 1]});
    }
    ctx->save_for_backward(saved);
    // Read here, on the thread that runs forward: backward may run on autograd's device thread.
    ctx->saved_data["grads_into_grad"] = FactorGradientsIntoGrad::active() &&
                                         fused::kernels_opted_in("LLMHOST_LOW_RANK_GRAD_IN_PLACE");
    ctx->saved_data["updates"] = c10::List<int64_t>(updates);
    ctx->saved_data["scalings"] = c10::List<double>(scalings);
    ctx->saved_data["dropouts"] = c10::List<double>(dropouts);
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto updates = ctx->saved_data["updates"].toIntList();
    const auto scalings = ctx->saved_data["scalings"].toDoubleList();
    const auto dropouts = ctx->saved_data["dropouts"].toDoubleList();
    const size_t layers = updates.size();
    const auto& x = saved[0];
    const c10::cuda::CUDAGuard guard(saved[1].device());
    // Gradients in the order of forward's tensor inputs: x, the weights, the factors; then one
    // (undefined) for each of the three lists of numbers.
    variable_list grads(1 + layers + 2 * scalings.size() + 3);
    const std::vector<torch::Tensor> weights(saved.begin() + 1, saved.begin() + 1 + layers);
    variable_list dys(layers);
    for (size_t p = 0; p < layers; ++p) dys[p] = packed(grad_outputs[p]);
    const bool need_x = ctx->needs_input_grad(0);
    torch::Tensor& grad_x = grads[0];
    // Update i's saved A, Bt, u, seed, mask bits, u's parts and the factors A and B as given (the
    // leaves whose .grad may take their gradients) from here, and its A's input index.
    const auto saved_at = [&](size_t i) { return 1 + layers + 8 * i; };
    const auto a_input_of = [&](size_t i) { return 1 + layers + 2 * i; };
    const auto mask_of = [&](size_t i) {
      return keep_mask(saved[saved_at(i) + 3], dropouts[i], saved[saved_at(i) + 4]);
    };
    // A factor's .grad to add its gradient to in place, where forward asked for that and the
    // gradient is there to take it; else undefined (autograd receives it).
    const bool into_grad = ctx->saved_data["grads_into_grad"].toBool();
    const auto grad_of = [&](const torch::Tensor& factor, bool wanted) -> torch::Tensor {
      if (!into_grad || !wanted) return {};
      if (!factor.is_leaf()) return {};  // its gradient goes on through autograd
      const auto& grad = factor.grad();
      const bool takes = grad.defined() && grad.scalar_type() == torch::kFloat &&
                         grad.is_contiguous() && grad.sizes() == factor.sizes() &&
                         grad.device() == factor.device();
      return takes ? grad : torch::Tensor();
    };
    const auto into_of = [&](size_t i) {
      const size_t base = saved_at(i);
      return FactorGradients{grad_of(saved[base + 6], ctx->needs_input_grad(a_input_of(i))),
                             grad_of(saved[base + 7], ctx->needs_input_grad(a_input_of(i) + 1))};
    };
    // The first two updates' A gradients from one pass over x, where both are wanted.
    const bool a_pair =
        scalings.size() >= 2 && ctx->needs_input_grad(a_input_of(0)) &&
        ctx->needs_input_grad(a_input_of(1)) &&
        outer_pair_applies(x, saved[saved_at(0)], saved[saved_at(1)], mask_of(0), mask_of(1));
    std::vector<InputGradientPart> x_parts;
    torch::Tensor paired_g[2], paired_g_parts[2];
    for (size_t p = 0; p < layers; ++p) {
      const int64_t i = updates[p];
      if (i < 0) continue;
      const auto update = static_cast<size_t>(i);
      const size_t base = saved_at(update);  // A, Bt, u, seed, bits, u's parts, A and B given
      const auto &A = saved[base], &Bt = saved[base + 1], &u = saved[base + 2];
      const auto mask = mask_of(update);
      const size_t a_input = a_input_of(update);
      const bool paired = a_pair && update < 2;  // its A's gradient from the outer pair
      const bool a_here = ctx->needs_input_grad(a_input) && !paired;
      const auto d = update_gradients(dys[p], x, Bt, u, mask, scalings[i], a_here,
                                      ctx->needs_input_grad(a_input + 1), saved[base + 5],
                                      into_of(update), paired);
      grads[a_input] = d.grad_A;
      grads[a_input + 1] = d.grad_B;
      if (paired) paired_g[update] = d.g, paired_g_parts[update] = d.g_parts;
      if (need_x) x_parts.push_back({d.g, A, mask});
    }
    if (a_pair) {
      const auto both =
          outer_pair(x, paired_g[0], paired_g[1], mask_of(0), mask_of(1), paired_g_parts[0],
                     paired_g_parts[1], into_of(0).A, into_of(1).A);
      grads[a_input_of(0)] = both[0];
      grads[a_input_of(1)] = both[1];
    }
    if (!x_parts.empty()) grad_x = updates_input_gradient(x_parts, x);
    if (need_x) {
      for (size_t p = 0; p < layers; ++p) {
        if (grad_x.defined()) {
          fused::tuned_mm_accumulate(dys[p], weights[p], false, grad_x);
        } else {
          grad_x = fused::tuned_mm(dys[p], weights[p], false);
        }
      }
    }
    return grads;
  }
};

// The kernels take x [..., in] in fp16 or bf16, A [r, in] and B [out, r] fp32 on x's device.
bool update_applies(const torch::Tensor& x, const torch::Tensor& A, const torch::Tensor& B) {
  if (!fused::kernels_switched_on("LLMHOST_FUSED_LOW_RANK")) return false;
  if (!x.is_cuda() || !A.is_cuda() || !B.is_cuda()) return false;
  if (x.device() != A.device() || x.device() != B.device() || kind_of(x) < 1) return false;
  if (A.scalar_type() != torch::kFloat || B.scalar_type() != torch::kFloat) return false;
  if (A.dim() != 2 || B.dim() != 2 || x.dim() == 0) return false;
  const int64_t r = A.size(0), in = A.size(1), out = B.size(0);
  if (r < 1 || r > 64 || B.size(1) != r || x.size(-1) != in) return false;
  if (in % 8 != 0 || out % 8 != 0) return false;
  return rows_of(x) < (int64_t{1} << 31);
}

bool fused_applies(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& A,
                   const torch::Tensor& B) {
  if (!update_applies(x, A, B) || !y.is_cuda() || y.device() != x.device()) return false;
  return y.scalar_type() == x.scalar_type() && y.dim() > 0 && y.size(-1) == B.size(0) &&
         rows_of(x) == rows_of(y);
}

// The frozen product joins the node when W (and b) take no gradient and match x.
bool fused_linear_applies(const torch::Tensor& x, const torch::Tensor& weight,
                          const torch::Tensor& bias, const torch::Tensor& A,
                          const torch::Tensor& B) {
  if (!fused::kernels_switched_on("LLMHOST_LOW_RANK_WITH_BASE")) return false;
  if (!update_applies(x, A, B) || !weight.defined() || weight.requires_grad()) return false;
  if (!weight.is_cuda() || weight.device() != x.device() || weight.dim() != 2) return false;
  if (weight.scalar_type() != x.scalar_type() || weight.size(1) != x.size(-1) ||
      weight.size(0) != B.size(0)) {
    return false;
  }
  return !bias.defined() || (!bias.requires_grad() && bias.device() == x.device() &&
                             bias.scalar_type() == x.scalar_type() && bias.dim() == 1 &&
                             bias.size(0) == weight.size(0));
}
#endif

}  // namespace

namespace {
thread_local bool factor_gradients_into_grad = false;
}  // namespace

FactorGradientsIntoGrad::FactorGradientsIntoGrad() : previous_(factor_gradients_into_grad) {
  factor_gradients_into_grad = true;
}

FactorGradientsIntoGrad::~FactorGradientsIntoGrad() { factor_gradients_into_grad = previous_; }

bool FactorGradientsIntoGrad::active() { return factor_gradients_into_grad; }

std::vector<torch::Tensor> shared_input_linears(
    const torch::Tensor& x, const std::vector<torch::Tensor>& weights,
    const std::vector<c10::optional<LowRankFactors>>& updates) {
#ifdef LLM_WITH_FUSED_CUDA
  if (!torch::GradMode::is_enabled() || !x.is_cuda() || weights.size() != updates.size() ||
      !fused::kernels_switched_on("LLMHOST_SHARED_INPUT_GRAD") ||
      !fused::kernels_switched_on("LLMHOST_GEMM_EPILOGUE_ADD")) {
    return {};
  }
  std::vector<torch::Tensor> factors;
  std::vector<int64_t> update_of;
  std::vector<double> scalings, dropouts;
  bool grad = x.requires_grad();
  for (size_t p = 0; p < weights.size(); ++p) {
    const auto& w = weights[p];
    if (!w.defined() || w.requires_grad() || !fused::tuned_mm_applies(x, w) ||
        w.size(1) != x.size(-1)) {
      return {};
    }
    if (!updates[p].has_value()) {
      update_of.push_back(-1);
      continue;
    }
    const LowRankFactors& u = *updates[p];
    if (!fused_linear_applies(x, w, torch::Tensor(), u.A, u.B)) return {};
    grad = grad || u.A.requires_grad() || u.B.requires_grad();
    update_of.push_back(static_cast<int64_t>(scalings.size()));
    factors.push_back(u.A);
    factors.push_back(u.B);
    scalings.push_back(u.scaling);
    dropouts.push_back(u.dropout);
  }
  if (!grad) return {};
  return SharedInputLinears::apply(x, at::TensorList(weights), at::TensorList(factors), update_of,
                                   scalings, dropouts);
#else
  (void)x;
  (void)weights;
  (void)updates;
  return {};
#endif
}

torch::Tensor low_rank_delta(const torch::Tensor& x, const torch::Tensor& A, const torch::Tensor& B,
                             double scaling, double dropout) {
  if (torch::GradMode::is_enabled()) return LowRankDelta::apply(x, A, B, scaling, dropout);
  auto h = x.to(torch::kFloat);
  if (dropout > 0) h = std::get<0>(at::native_dropout(h, dropout, true));  // draws as above
  return (torch::matmul(torch::matmul(h, A.t()), B.t()) * scaling).to(x.scalar_type());
}

torch::Tensor low_rank_update(const torch::Tensor& x, const torch::Tensor& y,
                              const torch::Tensor& A, const torch::Tensor& B, double scaling,
                              double dropout) {
#ifdef LLM_WITH_FUSED_CUDA
  if (fused_applies(x, y, A, B)) {
    const bool grad = torch::GradMode::is_enabled() && (x.requires_grad() || y.requires_grad() ||
                                                        A.requires_grad() || B.requires_grad());
    return grad ? FusedLowRankUpdate::apply(x, y, A, B, scaling, dropout)
                : fused_forward(x, y, A, B, scaling, dropout).out;
  }
#endif
  return y + low_rank_delta(x, A, B, scaling, dropout).to(y.scalar_type());
}

torch::Tensor low_rank_linear(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, const torch::Tensor& A,
                              const torch::Tensor& B, double scaling, double dropout) {
#ifdef LLM_WITH_FUSED_CUDA
  if (fused_linear_applies(x, weight, bias, A, B)) {
    const c10::optional<torch::Tensor> b =
        bias.defined() ? c10::optional<torch::Tensor>(bias) : c10::nullopt;
    const bool grad = torch::GradMode::is_enabled() &&
                      (x.requires_grad() || A.requires_grad() || B.requires_grad());
    return grad ? FusedLowRankLinear::apply(x, weight, b, A, B, scaling, dropout)
                : fused_linear_forward(x, weight, b, A, B, scaling, dropout, false).out;
  }
#endif
  return low_rank_update(x, torch::linear(x, weight, bias), A, B, scaling, dropout);
}

}  // namespace llm
