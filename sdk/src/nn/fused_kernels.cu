// Fused kernels for training (fused_cuda_kernels.h): each replaces several LibTorch kernels and
// the full-size temporaries between them, rounding where those kernels would round.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "fused_cuda_kernels.h"

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

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// ---- SwiGLU ------------------------------------------------------------------------------------

template <typename T>
__global__ void swiglu_forward(const T* __restrict__ gate, const T* __restrict__ up,
                               T* __restrict__ out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = load(gate, i);
  const float silu = round_to(out, g / (1.0f + expf(-g)));  // silu writes a tensor of type T
  store(out, i, silu * load(up, i));
}

template <typename T>
__global__ void swiglu_backward(const T* __restrict__ grad, const T* __restrict__ gate,
                                const T* __restrict__ up, T* __restrict__ grad_gate,
                                T* __restrict__ grad_up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = load(gate, i);
  const float dy = load(grad, i);
  const float sigmoid = 1.0f / (1.0f + expf(-g));
  const float silu = round_to(grad_up, g / (1.0f + expf(-g)));
  store(grad_up, i, dy * silu);
  const float dsilu = round_to(grad_gate, dy * load(up, i));  // mul's backward writes T
  store(grad_gate, i, dsilu * sigmoid * (1.0f + g * (1.0f - sigmoid)));
}

// ---- RMSNorm -----------------------------------------------------------------------------------

// Sum over the block (blockDim.x a multiple of 32, at most 1024).
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  v = threadIdx.x < warps ? partial[threadIdx.x] : 0.0f;
  if (warp == 0) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) partial[0] = v;
  }
  __syncthreads();
  return partial[0];
}

template <typename T>
__global__ void rms_norm_forward(const T* __restrict__ x, const T* __restrict__ weight,
                                 T* __restrict__ y, float* __restrict__ rstd, int64_t dim,
                                 float eps) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * dim;
  T* yr = y + row * dim;
  float squares = 0.0f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float v = load(xr, j);
    squares += v * v;
  }
  const float r = rsqrtf(block_sum(squares) / static_cast<float>(dim) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float normalized = round_to(yr, load(xr, j) * r);  // cast back before the weight
    store(yr, j, load(weight, j) * normalized);
  }
}

template <typename T>
__global__ void rms_norm_backward(const T* __restrict__ grad, const T* __restrict__ x,
                                  const T* __restrict__ weight, const float* __restrict__ rstd,
                                  T* __restrict__ grad_x, int64_t dim) {
  const int64_t row = blockIdx.x;
  const T* gr = grad + row * dim;
  const T* xr = x + row * dim;
  T* dr = grad_x + row * dim;
  const float r = rstd[row];
  float dot = 0.0f;  // sum of dn * x_hat
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float dn = round_to(dr, load(gr, j) * load(weight, j));
    dot += dn * load(xr, j) * r;
  }
  const float mean_dot = block_sum(dot) / static_cast<float>(dim);
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    const float dn = round_to(dr, load(gr, j) * load(weight, j));
    const float x_hat = load(xr, j) * r;
    store(dr, j, r * (dn - x_hat * mean_dot));
  }
}

// ---- Rotary ------------------------------------------------------------------------------------

template <typename T>
__global__ void rotary(const T* __restrict__ x, int64_t heads, int64_t tokens, int64_t dim,
                       int64_t stride_b, int64_t stride_h, int64_t stride_t,
                       const T* __restrict__ cos, const T* __restrict__ sin, int64_t offset,
                       int64_t rotary_dim, int transpose, T* __restrict__ out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  // out is [batch, tokens, heads, dim]
  const int64_t j = i % dim;
  const int64_t h = (i / dim) % heads;
  const int64_t t = (i / (dim * heads)) % tokens;
  const int64_t b = i / (dim * heads * tokens);
  const T* row = x + b * stride_b + h * stride_h + t * stride_t;
  if (j >= rotary_dim) {
    out[i] = row[j];
    return;
  }
  const int64_t half = rotary_dim / 2;
  const int64_t partner = j < half ? j + half : j - half;
  const T* table_row_cos = cos + (offset + t) * dim;
  const T* table_row_sin = sin + (offset + t) * dim;
  const float direct = round_to(out, load(row, j) * load(table_row_cos, j));
  const float swapped =
      round_to(out, load(row, partner) * load(table_row_sin, transpose ? partner : j));
  store(out, i, direct + swapped);
}

