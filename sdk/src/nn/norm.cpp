#include "llm/nn/norm.hpp"

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
  // As LlamaRMSNorm: normalise in fp32, cast back to the input dtype, then scale.
  const auto x32 = x.to(torch::kFloat);
  const auto inv_rms = torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * (x32 * inv_rms).to(x.scalar_type());
}

}  // namespace llm
