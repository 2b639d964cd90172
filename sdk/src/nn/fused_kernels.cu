// Fused kernels for training (fused_cuda_kernels.h): each replaces several LibTorch kernels and
// the full-size temporaries between them, rounding where those kernels would round.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>

#include "cuda_pack.cuh"
#include "fused_cuda_kernels.h"

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// ---- SwiGLU ------------------------------------------------------------------------------------

template <typename T>
__device__ inline float swiglu_value(float g, float u) {
  const T* tag = nullptr;
  return round_to(tag, g / (1.0f + expf(-g))) * u;  // silu writes a tensor of type T
}

template <typename T>
__device__ inline void swiglu_gradients(float dy, float g, float u, float& dg, float& du) {
  const T* tag = nullptr;
  const float sigmoid = 1.0f / (1.0f + expf(-g));
  du = dy * round_to(tag, g / (1.0f + expf(-g)));
  const float dsilu = round_to(tag, dy * u);  // mul's backward writes T
  dg = dsilu * sigmoid * (1.0f + g * (1.0f - sigmoid));
}

// The same over 16-byte packs.
template <typename T>
__device__ inline Pack<T> swiglu_pack(const Pack<T>& g, const Pack<T>& u) {
  Pack<T> o;
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    store(o.v, e, swiglu_value<T>(load(g.v, e), load(u.v, e)));
  }
  return o;
}

template <typename T>
__device__ inline void swiglu_gradient_packs(const Pack<T>& dy, const Pack<T>& g, const Pack<T>& u,
                                             Pack<T>& dg, Pack<T>& du) {
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    float dge, due;
    swiglu_gradients<T>(load(dy.v, e), load(g.v, e), load(u.v, e), dge, due);
    store(dg.v, e, dge);
    store(du.v, e, due);
  }
}

template <typename T>
__global__ void swiglu_forward(const T* __restrict__ gate, const T* __restrict__ up,
                               T* __restrict__ out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  store(out, i, swiglu_value<T>(load(gate, i), load(up, i)));
}

template <typename T>
__global__ void swiglu_forward_packed(const Pack<T>* __restrict__ gate,
                                      const Pack<T>* __restrict__ up, Pack<T>* __restrict__ out,
                                      int32_t packs) {
  const int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= packs) return;
  out[i] = swiglu_pack(gate[i], up[i]);
}

template <typename T>
__global__ void swiglu_backward(const T* __restrict__ grad, const T* __restrict__ gate,
                                const T* __restrict__ up, T* __restrict__ grad_gate,
                                T* __restrict__ grad_up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float dg, du;
  swiglu_gradients<T>(load(grad, i), load(gate, i), load(up, i), dg, du);
  store(grad_gate, i, dg);
  store(grad_up, i, du);
}

template <typename T>
__global__ void swiglu_backward_packed(const Pack<T>* __restrict__ grad,
                                       const Pack<T>* __restrict__ gate,
                                       const Pack<T>* __restrict__ up,
                                       Pack<T>* __restrict__ grad_gate,
                                       Pack<T>* __restrict__ grad_up, int32_t packs) {
  const int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= packs) return;
  Pack<T> dg, du;
  swiglu_gradient_packs(grad[i], gate[i], up[i], dg, du);
  grad_gate[i] = dg;
  grad_up[i] = du;
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
  v = static_cast<int>(threadIdx.x) < warps ? partial[threadIdx.x] : 0.0f;
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
                                  const T* __restrict__ residual_grad, T* __restrict__ grad_x,
                                  int64_t dim) {
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
    const float passed = residual_grad != nullptr ? load(residual_grad + row * dim, j) : 0.0f;
    store(dr, j, r * (dn - x_hat * mean_dot) + passed);
  }
}

// The same with the row held in registers, one pack per thread (dim / pack-size threads, rounded
// up to a warp): x is read once, and every access is 16 bytes wide.
template <typename T>
__global__ void rms_norm_forward_packed(const T* __restrict__ x, const T* __restrict__ weight,
                                        T* __restrict__ y, float* __restrict__ rstd,
                                        int32_t packs_per_row, float eps) {
  const int64_t row = blockIdx.x;
  const int32_t k = threadIdx.x;
  const bool active = k < packs_per_row;
  const int64_t dim = static_cast<int64_t>(packs_per_row) * Pack<T>::kSize;
  Pack<T> xv, w;
  float squares = 0.0f;
  if (active) {
    // The weight's pack too, before the row's sum: its load waits with x's, not after the barrier.
    xv = reinterpret_cast<const Pack<T>*>(x + row * dim)[k];
    w = reinterpret_cast<const Pack<T>*>(weight)[k];
#pragma unroll
    for (int e = 0; e < Pack<T>::kSize; ++e) {
      const float v = load(xv.v, e);
      squares += v * v;
    }
  }
  const float r = rsqrtf(block_sum(squares) / static_cast<float>(dim) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  if (!active) return;
  Pack<T> out;
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    const float normalized = round_to(out.v, load(xv.v, e) * r);  // cast back before the weight
    store(out.v, e, load(w.v, e) * normalized);
  }
  reinterpret_cast<Pack<T>*>(y + row * dim)[k] = out;
}

