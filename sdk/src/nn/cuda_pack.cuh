#pragma once
// Element access shared by the CUDA kernel files: fp32 arithmetic over fp32/fp16/bf16 storage, and
// 16-byte packs (the bandwidth-bound kernels move 16 bytes per access, not 2).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

namespace {

__device__ inline float load(const float* p, int64_t i) { return p[i]; }
__device__ inline float load(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ inline float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ inline void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ inline void store(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ inline void store(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// The value a tensor of type T holds after writing v.
__device__ inline float round_to(const float*, float v) { return v; }
__device__ inline float round_to(const __half*, float v) {
  return __half2float(__float2half_rn(v));
}
__device__ inline float round_to(const __nv_bfloat16*, float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// 16 bytes of elements, loaded and stored as one instruction (8 bf16/fp16 or 4 fp32): the
// elementwise kernels are bandwidth-bound and 2-byte accesses leave most of it unused.
template <typename T>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};

template <typename T>
__device__ inline Pack<T> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T>*>(p);
}
template <typename T>
__device__ inline void store_pack(T* p, const Pack<T>& pack) {
  *reinterpret_cast<Pack<T>*>(p) = pack;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Whether n elements at these pointers can go as whole packs with 32-bit indices.
template <typename T>
bool packs_fit(int64_t n, std::initializer_list<const void*> pointers) {
  if (n % Pack<T>::kSize != 0 || n / Pack<T>::kSize >= (int64_t{1} << 31)) return false;
  for (const void* p : pointers) {
    if (!aligned16(p)) return false;
  }
  return true;
}

}  // namespace

// Dispatch on the element type; an unknown kind is cudaErrorInvalidValue. The _HALF form takes
// fp16 and bf16 only (the low-rank kernels: fp32 training keeps LibTorch's path).
#define LLM_HALF_KIND_CASES(CALL) \
  case 1: {                       \
    using T = __half;             \
    return CALL;                  \
  }                               \
  case 2: {                       \
    using T = __nv_bfloat16;      \
    return CALL;                  \
  }
#define LLM_DISPATCH_KIND(kind, CALL)                 \
  switch (kind) {                                     \
    case 0: {                                         \
      using T = float;                                \
      return CALL;                                    \
    }                                                 \
      LLM_HALF_KIND_CASES(CALL)                       \
    default:                                          \
      return static_cast<int>(cudaErrorInvalidValue); \
  }
#define LLM_DISPATCH_HALF_KIND(kind, CALL)            \
  switch (kind) {                                     \
    LLM_HALF_KIND_CASES(CALL)                         \
    default:                                          \
      return static_cast<int>(cudaErrorInvalidValue); \
  }
