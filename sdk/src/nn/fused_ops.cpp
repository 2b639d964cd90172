#include "fused_ops.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef LLM_WITH_FUSED_CUDA
#include "cross_entropy_cuda_kernels.h"
#include "cuda_launch.hpp"
#include "fused_cuda_kernels.h"
#endif

namespace llm::fused {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#ifdef LLM_WITH_FUSED_CUDA
bool kernel_applies(std::initializer_list<torch::Tensor> tensors) {
  const auto& first = *tensors.begin();
  if (!first.is_cuda() || kind_of(first) < 0) return false;
  for (const auto& t : tensors) {
    if (!t.is_cuda() || t.scalar_type() != first.scalar_type()) return false;
  }
  return true;
}
#else
bool kernel_applies(std::initializer_list<torch::Tensor>) { return false; }
#endif

torch::Tensor rms_norm_plain(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const auto x32 = x.to(torch::kFloat);
  const auto normalized = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normalized.to(x.scalar_type());
}

// RMSNorm's forward: y and the rows' rstd, x contiguous (one kernel where it applies).
std::array<torch::Tensor, 2> rms_norm_forward(const torch::Tensor& xc, const torch::Tensor& weight,
                                              double eps) {
  const int64_t dim = xc.size(-1);
  const int64_t rows = xc.numel() / std::max<int64_t>(dim, 1);
#ifdef LLM_WITH_FUSED_CUDA
  if (kernel_applies({xc, weight})) {
    const c10::cuda::CUDAGuard guard(xc.device());
    const auto w = weight.contiguous();
    auto y = torch::empty_like(xc);
    auto rstd = torch::empty({rows}, xc.options().dtype(torch::kFloat));
    check_launch(
        llm_rms_norm_forward_cuda(xc.data_ptr(), w.data_ptr(), y.data_ptr(), rstd.data_ptr<float>(),
                                  rows, dim, eps, kind_of(xc), stream_of(xc)),
        "RMSNorm forward");
    return {y, rstd};
  }
#endif
  const auto x32 = xc.to(torch::kFloat);
  const auto rstd = torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return {weight * (x32 * rstd).to(xc.scalar_type()), rstd.reshape({rows})};
}

// x's gradient from y's, plus `passed` (may be undefined: x's gradient through a residual sum)
// added in fp32 before the one rounding where the kernel applies.
torch::Tensor rms_norm_backward(const torch::Tensor& grad_in, const torch::Tensor& x,
                                const torch::Tensor& weight, const torch::Tensor& rstd,
                                const torch::Tensor& passed_in) {
  const auto grad = grad_in.contiguous();
  const auto passed = passed_in.defined() ? passed_in.contiguous() : passed_in;
#ifdef LLM_WITH_FUSED_CUDA
  if (kernel_applies({x, weight, grad}) && (!passed.defined() || kernel_applies({x, passed}))) {
    const int64_t dim = x.size(-1);
    const int64_t rows = x.numel() / std::max<int64_t>(dim, 1);
    const c10::cuda::CUDAGuard guard(x.device());
    const auto w = weight.contiguous();
    auto grad_x = torch::empty_like(x);
    check_launch(llm_rms_norm_backward_cuda(grad.data_ptr(), x.data_ptr(), w.data_ptr(),
                                            rstd.data_ptr<float>(),
                                            passed.defined() ? passed.data_ptr() : nullptr,
                                            grad_x.data_ptr(), rows, dim, kind_of(x), stream_of(x)),
                 "RMSNorm backward");
    return grad_x;
  }
#endif
  // mul's backward (in x's dtype), then the fp32 normalisation's, then the cast's.
  const auto dn = (grad * weight).to(torch::kFloat);
  auto shape = x.sizes().vec();
  shape.back() = 1;
  const auto r = rstd.view(shape);
  const auto x_hat = x.to(torch::kFloat) * r;
  const auto mean_dot = (dn * x_hat).mean(-1, /*keepdim=*/true);
  const auto grad_x = (r * (dn - x_hat * mean_dot)).to(x.scalar_type());
  return passed.defined() ? grad_x + passed : grad_x;
}

class RmsNorm : public torch::autograd::Function<RmsNorm> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, double eps) {
    const auto xc = x.contiguous();
    const auto [y, rstd] = rms_norm_forward(xc, weight, eps);
    ctx->save_for_backward({xc, weight, rstd});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    return {rms_norm_backward(grad_outputs[0], saved[0], saved[1], saved[2], torch::Tensor()),
            torch::Tensor(), torch::Tensor()};
  }
};

