#include "llm/nn/norm.hpp"

#include "fused_ops.hpp"

namespace llm {

LayerNormImpl::LayerNormImpl(int64_t dim, double eps, const torch::TensorOptions& options)
    : eps(eps) {
  weight = register_parameter("weight", torch::empty({dim}, options), /*requires_grad=*/false);
  bias = register_parameter("bias", torch::empty({dim}, options), /*requires_grad=*/false);
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps, const torch::TensorOptions& options) : eps(eps) {
  weight = register_parameter("weight", torch::empty({dim}, options), /*requires_grad=*/false);
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // Training, and any CUDA run: one kernel each way where built, saving x in its own dtype rather
  // than its fp32 copy (fused_ops.hpp).
  if (torch::GradMode::is_enabled() || (fused::cuda_kernels_built() && x.is_cuda())) {
    return fused::rms_norm(x, weight, eps);
  }
  // As LlamaRMSNorm: normalise in fp32, cast back to the input dtype, then scale.
  const auto x32 = x.to(torch::kFloat);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 8)
  // One fused kernel (LibTorch >= 2.8 on CUDA) instead of pow, mean, add, rsqrt and mul.
  const auto normalized = at::rms_norm(x32, {x.size(-1)}, c10::nullopt, eps);
#else
  const auto normalized = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
#endif
  return weight * normalized.to(x.scalar_type());
}

std::array<torch::Tensor, 2> RMSNormImpl::forward_passing_input(const torch::Tensor& x) {
  if (!torch::GradMode::is_enabled()) return {forward(x), x};
  return fused::rms_norm_passing_input(x, weight, eps);
}

}  // namespace llm