template <typename T>
__global__ void rms_norm_backward_packed(const T* __restrict__ grad, const T* __restrict__ x,
                                         const T* __restrict__ weight,
                                         const float* __restrict__ rstd,
                                         const T* __restrict__ residual_grad,
                                         T* __restrict__ grad_x, int32_t packs_per_row) {
  const int64_t row = blockIdx.x;
  const int32_t k = threadIdx.x;
  const bool active = k < packs_per_row;
  const int64_t dim = static_cast<int64_t>(packs_per_row) * Pack<T>::kSize;
  const float r = rstd[row];
  // dn = dy * weight rounded to T (as the composed operations round it), kept as a pack rather
  // than dy and the weight: fewer registers across the row's sum.
  Pack<T> dn, xv, dx, passed{};
  float dot = 0.0f;  // sum of dn * x_hat
  if (active) {
    // The residual's gradient too, before the row's sum: its load (a quarter of the kernel's
    // bytes) waits with the others, not after the barrier on every row's critical path.
    const Pack<T> dy = reinterpret_cast<const Pack<T>*>(grad + row * dim)[k];
    const Pack<T> w = reinterpret_cast<const Pack<T>*>(weight)[k];
    xv = reinterpret_cast<const Pack<T>*>(x + row * dim)[k];
    if (residual_grad != nullptr) {
      passed = reinterpret_cast<const Pack<T>*>(residual_grad + row * dim)[k];
    }
#pragma unroll
    for (int e = 0; e < Pack<T>::kSize; ++e) {
      store(dn.v, e, load(dy.v, e) * load(w.v, e));
      dot += load(dn.v, e) * load(xv.v, e) * r;
    }
  }
  const float mean_dot = block_sum(dot) / static_cast<float>(dim);
  if (!active) return;
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    const float x_hat = load(xv.v, e) * r;
    store(dx.v, e,
          r * (load(dn.v, e) - x_hat * mean_dot) +
              (residual_grad != nullptr ? load(passed.v, e) : 0.0f));
  }
  reinterpret_cast<Pack<T>*>(grad_x + row * dim)[k] = dx;
}

// ---- Two LayerNorms of one input ---------------------------------------------------------------

// y1 = LN(x; w1, b1) and y2 = LN(x; w2, b2) of one row a block, a pack a thread: statistics in
// fp32 (mean, then the mean square about it), each output rounded once, as LibTorch's LayerNorm.
template <typename T>
__global__ void layer_norm_pair_forward_packed(const T* __restrict__ x, const T* __restrict__ w1,
                                               const T* __restrict__ b1, const T* __restrict__ w2,
                                               const T* __restrict__ b2, T* __restrict__ y1,
                                               T* __restrict__ y2, float* __restrict__ mean_out,
                                               float* __restrict__ rstd_out, int32_t packs_per_row,
                                               float eps) {
  const int64_t row = blockIdx.x;
  const int32_t k = threadIdx.x;
  const bool active = k < packs_per_row;
  const int64_t dim = static_cast<int64_t>(packs_per_row) * Pack<T>::kSize;
  Pack<T> xv;
  float sum = 0.0f;
  if (active) {
    xv = reinterpret_cast<const Pack<T>*>(x + row * dim)[k];
#pragma unroll
    for (int e = 0; e < Pack<T>::kSize; ++e) sum += load(xv.v, e);
  }
  const float mean = block_sum(sum) / static_cast<float>(dim);
  float squares = 0.0f;
  if (active) {
#pragma unroll
    for (int e = 0; e < Pack<T>::kSize; ++e) {
      const float d = load(xv.v, e) - mean;
      squares += d * d;
    }
  }
  const float r = rsqrtf(block_sum(squares) / static_cast<float>(dim) + eps);
  if (threadIdx.x == 0) {
    mean_out[row] = mean;
    rstd_out[row] = r;
  }
  if (!active) return;
  const Pack<T> g1 = reinterpret_cast<const Pack<T>*>(w1)[k];
  const Pack<T> c1 = reinterpret_cast<const Pack<T>*>(b1)[k];
  const Pack<T> g2 = reinterpret_cast<const Pack<T>*>(w2)[k];
  const Pack<T> c2 = reinterpret_cast<const Pack<T>*>(b2)[k];
  Pack<T> o1, o2;
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    const float x_hat = (load(xv.v, e) - mean) * r;
    store(o1.v, e, x_hat * load(g1.v, e) + load(c1.v, e));
    store(o2.v, e, x_hat * load(g2.v, e) + load(c2.v, e));
  }
  reinterpret_cast<Pack<T>*>(y1 + row * dim)[k] = o1;
  reinterpret_cast<Pack<T>*>(y2 + row * dim)[k] = o2;
}