// {RMSNorm(x), x}: the second output is x itself, for the block's residual sum, so its gradient
// joins x's inside the norm's backward kernel instead of in an add of its own.
class RmsNormPassingInput : public torch::autograd::Function<RmsNormPassingInput> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, double eps) {
    const auto xc = x.contiguous();
    const auto [y, rstd] = rms_norm_forward(xc, weight, eps);
    ctx->save_for_backward({xc, weight, rstd});
    return {y, x};
  }

  // Both gradients are defined: LibTorch materialises an unused output's as zeros.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    return {rms_norm_backward(grad_outputs[0], saved[0], saved[1], saved[2], grad_outputs[1]),
            torch::Tensor(), torch::Tensor()};
  }
};

class SwiGlu : public torch::autograd::Function<SwiGlu> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate,
                               const torch::Tensor& up) {
    const auto g = gate.contiguous();
    const auto u = up.contiguous();
    ctx->save_for_backward({g, u});
#ifdef LLM_WITH_FUSED_CUDA
    if (kernel_applies({g, u}) && g.sizes() == u.sizes()) {
      const c10::cuda::CUDAGuard guard(g.device());
      auto out = torch::empty_like(g);
      check_launch(llm_swiglu_forward_cuda(g.data_ptr(), u.data_ptr(), out.data_ptr(), g.numel(),
                                           kind_of(g), stream_of(g)),
                   "SwiGLU forward");
      return out;
    }
#endif
    return torch::silu(g) * u;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &g = saved[0], &u = saved[1];
    const auto grad = grad_outputs[0].contiguous();
#ifdef LLM_WITH_FUSED_CUDA
    if (kernel_applies({g, u, grad}) && g.sizes() == grad.sizes()) {
      const c10::cuda::CUDAGuard guard(g.device());
      auto grad_gate = torch::empty_like(g);
      auto grad_up = torch::empty_like(u);
      check_launch(llm_swiglu_backward_cuda(grad.data_ptr(), g.data_ptr(), u.data_ptr(),
                                            grad_gate.data_ptr(), grad_up.data_ptr(), g.numel(),
                                            kind_of(g), stream_of(g)),
                   "SwiGLU backward");
      return {grad_gate, grad_up};
    }
#endif
    // mul's backward, then silu's, as autograd would run them (silu recomputed, not saved).
    const auto grad_up = grad * torch::silu(g);
    const auto grad_gate = at::silu_backward(grad * u, g);
    return {grad_gate, grad_up};
  }
};

#ifdef LLM_WITH_FUSED_CUDA
class Rotary : public torch::autograd::Function<Rotary> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin,
                               const torch::Tensor& positions, int64_t offset, int64_t rotary_dim) {
    ctx->save_for_backward({cos, sin, positions});
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["rotary_dim"] = rotary_dim;
    return launch(x, cos, sin, positions, offset, rotary_dim, /*transpose=*/false);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto grad =
        launch(grad_outputs[0], saved[0], saved[1], saved[2], ctx->saved_data["offset"].toInt(),
               ctx->saved_data["rotary_dim"].toInt(), /*transpose=*/true);
    return {grad,           torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }

  // x [B, H, T, D] -> out viewed [B, H, T, D] over contiguous [B, T, H, D] memory (the layout the
  // projections produce, which attention reads as it is).
  static torch::Tensor launch(torch::Tensor x, const torch::Tensor& cos, const torch::Tensor& sin,
                              const torch::Tensor& positions, int64_t offset, int64_t rotary_dim,
                              bool transpose) {
    if (x.stride(3) != 1) x = x.contiguous();
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t sizes[4] = {x.size(0), x.size(1), x.size(2), x.size(3)};
    const int64_t strides[3] = {x.stride(0), x.stride(1), x.stride(2)};
    auto out = torch::empty({sizes[0], sizes[2], sizes[1], sizes[3]}, x.options());
    const int64_t* rows = positions.numel() > 0 ? positions.data_ptr<int64_t>() : nullptr;
    check_launch(
        llm_rotary_cuda(x.data_ptr(), sizes, strides, cos.data_ptr(), sin.data_ptr(), rows, offset,
                        rotary_dim, transpose ? 1 : 0, out.data_ptr(), kind_of(x), stream_of(x)),
        "rotary");
    return out.transpose(1, 2);
  }
};

