#pragma once
// The CUDA the SDK's kernel files (sdk/src/nn/*.cu) use, emulated on the CPU so that CI, which has
// no GPU, runs the kernels themselves: each CUDA thread is a fiber with its own stack, a block's
// fibers run one at a time on the calling thread and switch only at __syncthreads and at warp-wide
// operations (shuffles, mma.sync, ldmatrix), which complete once every lane of the warp has
// arrived. Tensor-core products, ldmatrix and cp.async follow the PTX ISA's fragment layouts and
// group semantics. The emulation also checks what the hardware leaves undefined: a barrier some
// threads never reach, a warp operation some lanes skip, a launch past CUDA's limits. It is a test
// of the kernels' indices, masks, barriers and sums, not of their speed.
//
// A kernel file is compiled as C++ with this directory's include/ ahead of CUDA's (cuda_bf16.h and
// the like come from here) and its launches rewritten by rewrite_launches.cpp into
// cuda_emulation::launch calls.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#define LLM_CUDA_EMULATION 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __constant__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// A block's threads share one copy; blocks run one after another on a thread (see launch).
#define __shared__ static thread_local

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }

// bf16 and fp16 as their bits, converted with round-to-nearest-even as cuda_bf16.h's _rn
// functions do.
struct __nv_bfloat16 {
  uint16_t bits;
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
struct __half {
  uint16_t bits;
};

namespace cuda_emulation {
inline float float_of(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint32_t bits_of(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}
}  // namespace cuda_emulation

inline float __bfloat162float(__nv_bfloat16 h) {
  return cuda_emulation::float_of(static_cast<uint32_t>(h.bits) << 16);
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t bits = cuda_emulation::bits_of(f);
  if (std::isnan(f)) return {static_cast<uint16_t>((bits >> 16) | 0x40u)};
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return {static_cast<uint16_t>(bits >> 16)};
}
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
  return {__float2bfloat16_rn(lo), __float2bfloat16_rn(hi)};
}
inline float __half2float(__half h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  const uint32_t exponent = (h.bits >> 10) & 0x1Fu, mantissa = h.bits & 0x3FFu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in fp32
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  return cuda_emulation::float_of(
      sign |
      (exponent == 31 ? 0x7F800000u | mantissa << 13 : (exponent + 112) << 23 | mantissa << 13));
}
inline __half __float2half_rn(float f) {
  const uint32_t bits = cuda_emulation::bits_of(f);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x7F800000u) {  // inf, or NaN kept quiet
    return {static_cast<uint16_t>(sign | 0x7C00u | (magnitude > 0x7F800000u ? 0x200u : 0u))};
  }
  if (magnitude >= 0x477FF000u) return {static_cast<uint16_t>(sign | 0x7C00u)};  // >= 65520
  if (magnitude < 0x38800000u) {  // below 2^-14: a multiple of 2^-24, rounded to nearest even
    const float scaled = std::fabs(f) * 16777216.0f;  // exact: a power of two
    return {static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)))};
  }
  const uint32_t rounded = magnitude + 0xFFFu + ((magnitude >> 13) & 1u);
  return {static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13))};
}

inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32);
}
// Each 16-bit half of a compared with b's, unsigned: 0xFFFF where a's is at most b's, else 0.
inline unsigned __vcmpleu2(unsigned a, unsigned b) {
  const unsigned low = (a & 0xFFFFu) <= (b & 0xFFFFu) ? 0xFFFFu : 0u;
  const unsigned high = (a >> 16) <= (b >> 16) ? 0xFFFF0000u : 0u;
  return low | high;
}
// Byte i of the result is byte (selector >> 4 i) & 7 of the pair (b << 32) | a (no sign mode).
inline unsigned __byte_perm(unsigned a, unsigned b, unsigned selector) {
  const uint64_t pair = (static_cast<uint64_t>(b) << 32) | a;
  unsigned out = 0;
  for (int i = 0; i < 4; ++i) {
    const unsigned byte = (selector >> (4 * i)) & 7u;
    out |= static_cast<unsigned>((pair >> (8 * byte)) & 0xFFu) << (8 * i);
  }
  return out;
}
inline float __fmul_rn(float a, float b) { return a * b; }
// CUDA's device overloads of min and max.
#define LLM_EMULATED_MIN_MAX(T)                    \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
LLM_EMULATED_MIN_MAX(int)
LLM_EMULATED_MIN_MAX(unsigned)
LLM_EMULATED_MIN_MAX(long)
LLM_EMULATED_MIN_MAX(unsigned long)
LLM_EMULATED_MIN_MAX(long long)
LLM_EMULATED_MIN_MAX(unsigned long long)
#undef LLM_EMULATED_MIN_MAX
inline float rsqrtf(float v) { return 1.0f / std::sqrt(v); }
template <typename T>
inline T __ldcs(const T* p) {
  return *p;
}
[[noreturn]] void __trap();

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9
};
using cudaError = cudaError_t;
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
struct CUstream_st;
using cudaStream_t = CUstream_st*;
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device);
cudaError_t cudaDeviceSynchronize();