// x's gradient through both (weights frozen), plus dres (x's gradient from elsewhere: the
// block's residual sum) where given. LayerNorm's input gradient is linear in dy * w, so the two
// are one: g = dy1 w1 + dy2 w2 and dx = dres + rstd (g - mean(g) - x_hat mean(g x_hat)) in fp32,
// rounded once (LibTorch rounds each LayerNorm's, then each sum).
template <typename T>
__global__ void layer_norm_pair_backward_packed(const T* __restrict__ dy1,
                                                const T* __restrict__ dy2,
                                                const T* __restrict__ dres, const T* __restrict__ x,
                                                const T* __restrict__ w1, const T* __restrict__ w2,
                                                const float* __restrict__ mean_in,
                                                const float* __restrict__ rstd_in,
                                                T* __restrict__ grad_x, int32_t packs_per_row) {
  const int64_t row = blockIdx.x;
  const int32_t k = threadIdx.x;
  const bool active = k < packs_per_row;
  const int64_t dim = static_cast<int64_t>(packs_per_row) * Pack<T>::kSize;
  const float mean = mean_in[row], r = rstd_in[row];
  float g[Pack<T>::kSize], x_hat[Pack<T>::kSize];
  float sum_g = 0.0f, sum_gx = 0.0f;
  if (active) {
    const Pack<T> d1 = reinterpret_cast<const Pack<T>*>(dy1 + row * dim)[k];
    const Pack<T> d2 = reinterpret_cast<const Pack<T>*>(dy2 + row * dim)[k];
    const Pack<T> xv = reinterpret_cast<const Pack<T>*>(x + row * dim)[k];
    const Pack<T> g1 = reinterpret_cast<const Pack<T>*>(w1)[k];
    const Pack<T> g2 = reinterpret_cast<const Pack<T>*>(w2)[k];
#pragma unroll
    for (int e = 0; e < Pack<T>::kSize; ++e) {
      g[e] = load(d1.v, e) * load(g1.v, e) + load(d2.v, e) * load(g2.v, e);
      x_hat[e] = (load(xv.v, e) - mean) * r;
      sum_g += g[e];
      sum_gx += g[e] * x_hat[e];
    }
  }
  const float mean_g = block_sum(sum_g) / static_cast<float>(dim);
  const float mean_gx = block_sum(sum_gx) / static_cast<float>(dim);
  if (!active) return;
  Pack<T> dx, base;
  if (dres != nullptr) base = reinterpret_cast<const Pack<T>*>(dres + row * dim)[k];
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    const float other = dres != nullptr ? load(base.v, e) : 0.0f;
    store(dx.v, e, other + r * (g[e] - mean_g - x_hat[e] * mean_gx));
  }
  reinterpret_cast<Pack<T>*>(grad_x + row * dim)[k] = dx;
}

// ---- (a + b) + c
// ---------------------------------------------------------------------------------

// Rounded after each add, as two LibTorch adds would: the same values in one pass.
template <typename T>
__device__ inline float add_three_value(float a, float b, float c) {
  const T* tag = nullptr;
  return round_to(tag, a + b) + c;
}

template <typename T>
__global__ void add_three(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ c,
                          T* __restrict__ out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  store(out, i, add_three_value<T>(load(a, i), load(b, i), load(c, i)));
}

template <typename T>
__global__ void add_three_packed(const Pack<T>* __restrict__ a, const Pack<T>* __restrict__ b,
                                 const Pack<T>* __restrict__ c, Pack<T>* __restrict__ out,
                                 int32_t packs) {
  const int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= packs) return;
  const Pack<T> x = a[i], y = b[i], z = c[i];
  Pack<T> o;
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    store(o.v, e, add_three_value<T>(load(x.v, e), load(y.v, e), load(z.v, e)));
  }
  out[i] = o;
}

// ---- Rotary ------------------------------------------------------------------------------------

// The table row of token t: positions[t] for packed samples, offset + t otherwise.
__device__ inline int64_t rotary_row(const int64_t* positions, int64_t offset, int64_t t) {
  return positions != nullptr ? positions[t] : offset + t;
}

template <typename T>
__global__ void rotary(const T* __restrict__ x, int64_t heads, int64_t tokens, int64_t dim,
                       int64_t stride_b, int64_t stride_h, int64_t stride_t,
                       const T* __restrict__ cos, const T* __restrict__ sin,
                       const int64_t* __restrict__ positions, int64_t offset, int64_t rotary_dim,
                       int transpose, T* __restrict__ out, int64_t n) {
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
  const int64_t p = rotary_row(positions, offset, t);
  const T* table_row_cos = cos + p * dim;
  const T* table_row_sin = sin + p * dim;
  const float direct = round_to(out, load(row, j) * load(table_row_cos, j));
  const float swapped =
      round_to(out, load(row, partner) * load(table_row_sin, transpose ? partner : j));
  store(out, i, direct + swapped);
}

// Pack j (element index) of one head row, rotated: the row's packs j and partner(j) against the
// tables' row for token t (the partner's sin in backward). j must be below rotary_dim.
template <typename T>
__device__ inline Pack<T> rotated_pack(const T* row, int32_t j, int32_t rotary_dim, int64_t dim,
                                       const T* cos, const T* sin, const int64_t* positions,
                                       int64_t offset, int32_t t, int transpose) {
  const int32_t half = rotary_dim / 2;
  const int32_t partner = j < half ? j + half : j - half;
  const Pack<T> direct = load_pack(row + j);
  const Pack<T> swapped = load_pack(row + partner);
  const int64_t table_row = rotary_row(positions, offset, t) * dim;
  const Pack<T> c = load_pack(cos + table_row + j);
  const Pack<T> sn = load_pack(sin + table_row + (transpose ? partner : j));
  Pack<T> o;
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    const float a = round_to(o.v, load(direct.v, e) * load(c.v, e));
    const float bb = round_to(o.v, load(swapped.v, e) * load(sn.v, e));
    store(o.v, e, a + bb);
  }
  return o;
}

// The tables' packs a rotated pair of packs j, j + half reads (the partner's sin in backward).
template <typename T>
struct PairTables {
  Pack<T> c_low, c_high, s_low, s_high;
};

