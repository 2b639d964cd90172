#pragma once
// What the .cpp files that call the CUDA kernels' C interfaces share (CUDA LibTorch builds only,
// where the file is compiled with LLM_WITH_FUSED_CUDA).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace llm::fused {

// The kernels' element-type code (0: fp32, 1: fp16, 2: bf16), -1 for any other type.
inline int kind_of(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat:
      return 0;
    case torch::kHalf:
      return 1;
    case torch::kBFloat16:
      return 2;
    default:
      return -1;
  }
}

inline void check_launch(int status, const char* kernel) {
  if (status != 0) {
    throw std::runtime_error(std::string(kernel) + " kernel failed to launch (CUDA error " +
                             std::to_string(status) + ")");
  }
}

inline void* stream_of(const torch::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

// False when the environment variable is "0": LLMHOST_FUSED_LOW_RANK=0,
// LLMHOST_FUSED_CROSS_ENTROPY=0 and the like keep LibTorch's operations on CUDA too (the A/B runs
// of bench/).
inline bool kernels_switched_on(const char* variable) {
  const char* value = std::getenv(variable);
  return value == nullptr || std::string(value) != "0";
}

// A kernel not yet measured on a device stays off unless the variable is "1".
inline bool kernels_opted_in(const char* variable) {
  const char* value = std::getenv(variable);
  return value != nullptr && std::string(value) == "1";
}

inline bool aligned16(const torch::Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

// t as the kernels read it: contiguous and 16-byte aligned (.contiguous() returns a contiguous view
// as it is, and a view may start mid-pack; a copy is fresh, aligned memory).
inline torch::Tensor packed(const torch::Tensor& t) {
  auto c = t.contiguous();
  return aligned16(c) ? c : c.clone();
}

}  // namespace llm::fused
