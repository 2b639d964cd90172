// NF4 dequantization on the GPU: one thread per packed byte (two weights). The fp32 product is
// rounded once to the output type, exactly as nf4_dequantize_reference does, so both paths give
// bitwise the same weights.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "nf4_codebook.h"
#include "nf4_cuda_kernel.h"

namespace {

__constant__ float kNf4[16] = LLM_NF4_VALUES;

__device__ inline void store(float* out, int64_t i, float v) { out[i] = v; }
__device__ inline void store(__half* out, int64_t i, float v) { out[i] = __float2half_rn(v); }
__device__ inline void store(__nv_bfloat16* out, int64_t i, float v) {
  out[i] = __float2bfloat16_rn(v);
}

template <typename T>
__global__ void dequantize_nf4(const uint8_t* __restrict__ packed, const float* __restrict__ absmax,
                               T* __restrict__ out, int64_t packed_bytes) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= packed_bytes) return;
  const uint8_t byte = packed[k];
  // Both elements of a byte lie in one 64-element block (the block size is even).
  const float scale = absmax[(2 * k) / 64];
  store(out, 2 * k, __fmul_rn(kNf4[byte >> 4], scale));
  store(out, 2 * k + 1, __fmul_rn(kNf4[byte & 15], scale));
}

template <typename T>
int launch(const uint8_t* packed, const float* absmax, void* out, int64_t packed_bytes,
           cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t blocks = (packed_bytes + kThreads - 1) / kThreads;
  if (blocks == 0) return 0;
  dequantize_nf4<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      packed, absmax, static_cast<T*>(out), packed_bytes);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

extern "C" int llm_nf4_dequantize_cuda(const uint8_t* packed, const float* absmax, void* out,
                                       int64_t packed_bytes, int out_kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  switch (out_kind) {
    case 0:
      return launch<float>(packed, absmax, out, packed_bytes, s);
    case 1:
      return launch<__half>(packed, absmax, out, packed_bytes, s);
    case 2:
      return launch<__nv_bfloat16>(packed, absmax, out, packed_bytes, s);
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
}