template <typename T>
__device__ inline PairTables<T> pair_tables(int32_t j, int32_t half, const T* cos_row,
                                            const T* sin_row, int transpose) {
  return {load_pack(cos_row + j), load_pack(cos_row + j + half),
          load_pack(sin_row + (transpose ? j + half : j)),
          load_pack(sin_row + (transpose ? j : j + half))};
}

template <typename T>
__device__ inline void rotate_pair(const Pack<T>& x_low, const Pack<T>& x_high,
                                   const PairTables<T>& tables, Pack<T>& low, Pack<T>& high) {
#pragma unroll
  for (int e = 0; e < Pack<T>::kSize; ++e) {
    const float a_low = round_to(low.v, load(x_low.v, e) * load(tables.c_low.v, e));
    const float b_low = round_to(low.v, load(x_high.v, e) * load(tables.s_low.v, e));
    store(low.v, e, a_low + b_low);
    const float a_high = round_to(high.v, load(x_high.v, e) * load(tables.c_high.v, e));
    const float b_high = round_to(high.v, load(x_low.v, e) * load(tables.s_high.v, e));
    store(high.v, e, a_high + b_high);
  }
}

// A row's packs j and j + half rotated together: each is the other's partner, so the two reads of
// x serve both outputs, where one pack a thread read every pack twice (7b: 31 us a call for 67 MB,
// ~2.2 TB/s). Tables' packs as rotated_pack reads them, the same arithmetic.
template <typename T>
__device__ inline void rotated_pair(const T* row, int32_t j, int32_t half, const T* cos_row,
                                    const T* sin_row, int transpose, Pack<T>& low, Pack<T>& high) {
  const Pack<T> x_low = load_pack(row + j), x_high = load_pack(row + j + half);
  rotate_pair(x_low, x_high, pair_tables(j, half, cos_row, sin_row, transpose), low, high);
}

// The rotation of whole packs, with 32-bit index arithmetic (the per-element 64-bit division and
// modulo of the scalar kernel dominated it). A unit of an output row is a rotated pair of packs
// (k, k + pairs) or, past rotary_dim, one pack copied; a thread takes one unit of HEADS heads of
// one token (heads h0, h0 + heads / HEADS, ...), so the tables' four packs are loaded once for all
// of them (HEADS = 1: 7b, 6 loads for each 2 packs written, 24 us a call for 67 MB; session 17).
// The heads' loads are all issued before any is used.
template <typename T, int HEADS>
__global__ void rotary_packed_heads(const T* __restrict__ x, int32_t heads, int32_t tokens,
                                    int32_t packs_per_row, int64_t stride_b, int64_t stride_h,
                                    int64_t stride_t, const T* __restrict__ cos,
                                    const T* __restrict__ sin,
                                    const int64_t* __restrict__ positions, int64_t offset,
                                    int32_t rotary_dim, int transpose, Pack<T>* __restrict__ out,
                                    int32_t threads) {
  const int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= threads) return;
  constexpr int32_t kSize = Pack<T>::kSize;
  const int32_t pairs = rotary_dim / (2 * kSize);
  const int32_t units_per_row = packs_per_row - pairs;
  const int32_t head_groups = heads / HEADS;
  const int32_t k = i % units_per_row;
  const int32_t rest = i / units_per_row;
  const int32_t h0 = rest % head_groups;
  const int32_t bt = rest / head_groups;  // [batch, tokens] order
  const int32_t t = bt % tokens;
  const int32_t b = bt / tokens;
  const T* rows[HEADS];
  Pack<T>* out_rows[HEADS];
#pragma unroll
  for (int s = 0; s < HEADS; ++s) {
    const int32_t h = h0 + s * head_groups;
    rows[s] = x + b * stride_b + h * stride_h + t * stride_t;
    out_rows[s] = out + (static_cast<int64_t>(bt) * heads + h) * packs_per_row;
  }
  if (k >= pairs) {
    const int32_t pack = k + pairs;  // past the rotated packs
    Pack<T> copies[HEADS];
#pragma unroll
    for (int s = 0; s < HEADS; ++s) copies[s] = load_pack(rows[s] + pack * kSize);
#pragma unroll
    for (int s = 0; s < HEADS; ++s) out_rows[s][pack] = copies[s];
    return;
  }
  const int64_t dim = static_cast<int64_t>(packs_per_row) * kSize;
  const int64_t table_row = rotary_row(positions, offset, t) * dim;
  const int32_t j = k * kSize, half = rotary_dim / 2;
  const PairTables<T> tables = pair_tables(j, half, cos + table_row, sin + table_row, transpose);
  Pack<T> x_low[HEADS], x_high[HEADS];
#pragma unroll
  for (int s = 0; s < HEADS; ++s) {
    x_low[s] = load_pack(rows[s] + j);
    x_high[s] = load_pack(rows[s] + j + half);
  }
#pragma unroll
  for (int s = 0; s < HEADS; ++s) {
    Pack<T> low, high;
    rotate_pair(x_low[s], x_high[s], tables, low, high);
    out_rows[s][k] = low;
    out_rows[s][k + pairs] = high;
  }
}