// q, k, v out of a [B, T, H, 3, D] projection, q and k rotated: forward in place in the
// projection's memory, the three returned as views of it (LLMHOST_ROTARY_IN_PLACE=0: copied out,
// rotated on the way, in one kernel); backward rotates their gradients back and writes all three
// into the projection's layout in one kernel. The projection is not saved for backward by anyone,
// so rotating it in place changes no saved tensor; the caller hands it over (fused_ops.hpp).
class RotaryInterleavedQkv : public torch::autograd::Function<RotaryInterleavedQkv> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& qkv,
                               const torch::Tensor& cos, const torch::Tensor& sin,
                               const torch::Tensor& positions, int64_t offset, int64_t rotary_dim) {
    ctx->save_for_backward({cos, sin, positions});
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["rotary_dim"] = rotary_dim;
    const int64_t batch = qkv.size(0), tokens = qkv.size(1), heads = qkv.size(2);
    const int64_t dim = qkv.size(4);
    if (kernels_switched_on("LLMHOST_ROTARY_IN_PLACE")) {
      // q and k rotated where the projection wrote them, and all three handed on as views: the
      // rotated dims are read and written once (a quarter of each head at GPT-NeoX's
      // rotary_pct), v and the rest not at all. Attention takes strided heads as they are.
      const c10::cuda::CUDAGuard guard(qkv.device());
      const int64_t sizes[4] = {batch, heads, tokens, dim};
      const int64_t strides[3] = {qkv.stride(0), qkv.stride(2), qkv.stride(1)};
      const int64_t* rows = positions.numel() > 0 ? positions.data_ptr<int64_t>() : nullptr;
      check_launch(llm_rotary_in_place_cuda(qkv.data_ptr(), 2, qkv.stride(3), sizes, strides,
                                            cos.data_ptr(), sin.data_ptr(), rows, offset,
                                            rotary_dim, kind_of(qkv), stream_of(qkv)),
                   "interleaved q, k rotary in place");
      return {qkv.select(3, 0).transpose(1, 2), qkv.select(3, 1).transpose(1, 2),
              qkv.select(3, 2).transpose(1, 2)};
    }
    LlmRotaryParts parts{};
    variable_list outputs;
    for (int p = 0; p < 3; ++p) {
      auto out = torch::empty({batch, tokens, heads, dim}, qkv.options());
      parts.in[p] =
          static_cast<const char*>(qkv.data_ptr()) + p * qkv.stride(3) * qkv.element_size();
      set_strides(parts.in_strides[p], qkv.stride(0), qkv.stride(2), qkv.stride(1));
      parts.out[p] = out.data_ptr();
      set_strides(parts.out_strides[p], out.stride(0), out.stride(2), out.stride(1));
      outputs.push_back(out.transpose(1, 2));  // [B, H, T, D], as attention reads it
    }
    launch(parts, qkv, cos, sin, positions, offset, rotary_dim, /*transpose=*/false);
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& like = grads[0].defined() ? grads[0] : grads[1].defined() ? grads[1] : grads[2];
    const int64_t batch = like.size(0), heads = like.size(1), tokens = like.size(2);
    const int64_t dim = like.size(3);
    auto grad_qkv = torch::empty({batch, tokens, heads, 3, dim}, like.options());
    LlmRotaryParts parts{};
    for (int p = 0; p < 3; ++p) {
      auto& g = grads[p];
      if (!g.defined()) g = torch::zeros({batch, heads, tokens, dim}, like.options());
      const int64_t pack = 16 / g.element_size();  // elements the kernel moves at once
      if (g.stride(3) != 1 || !aligned16(g) || g.stride(0) % pack != 0 || g.stride(1) % pack != 0 ||
          g.stride(2) % pack != 0) {
        g = g.contiguous();
      }
      parts.in[p] = g.data_ptr();
      set_strides(parts.in_strides[p], g.stride(0), g.stride(1), g.stride(2));
      parts.out[p] = static_cast<char*>(grad_qkv.data_ptr()) + p * dim * grad_qkv.element_size();
      set_strides(parts.out_strides[p], grad_qkv.stride(0), grad_qkv.stride(2), grad_qkv.stride(1));
    }
    launch(parts, grad_qkv, saved[0], saved[1], saved[2], ctx->saved_data["offset"].toInt(),
           ctx->saved_data["rotary_dim"].toInt(), /*transpose=*/true);
    return {grad_qkv,        torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

 private:
  static void set_strides(int64_t* strides, int64_t batch, int64_t heads, int64_t tokens) {
    strides[0] = batch;
    strides[1] = heads;
    strides[2] = tokens;
  }

  static void launch(const LlmRotaryParts& parts, const torch::Tensor& like,
                     const torch::Tensor& cos, const torch::Tensor& sin,
                     const torch::Tensor& positions, int64_t offset, int64_t rotary_dim,
                     bool transpose) {
    const c10::cuda::CUDAGuard guard(like.device());
    const int64_t batch = like.size(0), tokens = like.size(1), heads = like.size(2);
    const int64_t sizes[4] = {batch, heads, tokens, like.size(-1)};
    const int64_t* rows = positions.numel() > 0 ? positions.data_ptr<int64_t>() : nullptr;
    check_launch(
        llm_rotary_parts_cuda(&parts, 3, 2, sizes, cos.data_ptr(), sin.data_ptr(), rows, offset,
                              rotary_dim, transpose ? 1 : 0, kind_of(like), stream_of(like)),
        "interleaved q, k, v rotary");
  }
};

// Two LayerNorms of one input in one kernel each way (fused_cuda_kernels.h); saves x in its own
// dtype and the rows' mean and rstd. Weights frozen: only x gets a gradient. The third output is
// x itself, for the block's residual sum: its gradient joins x's inside the backward kernel.
class LayerNormPair : public torch::autograd::Function<LayerNormPair> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w1, const torch::Tensor& b1,
                               const torch::Tensor& w2, const torch::Tensor& b2, double eps) {
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t dim = x.size(-1);
    const int64_t rows = x.numel() / dim;
    auto y1 = torch::empty_like(x), y2 = torch::empty_like(x);
    const auto stats = x.options().dtype(torch::kFloat);
    auto mean = torch::empty({rows}, stats), rstd = torch::empty({rows}, stats);
    check_launch(llm_layer_norm_pair_forward_cuda(
                     x.data_ptr(), w1.data_ptr(), b1.data_ptr(), w2.data_ptr(), b2.data_ptr(),
                     y1.data_ptr(), y2.data_ptr(), mean.data_ptr<float>(), rstd.data_ptr<float>(),
                     rows, dim, eps, kind_of(x), stream_of(x)),
                 "LayerNorm pair forward");
    ctx->save_for_backward({x, w1, w2, mean, rstd});
    return {y1, y2, x};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w1 = saved[1], &w2 = saved[2], &mean = saved[3], &rstd = saved[4];
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t dim = x.size(-1);
    const auto dy1 = packed(grad_outputs[0]), dy2 = packed(grad_outputs[1]);
    const auto dres = packed(grad_outputs[2]);
    auto grad_x = torch::empty_like(x);
    check_launch(llm_layer_norm_pair_backward_cuda(
                     dy1.data_ptr(), dy2.data_ptr(), dres.data_ptr(), x.data_ptr(), w1.data_ptr(),
                     w2.data_ptr(), mean.data_ptr<float>(), rstd.data_ptr<float>(),
                     grad_x.data_ptr(), x.numel() / dim, dim, kind_of(x), stream_of(x)),
                 "LayerNorm pair backward");
    return {grad_x,          torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// (a + b) + c in one kernel; each input's gradient is the output's.
class AddThree : public torch::autograd::Function<AddThree> {
 public:
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& a, const torch::Tensor& b,
                               const torch::Tensor& c) {
    const c10::cuda::CUDAGuard guard(a.device());
    const auto ac = a.contiguous(), bc = b.contiguous(), cc = c.contiguous();
    auto out = torch::empty_like(ac);
    check_launch(llm_add_three_cuda(ac.data_ptr(), bc.data_ptr(), cc.data_ptr(), out.data_ptr(),
                                    out.numel(), kind_of(out), stream_of(out)),
                 "sum of three");
    return out;
  }

  static variable_list backward(AutogradContext*, variable_list grad_outputs) {
    return {grad_outputs[0], grad_outputs[0], grad_outputs[0]};
  }
};
#endif

}  // namespace