// "Device" memory is host memory, 256-byte aligned as cudaMalloc's; copies are memcpy (kernels run
// to completion at their launch, so every copy and event is already synchronous).
enum cudaMemcpyKind {
  cudaMemcpyHostToHost,
  cudaMemcpyHostToDevice,
  cudaMemcpyDeviceToHost,
  cudaMemcpyDeviceToDevice
};
cudaError_t cudaMalloc(void** pointer, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** pointer, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(pointer), bytes);
}
cudaError_t cudaFree(void* pointer);
cudaError_t cudaMemcpy(void* to, const void* from, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
// Events time the emulation on the host clock: a bench runs, its times mean nothing.
struct CUevent_st;
using cudaEvent_t = CUevent_st*;
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

namespace cuda_emulation {

const uint3& thread_index();
const uint3& block_index();
const dim3& block_dim();
const dim3& grid_dim();

void syncthreads();
// Every lane of the calling thread's warp writes `bytes` of `value`; once all have, `read` sees
// the 32 lanes' values (lane l's at l * kLaneBytes), and the call returns after every lane has
// read. Lanes that meet in different operations (`operation` names it) are an error: a warp that
// diverges between warp operations is undefined on a GPU.
void warp_exchange(const char* operation, const void* value, size_t bytes,
                   const std::function<void(const void*)>& read);

constexpr size_t kLaneBytes = 64;  // the most a lane gives one warp operation
void check_full_mask(unsigned mask);

template <typename T>
T shuffle(unsigned mask, T value, int source_of(int lane, int arg), int arg) {
  static_assert(sizeof(T) <= kLaneBytes, "a shuffled value fits a lane's slot");
  check_full_mask(mask);
  T result{};
  const int lane = static_cast<int>(thread_index().x % 32);
  warp_exchange("a shuffle", &value, sizeof(T), [&](const void* all) {
    const int source = source_of(lane, arg);
    std::memcpy(&result, static_cast<const unsigned char*>(all) + kLaneBytes * source, sizeof(T));
  });
  return result;
}
inline int xor_source(int lane, int mask) { return lane ^ mask; }
inline int down_source(int lane, int delta) { return lane + delta < 32 ? lane + delta : lane; }

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 with D = C: the products are exact and
// summed in double, then rounded once (the hardware's order and rounding within the 16 terms are
// not specified; tests bound them).
void mma_m16n8k16_bf16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
// ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16: lane 8 i + r gives row r of matrix i.
void ldmatrix_x4_trans(uint32_t (&a)[4], const void* row);
// cp.async of `bytes` (4 or 16), its groups, and cp.async.wait_group N.
void cp_async(void* shared, const void* global, size_t bytes);
void cp_async_commit();
void cp_async_wait(int pending_groups_left);

// How a block's warps and lanes are ordered each time they are resumed, whether a warp runs
// ahead of the others up to the next __syncthreads (by default: a missing barrier then shows),
// and when cp.async copies land: tests run a kernel under several and expect the same bits (a
// race shows as a difference).
enum class Schedule { kInOrder, kReversed, kShuffled };
enum class CopyLanding { kAtWait, kAtIssue };
struct Options {
  Schedule schedule = Schedule::kInOrder;
  bool warps_run_ahead = true;
  CopyLanding copies = CopyLanding::kAtWait;
  bool blocks_reversed = false;
  int multiprocessors = 132;
  uint32_t seed = 1;
};
void set_options(const Options& options);
const Options& options();

// Runs `body` as every thread of every block of the grid; a bad configuration sets the error
// cudaGetLastError returns and runs nothing.
void launch(const std::function<void()>& body, dim3 grid, dim3 block, size_t shared_bytes = 0,
            const void* stream = nullptr);

}  // namespace cuda_emulation

#define threadIdx (::cuda_emulation::thread_index())
#define blockIdx (::cuda_emulation::block_index())
#define blockDim (::cuda_emulation::block_dim())
#define gridDim (::cuda_emulation::grid_dim())
#define __syncthreads() ::cuda_emulation::syncthreads()

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask) {
  return cuda_emulation::shuffle(mask, value, cuda_emulation::xor_source, lane_mask);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta) {
  return cuda_emulation::shuffle(mask, value, cuda_emulation::down_source, static_cast<int>(delta));
}