// Several parts of one projection (GPT-NeoX-style q, k, v interleaved per head) moved between
// two layouts in one pass, the first `rotated` parts rotated on the way as rotary_packed_heads
// does: one kernel instead of stacking q and k, rotating them, and stacking the gradients back in
// backward. Thread order: part, batch, token, head, pack; each part has its own strides. Thread i's
// place in a [part, batch, token, head, pack] grid, packs the fastest: the order in which the parts
// kernels below lay out their threads.
struct PartsGridIndex {
  int32_t pack, head, token, batch, part;
};

__device__ inline PartsGridIndex parts_grid_index(int32_t i, int32_t packs_per_row, int32_t heads,
                                                  int32_t tokens, int32_t batch) {
  PartsGridIndex at;
  at.pack = i % packs_per_row;
  int32_t row = i / packs_per_row;
  at.head = row % heads;
  row /= heads;
  at.token = row % tokens;
  row /= tokens;
  at.batch = row % batch;
  at.part = row / batch;
  return at;
}

template <typename T>
__global__ void rotary_parts_packed(LlmRotaryParts parts, int32_t rotated, int32_t heads,
                                    int32_t tokens, int32_t batch, int32_t packs_per_row,
                                    const T* __restrict__ cos, const T* __restrict__ sin,
                                    const int64_t* __restrict__ positions, int64_t offset,
                                    int32_t rotary_dim, int transpose, int32_t packs) {
  const int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= packs) return;
  const auto [k, h, t, b, part] = parts_grid_index(i, packs_per_row, heads, tokens, batch);
  const int64_t* in_strides = parts.in_strides[part];
  const int64_t* out_strides = parts.out_strides[part];
  const T* in = static_cast<const T*>(parts.in[part]) + b * in_strides[0] + h * in_strides[1] +
                t * in_strides[2];
  T* out = static_cast<T*>(parts.out[part]) + b * out_strides[0] + h * out_strides[1] +
           t * out_strides[2];
  const int32_t j = k * Pack<T>::kSize;
  if (part >= rotated || j >= rotary_dim) {
    store_pack(out + j, load_pack(in + j));
    return;
  }
  const int64_t dim = static_cast<int64_t>(packs_per_row) * Pack<T>::kSize;
  store_pack(out + j,
             rotated_pack(in, j, rotary_dim, dim, cos, sin, positions, offset, t, transpose));
}

// The first `rotary_dim` of `count` parts of one projection rotated where they lie (part p at
// data + p * part_offset elements). A thread owns a pack j of the first half and its partner
// j + half, so it reads both before writing either: no other thread touches them. The rest of
// the head and the parts after `count` are not read at all. Thread order: part, batch, token,
// head, pack.
template <typename T>
__global__ void rotary_in_place_packed(T* data, int64_t part_offset, int64_t stride_b,
                                       int64_t stride_h, int64_t stride_t, int32_t heads,
                                       int32_t tokens, int32_t batch, int32_t half_packs,
                                       int64_t dim, const T* __restrict__ cos,
                                       const T* __restrict__ sin,
                                       const int64_t* __restrict__ positions, int64_t offset,
                                       int32_t rotary_dim, int32_t packs) {
  const int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= packs) return;
  const auto [k, h, t, b, part] = parts_grid_index(i, half_packs, heads, tokens, batch);
  T* row = data + part * part_offset + b * stride_b + h * stride_h + t * stride_t;
  const int32_t j = k * Pack<T>::kSize;
  const int32_t half = rotary_dim / 2;
  const int64_t table_row = rotary_row(positions, offset, t) * dim;
  Pack<T> low, high;
  rotated_pair<T>(row, j, half, cos + table_row, sin + table_row, 0, low, high);
  store_pack(row + j, low);
  store_pack(row + j + half, high);
}

// ---- Batch-1 linear (decode) -------------------------------------------------------------------

constexpr int kGemvWarps = 4;  // rows per block

// y[n] = bias[n] + sum_k w[n, k] * x[k], one warp per row, accumulated in fp32 and rounded once
// (as the GEMM's epilogue rounds). A batch-1 product reads each weight once: the kernel is a
// stream of 16-byte loads, several in flight per lane.
template <typename T>
__global__ void gemv(const T* __restrict__ w, const T* __restrict__ x, const T* __restrict__ bias,
                     T* __restrict__ y, int32_t rows, int32_t packs_per_row) {
  const int32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int32_t row = blockIdx.x * kGemvWarps + warp;
  if (row >= rows) return;
  const Pack<T>* wr =
      reinterpret_cast<const Pack<T>*>(w) + static_cast<int64_t>(row) * packs_per_row;
  const Pack<T>* xp = reinterpret_cast<const Pack<T>*>(x);
  float sum = 0.0f;
#pragma unroll 4
  for (int32_t k = lane; k < packs_per_row; k += 32) {
    const Pack<T> a = wr[k], b = xp[k];
#pragma unroll
    for (int e = 0; e < Pack<T>::kSize; ++e) sum += load(a.v, e) * load(b.v, e);
  }
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0) store(y, row, sum + (bias != nullptr ? load(bias, row) : 0.0f));
}