bool cuda_kernels_built() {
#ifdef LLM_WITH_FUSED_CUDA
  return true;
#else
  return false;
#endif
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (weight.requires_grad()) return rms_norm_plain(x, weight, eps);  // no weight gradient here
  if (!torch::GradMode::is_enabled() && !kernel_applies({x, weight})) {
    return rms_norm_plain(x, weight, eps);
  }
  return RmsNorm::apply(x, weight, eps);
}

std::array<torch::Tensor, 2> rms_norm_passing_input(const torch::Tensor& x,
                                                    const torch::Tensor& weight, double eps) {
  bool fused = !weight.requires_grad() && torch::GradMode::is_enabled();
#ifdef LLM_WITH_FUSED_CUDA
  fused = fused && kernels_switched_on("LLMHOST_NORM_PASSES_RESIDUAL");
#endif
  if (!fused) return {rms_norm(x, weight, eps), x};
  const auto outputs = RmsNormPassingInput::apply(x, weight, eps);
  return {outputs[0], outputs[1]};
}

std::array<torch::Tensor, 3> layer_norm_pair(const torch::Tensor& x, const torch::Tensor& w1,
                                             const torch::Tensor& b1, const torch::Tensor& w2,
                                             const torch::Tensor& b2, double eps) {
  const int64_t dim = x.size(-1);
#ifdef LLM_WITH_FUSED_CUDA
  const bool frozen =
      !w1.requires_grad() && !b1.requires_grad() && !w2.requires_grad() && !b2.requires_grad();
  // Rows of whole 16-byte packs that one block holds (the kernels' register-held form).
  const int64_t pack = x.scalar_type() == torch::kFloat ? 4 : 8;
  if (frozen && dim > 0 && dim % pack == 0 && dim / pack <= 1024 && x.numel() > 0 &&
      kernel_applies({x, w1, b1, w2, b2}) && kernels_switched_on("LLMHOST_FUSED_LAYER_NORM")) {
    const auto outputs =
        LayerNormPair::apply(packed(x), packed(w1), packed(b1), packed(w2), packed(b2), eps);
    return {outputs[0], outputs[1], outputs[2]};
  }
#endif
  return {torch::layer_norm(x, {dim}, w1, b1, eps), torch::layer_norm(x, {dim}, w2, b2, eps), x};
}

