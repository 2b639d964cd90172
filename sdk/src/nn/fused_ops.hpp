#pragma once
// Training-path operations with hand-written backward passes that save less than autograd would
// (fused_ops.cpp): CUDA kernels in a CUDA build (fused_kernels.cu), LibTorch operations elsewhere.
#include <torch/torch.h>

namespace llm::fused {

bool cuda_kernels_built();

// weight * (x * rsqrt(mean(x^2) + eps) in fp32, cast back to x's dtype), weight frozen: saves x in
// its own dtype and rstd, not the fp32 copy of x.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// silu(gate) * up, saving gate and up only (not silu(gate) as well).
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);

// The rotary embedding of x [B, H, T, D] (D contiguous) at positions offset..offset + T - 1 from
// head-wide tables cos, sin [rows, D] (rotary.cpp's layout), in one kernel each way. CUDA builds
// and CUDA tensors only (the caller checks rotary_kernel_applies).
bool rotary_kernel_applies(const torch::Tensor& x, const torch::Tensor& cos);
torch::Tensor rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                     int64_t offset, int64_t rotary_dim);

}  // namespace llm::fused