template <typename T>
int gemv_launch(const void* w, const void* x, const void* bias, void* y, int64_t rows, int64_t cols,
                cudaStream_t stream) {
  if (rows == 0) return 0;
  if (cols % Pack<T>::kSize != 0 || rows >= (int64_t{1} << 31) || !packs_fit<T>(cols, {w, x})) {
    return static_cast<int>(cudaErrorInvalidValue);  // the caller checks; never a wrong answer
  }
  const auto blocks = static_cast<unsigned>((rows + kGemvWarps - 1) / kGemvWarps);
  gemv<T><<<blocks, kGemvWarps * 32, 0, stream>>>(
      static_cast<const T*>(w), static_cast<const T*>(x), static_cast<const T*>(bias),
      static_cast<T*>(y), static_cast<int32_t>(rows), static_cast<int32_t>(cols / Pack<T>::kSize));
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int swiglu_forward_launch(const void* gate, const void* up, void* out, int64_t n,
                          cudaStream_t stream) {
  if (n == 0) return 0;
  if (packs_fit<T>(n, {gate, up, out})) {
    const int64_t packs = n / Pack<T>::kSize;
    swiglu_forward_packed<T><<<blocks_for(packs), kThreads, 0, stream>>>(
        static_cast<const Pack<T>*>(gate), static_cast<const Pack<T>*>(up),
        static_cast<Pack<T>*>(out), static_cast<int32_t>(packs));
  } else {
    swiglu_forward<T><<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), n);
  }
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int swiglu_backward_launch(const void* grad, const void* gate, const void* up, void* grad_gate,
                           void* grad_up, int64_t n, cudaStream_t stream) {
  if (n == 0) return 0;
  if (packs_fit<T>(n, {grad, gate, up, grad_gate, grad_up})) {
    const int64_t packs = n / Pack<T>::kSize;
    swiglu_backward_packed<T><<<blocks_for(packs), kThreads, 0, stream>>>(
        static_cast<const Pack<T>*>(grad), static_cast<const Pack<T>*>(gate),
        static_cast<const Pack<T>*>(up), static_cast<Pack<T>*>(grad_gate),
        static_cast<Pack<T>*>(grad_up), static_cast<int32_t>(packs));
  } else {
    swiglu_backward<T><<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<const T*>(grad), static_cast<const T*>(gate), static_cast<const T*>(up),
        static_cast<T*>(grad_gate), static_cast<T*>(grad_up), n);
  }
  return static_cast<int>(cudaGetLastError());
}

// One block per row; enough threads for 8 elements each, within [32, 1024], a multiple of 32.
int row_threads(int64_t dim) {
  int64_t threads = (dim / 8 + 31) / 32 * 32;
  if (threads < 32) threads = 32;
  if (threads > 1024) threads = 1024;
  return static_cast<int>(threads);
}

// Rows whose packs fit one block: the register-held kernels.
template <typename T>
bool rows_as_packs(int64_t dim, std::initializer_list<const void*> pointers) {
  return dim % Pack<T>::kSize == 0 && dim / Pack<T>::kSize <= 1024 && packs_fit<T>(dim, pointers);
}

int pack_threads(int64_t packs) {
  return static_cast<int>(std::max<int64_t>(32, (packs + 31) / 32 * 32));
}