torch::Tensor add_three(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c) {
#ifdef LLM_WITH_FUSED_CUDA
  if (a.sizes() == b.sizes() && a.sizes() == c.sizes() && kernel_applies({a, b, c}) &&
      kernels_switched_on("LLMHOST_FUSED_LAYER_NORM")) {
    return AddThree::apply(a, b, c);
  }
#endif
  return a + b + c;
}

torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up) {
  if (!torch::GradMode::is_enabled() && !kernel_applies({gate, up})) {
    return torch::silu(gate) * up;
  }
  return SwiGlu::apply(gate, up);
}

bool rotary_kernel_applies(const torch::Tensor& x, const torch::Tensor& cos) {
  return x.dim() >= 4 && kernel_applies({x, cos});
}

torch::Tensor rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                     int64_t offset, int64_t rotary_dim, const torch::Tensor& positions) {
#ifdef LLM_WITH_FUSED_CUDA
  const int64_t tokens = x.size(-2);
  // Packed positions are below the longest sample, which the caller's tables cover.
  TORCH_CHECK(rotary_kernel_applies(x, cos) && cos.is_contiguous() && sin.is_contiguous() &&
                  cos.size(1) == x.size(-1) &&
                  (positions.defined() || offset + tokens <= cos.size(0)),
              "fused rotary: CUDA x [B, H..., T, D] and contiguous [rows, D] tables expected");
  TORCH_CHECK(!positions.defined() ||
                  (positions.is_cuda() && positions.is_contiguous() &&
                   positions.scalar_type() == torch::kLong && positions.numel() == tokens),
              "fused rotary: positions must be a contiguous CUDA int64 tensor of T entries");
  // Autograd functions take defined tensors only: no positions is an empty tensor.
  const auto rows =
      positions.defined() ? positions : torch::empty({0}, cos.options().dtype(torch::kLong));
  if (x.dim() == 4) return Rotary::apply(x, cos, sin, rows, offset, rotary_dim);
  // [B, H, G, T, D] (GPT-NeoX's q and k stacked as G = 2): the head dims merged into one, a view
  // when their strides nest, as the stack's permute gives.
  const auto sizes = x.sizes().vec();
  const auto merged = x.flatten(1, x.dim() - 3);
  return Rotary::apply(merged, cos, sin, rows, offset, rotary_dim).view(sizes);
#else
  (void)x, (void)cos, (void)sin, (void)offset, (void)rotary_dim, (void)positions;
  TORCH_CHECK(false, "fused rotary: this build has no CUDA kernels");
#endif
}