template <typename T>
int swiglu_forward_launch(const void* gate, const void* up, void* out, int64_t n,
                          cudaStream_t stream) {
  if (n == 0) return 0;
  swiglu_forward<T><<<blocks_for(n), kThreads, 0, stream>>>(
      static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), n);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int swiglu_backward_launch(const void* grad, const void* gate, const void* up, void* grad_gate,
                           void* grad_up, int64_t n, cudaStream_t stream) {
  if (n == 0) return 0;
  swiglu_backward<T><<<blocks_for(n), kThreads, 0, stream>>>(
      static_cast<const T*>(grad), static_cast<const T*>(gate), static_cast<const T*>(up),
      static_cast<T*>(grad_gate), static_cast<T*>(grad_up), n);
  return static_cast<int>(cudaGetLastError());
}

// One block per row; enough threads for 8 elements each, within [32, 1024], a multiple of 32.
int row_threads(int64_t dim) {
  int64_t threads = (dim / 8 + 31) / 32 * 32;
  if (threads < 32) threads = 32;
  if (threads > 1024) threads = 1024;
  return static_cast<int>(threads);
}

template <typename T>
int rms_norm_forward_launch(const void* x, const void* weight, void* y, float* rstd, int64_t rows,
                            int64_t dim, double eps, cudaStream_t stream) {
  if (rows == 0) return 0;
  rms_norm_forward<T><<<static_cast<unsigned>(rows), row_threads(dim), 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<T*>(y), rstd, dim,
      static_cast<float>(eps));
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int rms_norm_backward_launch(const void* grad, const void* x, const void* weight, const float* rstd,
                             void* grad_x, int64_t rows, int64_t dim, cudaStream_t stream) {
  if (rows == 0) return 0;
  rms_norm_backward<T><<<static_cast<unsigned>(rows), row_threads(dim), 0, stream>>>(
      static_cast<const T*>(grad), static_cast<const T*>(x), static_cast<const T*>(weight), rstd,
      static_cast<T*>(grad_x), dim);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int rotary_launch(const void* x, const int64_t* sizes, const int64_t* strides, const void* cos,
                  const void* sin, int64_t offset, int64_t rotary_dim, int transpose, void* out,
                  cudaStream_t stream) {
  const int64_t n = sizes[0] * sizes[1] * sizes[2] * sizes[3];
  if (n == 0) return 0;
  rotary<T><<<blocks_for(n), kThreads, 0, stream>>>(
      static_cast<const T*>(x), sizes[1], sizes[2], sizes[3], strides[0], strides[1], strides[2],
      static_cast<const T*>(cos), static_cast<const T*>(sin), offset, rotary_dim, transpose,
      static_cast<T*>(out), n);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

// Dispatch on the element type; an unknown kind is cudaErrorInvalidValue.
#define LLM_DISPATCH_KIND(kind, CALL)                 \
  switch (kind) {                                     \
    case 0: {                                         \
      using T = float;                                \
      return CALL;                                    \
    }                                                 \
    case 1: {                                         \
      using T = __half;                               \
      return CALL;                                    \
    }                                                 \
    case 2: {                                         \
      using T = __nv_bfloat16;                        \
      return CALL;                                    \
    }                                                 \
    default:                                          \
      return static_cast<int>(cudaErrorInvalidValue); \
  }

extern "C" int llm_swiglu_forward_cuda(const void* gate, const void* up, void* out, int64_t n,
                                       int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, swiglu_forward_launch<T>(gate, up, out, n, s))
}

extern "C" int llm_swiglu_backward_cuda(const void* grad, const void* gate, const void* up,
                                        void* grad_gate, void* grad_up, int64_t n, int kind,
                                        void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, swiglu_backward_launch<T>(grad, gate, up, grad_gate, grad_up, n, s))
}

extern "C" int llm_rms_norm_forward_cuda(const void* x, const void* weight, void* y, float* rstd,
                                         int64_t rows, int64_t dim, double eps, int kind,
                                         void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, rms_norm_forward_launch<T>(x, weight, y, rstd, rows, dim, eps, s))
}

extern "C" int llm_rms_norm_backward_cuda(const void* grad, const void* x, const void* weight,
                                          const float* rstd, void* grad_x, int64_t rows,
                                          int64_t dim, int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, rms_norm_backward_launch<T>(grad, x, weight, rstd, grad_x, rows, dim, s))
}

extern "C" int llm_rotary_cuda(const void* x, const int64_t* sizes, const int64_t* x_strides,
                               const void* cos, const void* sin, int64_t offset, int64_t rotary_dim,
                               int transpose, void* out, int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(
      kind, rotary_launch<T>(x, sizes, x_strides, cos, sin, offset, rotary_dim, transpose, out, s))
}