template <typename T>
int rms_norm_forward_launch(const void* x, const void* weight, void* y, float* rstd, int64_t rows,
                            int64_t dim, double eps, cudaStream_t stream) {
  if (rows == 0) return 0;
  if (rows_as_packs<T>(dim, {x, weight, y})) {
    const int64_t packs = dim / Pack<T>::kSize;
    rms_norm_forward_packed<T><<<static_cast<unsigned>(rows), pack_threads(packs), 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<T*>(y), rstd,
        static_cast<int32_t>(packs), static_cast<float>(eps));
  } else {
    rms_norm_forward<T><<<static_cast<unsigned>(rows), row_threads(dim), 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<T*>(y), rstd, dim,
        static_cast<float>(eps));
  }
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int rms_norm_backward_launch(const void* grad, const void* x, const void* weight, const float* rstd,
                             const void* residual_grad, void* grad_x, int64_t rows, int64_t dim,
                             cudaStream_t stream) {
  if (rows == 0) return 0;
  const auto* passed = static_cast<const T*>(residual_grad);
  if (rows_as_packs<T>(dim, {grad, x, weight, grad_x, residual_grad})) {
    const int64_t packs = dim / Pack<T>::kSize;
    rms_norm_backward_packed<T><<<static_cast<unsigned>(rows), pack_threads(packs), 0, stream>>>(
        static_cast<const T*>(grad), static_cast<const T*>(x), static_cast<const T*>(weight), rstd,
        passed, static_cast<T*>(grad_x), static_cast<int32_t>(packs));
  } else {
    rms_norm_backward<T><<<static_cast<unsigned>(rows), row_threads(dim), 0, stream>>>(
        static_cast<const T*>(grad), static_cast<const T*>(x), static_cast<const T*>(weight), rstd,
        passed, static_cast<T*>(grad_x), dim);
  }
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int layer_norm_pair_forward_launch(const void* x, const void* w1, const void* b1, const void* w2,
                                   const void* b2, void* y1, void* y2, float* mean, float* rstd,
                                   int64_t rows, int64_t dim, double eps, cudaStream_t stream) {
  if (rows == 0) return 0;
  if (!rows_as_packs<T>(dim, {x, w1, b1, w2, b2, y1, y2}) || rows >= (int64_t{1} << 31)) {
    return static_cast<int>(cudaErrorInvalidValue);  // the caller checks; never a wrong answer
  }
  const int64_t packs = dim / Pack<T>::kSize;
  layer_norm_pair_forward_packed<T>
      <<<static_cast<unsigned>(rows), pack_threads(packs), 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(w1), static_cast<const T*>(b1),
          static_cast<const T*>(w2), static_cast<const T*>(b2), static_cast<T*>(y1),
          static_cast<T*>(y2), mean, rstd, static_cast<int32_t>(packs), static_cast<float>(eps));
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int layer_norm_pair_backward_launch(const void* dy1, const void* dy2, const void* dres,
                                    const void* x, const void* w1, const void* w2,
                                    const float* mean, const float* rstd, void* grad_x,
                                    int64_t rows, int64_t dim, cudaStream_t stream) {
  if (rows == 0) return 0;
  if (!rows_as_packs<T>(dim, {dy1, dy2, dres != nullptr ? dres : x, x, w1, w2, grad_x}) ||
      rows >= (int64_t{1} << 31)) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  const int64_t packs = dim / Pack<T>::kSize;
  layer_norm_pair_backward_packed<T>
      <<<static_cast<unsigned>(rows), pack_threads(packs), 0, stream>>>(
          static_cast<const T*>(dy1), static_cast<const T*>(dy2), static_cast<const T*>(dres),
          static_cast<const T*>(x), static_cast<const T*>(w1), static_cast<const T*>(w2), mean,
          rstd, static_cast<T*>(grad_x), static_cast<int32_t>(packs));
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int add_three_launch(const void* a, const void* b, const void* c, void* out, int64_t n,
                     cudaStream_t stream) {
  if (n == 0) return 0;
  if (packs_fit<T>(n, {a, b, c, out})) {
    const int64_t packs = n / Pack<T>::kSize;
    add_three_packed<T><<<blocks_for(packs), kThreads, 0, stream>>>(
        static_cast<const Pack<T>*>(a), static_cast<const Pack<T>*>(b),
        static_cast<const Pack<T>*>(c), static_cast<Pack<T>*>(out), static_cast<int32_t>(packs));
  } else {
    add_three<T>
        <<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const T*>(a), static_cast<const T*>(b),
                                                 static_cast<const T*>(c), static_cast<T*>(out), n);
  }
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int rotary_parts_launch(const LlmRotaryParts& parts, int count, int rotated, const int64_t* sizes,
                        const void* cos, const void* sin, const int64_t* positions, int64_t offset,
                        int64_t rotary_dim, int transpose, cudaStream_t stream) {
  constexpr int64_t kSize = Pack<T>::kSize;
  const int64_t dim = sizes[3];
  const int64_t packs = count * sizes[0] * sizes[1] * sizes[2] * (dim / kSize);
  if (packs == 0) return 0;
  bool fits = count >= 1 && count <= 3 && dim % kSize == 0 && rotary_dim % (2 * kSize) == 0 &&
              packs < (int64_t{1} << 31) && aligned16(cos) && aligned16(sin);
  for (int p = 0; p < count && fits; ++p) {
    fits = aligned16(parts.in[p]) && aligned16(parts.out[p]);
    for (int d = 0; d < 3; ++d) {
      fits = fits && parts.in_strides[p][d] % kSize == 0 && parts.out_strides[p][d] % kSize == 0;
    }
  }
  if (!fits) return static_cast<int>(cudaErrorInvalidValue);
  rotary_parts_packed<T><<<blocks_for(packs), kThreads, 0, stream>>>(
      parts, rotated, static_cast<int32_t>(sizes[1]), static_cast<int32_t>(sizes[2]),
      static_cast<int32_t>(sizes[0]), static_cast<int32_t>(dim / kSize), static_cast<const T*>(cos),
      static_cast<const T*>(sin), positions, offset, static_cast<int32_t>(rotary_dim), transpose,
      static_cast<int32_t>(packs));
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int rotary_in_place_launch(void* data, int count, int64_t part_offset, const int64_t* sizes,
                           const int64_t* strides, const void* cos, const void* sin,
                           const int64_t* positions, int64_t offset, int64_t rotary_dim,
                           cudaStream_t stream) {
  constexpr int64_t kSize = Pack<T>::kSize;
  const int64_t half_packs = rotary_dim / 2 / kSize;
  const int64_t packs = count * sizes[0] * sizes[1] * sizes[2] * half_packs;
  if (packs == 0) return 0;
  const bool fits = count >= 1 && sizes[3] % kSize == 0 && rotary_dim % (2 * kSize) == 0 &&
                    rotary_dim <= sizes[3] && part_offset % kSize == 0 && strides[0] % kSize == 0 &&
                    strides[1] % kSize == 0 && strides[2] % kSize == 0 &&
                    packs < (int64_t{1} << 31) && aligned16(data) && aligned16(cos) &&
                    aligned16(sin);
  if (!fits) return static_cast<int>(cudaErrorInvalidValue);
  rotary_in_place_packed<T><<<blocks_for(packs), kThreads, 0, stream>>>(
      static_cast<T*>(data), part_offset, strides[0], strides[1], strides[2],
      static_cast<int32_t>(sizes[1]), static_cast<int32_t>(sizes[2]),
      static_cast<int32_t>(sizes[0]), static_cast<int32_t>(half_packs), sizes[3],
      static_cast<const T*>(cos), static_cast<const T*>(sin), positions, offset,
      static_cast<int32_t>(rotary_dim), static_cast<int32_t>(packs));
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int rotary_launch(const void* x, const int64_t* sizes, const int64_t* strides, const void* cos,
                  const void* sin, const int64_t* positions, int64_t offset, int64_t rotary_dim,
                  int transpose, void* out, cudaStream_t stream) {
  const int64_t n = sizes[0] * sizes[1] * sizes[2] * sizes[3];
  if (n == 0) return 0;
  constexpr int64_t kSize = Pack<T>::kSize;
  const int64_t dim = sizes[3];
  const bool packed = dim % kSize == 0 && rotary_dim % (2 * kSize) == 0 &&
                      strides[0] % kSize == 0 && strides[1] % kSize == 0 &&
                      strides[2] % kSize == 0 && packs_fit<T>(n, {x, cos, sin, out}) &&
                      sizes[1] * sizes[2] < (1 << 30);
  if (packed) {
    const int64_t units = n / kSize - n / dim * (rotary_dim / (2 * kSize));  // a pair is one unit
    // LLMHOST_ROTARY_SHARED_TABLES=0: one head a thread, the tables loaded for each.
    const char* shared = std::getenv("LLMHOST_ROTARY_SHARED_TABLES");
    constexpr int kHeads = 4;
    if (sizes[1] % kHeads == 0 && !(shared != nullptr && shared[0] == '0' && shared[1] == 0)) {
      rotary_packed_heads<T, kHeads><<<blocks_for(units / kHeads), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<int32_t>(sizes[1]), static_cast<int32_t>(sizes[2]),
          static_cast<int32_t>(dim / kSize), strides[0], strides[1], strides[2],
          static_cast<const T*>(cos), static_cast<const T*>(sin), positions, offset,
          static_cast<int32_t>(rotary_dim), transpose, static_cast<Pack<T>*>(out),
          static_cast<int32_t>(units / kHeads));
      return static_cast<int>(cudaGetLastError());
    }
    rotary_packed_heads<T, 1><<<blocks_for(units), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<int32_t>(sizes[1]), static_cast<int32_t>(sizes[2]),
        static_cast<int32_t>(dim / kSize), strides[0], strides[1], strides[2],
        static_cast<const T*>(cos), static_cast<const T*>(sin), positions, offset,
        static_cast<int32_t>(rotary_dim), transpose, static_cast<Pack<T>*>(out),
        static_cast<int32_t>(units));
  } else {
    rotary<T><<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<const T*>(x), sizes[1], sizes[2], dim, strides[0], strides[1], strides[2],
        static_cast<const T*>(cos), static_cast<const T*>(sin), positions, offset, rotary_dim,
        transpose, static_cast<T*>(out), n);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

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
                                          const float* rstd, const void* residual_grad,
                                          void* grad_x, int64_t rows, int64_t dim, int kind,
                                          void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(
      kind, rms_norm_backward_launch<T>(grad, x, weight, rstd, residual_grad, grad_x, rows, dim, s))
}

extern "C" int llm_layer_norm_pair_forward_cuda(const void* x, const void* w1, const void* b1,
                                                const void* w2, const void* b2, void* y1, void* y2,
                                                float* mean, float* rstd, int64_t rows, int64_t dim,
                                                double eps, int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, layer_norm_pair_forward_launch<T>(x, w1, b1, w2, b2, y1, y2, mean, rstd,
                                                            rows, dim, eps, s))
}

extern "C" int llm_layer_norm_pair_backward_cuda(const void* dy1, const void* dy2, const void* dres,
                                                 const void* x, const void* w1, const void* w2,
                                                 const float* mean, const float* rstd, void* grad_x,
                                                 int64_t rows, int64_t dim, int kind,
                                                 void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, layer_norm_pair_backward_launch<T>(dy1, dy2, dres, x, w1, w2, mean, rstd,
                                                             grad_x, rows, dim, s))
}