bool rotary_interleaved_qkv_applies(const torch::Tensor& qkv, const torch::Tensor& cos,
                                    int64_t rotary_dim) {
#ifdef LLM_WITH_FUSED_CUDA
  if (qkv.dim() != 5 || qkv.size(3) != 3 || !kernel_applies({qkv, cos})) return false;
  const int64_t dim = qkv.size(4);
  const int64_t pack = 16 / qkv.element_size();
  if (qkv.stride(4) != 1 || dim % pack != 0 || rotary_dim % (2 * pack) != 0 || !aligned16(qkv) ||
      !cos.is_contiguous() || cos.size(1) != dim) {
    return false;
  }
  for (int d = 0; d < 4; ++d) {
    if (qkv.stride(d) % pack != 0) return false;
  }
  return true;
#else
  (void)qkv, (void)cos, (void)rotary_dim;
  return false;
#endif
}

std::array<torch::Tensor, 3> rotary_interleaved_qkv(const torch::Tensor& qkv,
                                                    const torch::Tensor& cos,
                                                    const torch::Tensor& sin, int64_t rotary_dim,
                                                    const torch::Tensor& positions) {
#ifdef LLM_WITH_FUSED_CUDA
  TORCH_CHECK(rotary_interleaved_qkv_applies(qkv, cos, rotary_dim) && sin.is_contiguous() &&
                  aligned16(cos) && aligned16(sin) &&
                  (positions.defined() || qkv.size(1) <= cos.size(0)),
              "fused interleaved q, k, v: CUDA qkv [B, T, H, 3, D] and [rows, D] tables expected");
  TORCH_CHECK(!positions.defined() ||
                  (positions.is_cuda() && positions.is_contiguous() &&
                   positions.scalar_type() == torch::kLong && positions.numel() == qkv.size(1)),
              "fused interleaved q, k, v: positions must be a contiguous CUDA int64 tensor of T "
              "entries");
  const auto rows =
      positions.defined() ? positions : torch::empty({0}, cos.options().dtype(torch::kLong));
  const auto out = RotaryInterleavedQkv::apply(qkv, cos, sin, rows, 0, rotary_dim);
  return {out[0], out[1], out[2]};
#else
  (void)qkv, (void)cos, (void)sin, (void)rotary_dim, (void)positions;
  TORCH_CHECK(false, "fused interleaved q, k, v: this build has no CUDA kernels");
#endif
}