extern "C" int llm_add_three_cuda(const void* a, const void* b, const void* c, void* out, int64_t n,
                                  int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, add_three_launch<T>(a, b, c, out, n, s))
}

extern "C" int llm_rotary_cuda(const void* x, const int64_t* sizes, const int64_t* x_strides,
                               const void* cos, const void* sin, const int64_t* positions,
                               int64_t offset, int64_t rotary_dim, int transpose, void* out,
                               int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, rotary_launch<T>(x, sizes, x_strides, cos, sin, positions, offset,
                                           rotary_dim, transpose, out, s))
}

extern "C" int llm_rotary_parts_cuda(const LlmRotaryParts* parts, int count, int rotated,
                                     const int64_t* sizes, const void* cos, const void* sin,
                                     const int64_t* positions, int64_t offset, int64_t rotary_dim,
                                     int transpose, int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, rotary_parts_launch<T>(*parts, count, rotated, sizes, cos, sin, positions,
                                                 offset, rotary_dim, transpose, s))
}

extern "C" int llm_rotary_in_place_cuda(void* data, int count, int64_t part_offset,
                                        const int64_t* sizes, const int64_t* strides,
                                        const void* cos, const void* sin, const int64_t* positions,
                                        int64_t offset, int64_t rotary_dim, int kind,
                                        void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, rotary_in_place_launch<T>(data, count, part_offset, sizes, strides, cos,
                                                    sin, positions, offset, rotary_dim, s))
}

extern "C" int llm_gemv_cuda(const void* w, const void* x, const void* bias, void* y, int64_t rows,
                             int64_t cols, int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(kind, gemv_launch<T>(w, x, bias, y, rows, cols, s))
}