bool gemv_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
#ifdef LLM_WITH_FUSED_CUDA
  if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad())) return false;
  if (x.scalar_type() != torch::kHalf && x.scalar_type() != torch::kBFloat16) return false;
  if (!kernel_applies({x, weight}) || weight.dim() != 2 || !weight.is_contiguous()) return false;
  if (bias.defined() && !(kernel_applies({x, bias}) && bias.is_contiguous())) return false;
  const int64_t cols = weight.size(1);
  if (x.size(-1) != cols || x.numel() != cols || cols % 8 != 0) return false;
  return aligned16(weight) && x.is_contiguous() && aligned16(x);
#else
  (void)x, (void)weight, (void)bias;
  return false;
#endif
}

torch::Tensor gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
#ifdef LLM_WITH_FUSED_CUDA
  TORCH_CHECK(gemv_applies(x, weight, bias),
              "fused gemv: one contiguous fp16/bf16 CUDA row expected");
  const c10::cuda::CUDAGuard guard(x.device());
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  auto y = torch::empty(sizes, x.options());
  check_launch(
      llm_gemv_cuda(weight.data_ptr(), x.data_ptr(), bias.defined() ? bias.data_ptr() : nullptr,
                    y.data_ptr(), weight.size(0), weight.size(1), kind_of(x), stream_of(x)),
      "gemv");
  return y;
#else
  (void)x, (void)weight, (void)bias;
  TORCH_CHECK(false, "fused gemv: this build has no CUDA kernels");
#endif
}

// at::_flash_attention_forward takes cumulative sequence lengths from LibTorch 2.1 and its scale
// from 2.2; autograd differentiates it (derivatives.yaml), so no Function of our own is needed.
#if defined(LLM_WITH_FUSED_CUDA) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2))
#define LLM_VARLEN_FLASH 1
#endif

bool varlen_attention_applies(const torch::Tensor& q) {
#ifdef LLM_VARLEN_FLASH
  if (!q.is_cuda()) return false;
  if (q.scalar_type() != torch::kHalf && q.scalar_type() != torch::kBFloat16) return false;
  const int64_t head_dim = q.size(-1);
  if (head_dim % 8 != 0 || head_dim > 256) return false;
  return at::cuda::getDeviceProperties(q.device().index())->major >= 8;  // flash: sm80 and newer
#else
  (void)q;
  return false;
#endif
}

torch::Tensor varlen_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& cumulative_lengths,
                               int64_t longest) {
#ifdef LLM_VARLEN_FLASH
  const c10::cuda::CUDAGuard guard(q.device());
  return std::get<0>(at::_flash_attention_forward(q, k, v, cumulative_lengths, cumulative_lengths,
                                                  longest, longest, 0.0, /*is_causal=*/true,
                                                  /*return_debug_mask=*/false));
#else
  (void)q, (void)k, (void)v, (void)cumulative_lengths, (void)longest;
  TORCH_CHECK(false, "varlen attention: this build has no flash attention");
#endif
}

// at::_scaled_dot_product_cudnn_attention takes its bias argument from LibTorch 2.5.
#if defined(LLM_WITH_FUSED_CUDA) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5))
#define LLM_CUDNN_ATTENTION 1
namespace {
std::atomic<bool> cudnn_attention_refused{false};
}  // namespace
#endif

bool cudnn_self_attention_applies(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v) {
#ifdef LLM_CUDNN_ATTENTION
  if (!q.is_cuda() || !torch::GradMode::is_enabled()) return false;
  if (!q.requires_grad() && !k.requires_grad() && !v.requires_grad()) return false;
  if (cudnn_attention_refused.load(std::memory_order_relaxed)) return false;
  if (q.scalar_type() != torch::kHalf && q.scalar_type() != torch::kBFloat16) return false;
  if (q.dim() != 4 || k.dim() != 4 || q.size(1) != k.size(1) || q.size(2) != k.size(2))
    return false;
  const int64_t head_dim = q.size(3);
  if (head_dim % 8 != 0 || head_dim > 128 || q.size(2) % 64 != 0) return false;
  if (!kernels_switched_on("LLMHOST_CUDNN_ATTENTION")) return false;
  if (!at::globalContext().hasCuDNN()) return false;
  const auto* properties = at::cuda::getDeviceProperties(q.device().index());
  return (properties->major == 9 || properties->major == 10) && properties->minor == 0;
#else
  (void)q, (void)k, (void)v;
  return false;
#endif
}

torch::Tensor cudnn_self_attention(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v) {
#ifdef LLM_CUDNN_ATTENTION
  try {
    // The log-sum-exp is what its backward needs.
    return std::get<0>(at::_scaled_dot_product_cudnn_attention(
        q, k, v, c10::nullopt, /*compute_log_sumexp=*/true, 0.0, /*is_causal=*/true,
        /*return_debug_mask=*/false));
  } catch (const c10::Error& error) {
    if (!cudnn_attention_refused.exchange(true)) {
      TORCH_WARN("cuDNN attention refused ", q.sizes(), " (", error.what_without_backtrace(),
                 "); flash attention from here on");
    }
    return torch::Tensor();
  }
#else
  (void)q, (void)k, (void)v;
  TORCH_CHECK(false, "cuDNN attention: needs LibTorch 2.5 or newer");
#endif
}

bool cross_entropy_kernel_applies(const torch::Tensor& logits) {
#ifdef LLM_WITH_FUSED_CUDA
  return logits.is_cuda() && kind_of(logits) >= 0 &&
         kernels_switched_on("LLMHOST_FUSED_CROSS_ENTROPY");
#else
  (void)logits;
  return false;
#endif
}

void cross_entropy_rows(const torch::Tensor& logits, const torch::Tensor& targets,
                        int64_t ignore_index, const torch::Tensor& row_loss,
                        bool gradient_in_place) {
#ifdef LLM_WITH_FUSED_CUDA
  TORCH_CHECK(cross_entropy_kernel_applies(logits) && logits.dim() == 2 && logits.is_contiguous(),
              "fused cross-entropy: contiguous CUDA logits [rows, V] expected");
  const int64_t rows = logits.size(0);
  TORCH_CHECK(targets.is_cuda() && targets.scalar_type() == torch::kLong &&
                  targets.is_contiguous() && targets.numel() == rows,
              "fused cross-entropy: contiguous int64 CUDA targets [rows] expected");
  TORCH_CHECK(row_loss.is_cuda() && row_loss.scalar_type() == torch::kFloat &&
                  row_loss.is_contiguous() && row_loss.numel() == rows,
              "fused cross-entropy: contiguous fp32 CUDA row_loss [rows] expected");
  const c10::cuda::CUDAGuard guard(logits.device());
  check_launch(
      llm_cross_entropy_rows_cuda(logits.data_ptr(), targets.data_ptr<int64_t>(), ignore_index,
                                  rows, logits.size(1), row_loss.data_ptr<float>(),
                                  gradient_in_place ? logits.data_ptr() : nullptr, kind_of(logits),
                                  stream_of(logits)),
      "cross-entropy rows");
#else
  (void)logits, (void)targets, (void)ignore_index, (void)row_loss, (void)gradient_in_place;
  TORCH_CHECK(false, "fused cross-entropy: this build has no CUDA kernels");
#endif
}

}  // namespace llm::fused
