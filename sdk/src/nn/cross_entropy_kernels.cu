// Cross-entropy rows (cross_entropy_cuda_kernels.h): one block per row reads the row's logits
// twice (a running max and sum of exponentials, then the gradient), where LibTorch's operations
// cast the block to fp32 and pass over that copy ~8 times (max, exp, sum, log, gather, subtract,
// exp, scatter, multiply, cast) in ~20 kernels, each a host round of its own.
#include <cmath>
#include <cstdint>

#include "cross_entropy_cuda_kernels.h"
#include "cuda_pack.cuh"

namespace {

constexpr int kRowThreads = 512;

// A running log-sum-exp: the largest value seen and the sum of exp(v - max) over the values seen.
struct MaxSum {
  float max;
  float sum;
};

__device__ inline MaxSum combine(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.max, b.max);
  if (m == -INFINITY) return {m, 0.0f};
  return {m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}

// The row's MaxSum in every thread of the block.
__device__ inline MaxSum block_combine(MaxSum v) {
  __shared__ float maxes[32], sums[32];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    v = combine(v, {__shfl_xor_sync(0xffffffffu, v.max, offset),
                    __shfl_xor_sync(0xffffffffu, v.sum, offset)});
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) maxes[warp] = v.max, sums[warp] = v.sum;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / 32;
    v = lane < warps ? MaxSum{maxes[lane], sums[lane]} : MaxSum{-INFINITY, 0.0f};
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      v = combine(v, {__shfl_xor_sync(0xffffffffu, v.max, offset),
                      __shfl_xor_sync(0xffffffffu, v.sum, offset)});
    }
    if (lane == 0) maxes[0] = v.max, sums[0] = v.sum;
  }
  __syncthreads();
  return {maxes[0], sums[0]};
}

// grad may alias logits: no __restrict__ on either.
template <typename T, bool kPacked>
__global__ void cross_entropy_rows(const T* logits, const int64_t* __restrict__ targets,
                                   int64_t ignore_index, int64_t vocab, float* __restrict__ loss,
                                   T* grad) {
  constexpr int kSize = Pack<T>::kSize;
  const int64_t row = blockIdx.x;
  const T* l = logits + row * vocab;
  const int64_t target = targets[row];
  const bool valid = target != ignore_index && target >= 0 && target < vocab;
  MaxSum ms{-INFINITY, 0.0f};
  if (kPacked) {
    for (int64_t p = threadIdx.x; p < vocab / kSize; p += blockDim.x) {
      const Pack<T> pack = load_pack(l + p * kSize);
      float pack_max = -INFINITY;
#pragma unroll
      for (int e = 0; e < kSize; ++e) pack_max = fmaxf(pack_max, load(pack.v, e));
      const float m = fmaxf(ms.max, pack_max);
      if (m == -INFINITY) continue;
      float s = ms.sum * expf(ms.max - m);
#pragma unroll
      for (int e = 0; e < kSize; ++e) s += expf(load(pack.v, e) - m);
      ms = {m, s};
    }
  } else {
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) ms = combine(ms, {load(l, v), 1.0f});
  }
  // The target's logit is read before the block's last barrier: past it, other warps write the
  // gradient over the logits in place (a race the CPU emulation's schedules found).
  const float target_logit = threadIdx.x == 0 && valid ? load(l, target) : 0.0f;
  ms = block_combine(ms);
  const float lse = ms.max + logf(ms.sum);
  if (threadIdx.x == 0) loss[row] = valid ? lse - target_logit : 0.0f;
  if (grad == nullptr) return;
  T* g = grad + row * vocab;
  if (kPacked) {
    for (int64_t p = threadIdx.x; p < vocab / kSize; p += blockDim.x) {
      const Pack<T> pack = load_pack(l + p * kSize);
      Pack<T> out;
#pragma unroll
      for (int e = 0; e < kSize; ++e) {
        const int64_t v = p * kSize + e;
        const float value = expf(load(pack.v, e) - lse) - (v == target ? 1.0f : 0.0f);
        store(out.v, e, valid ? value : 0.0f);
      }
      store_pack(g + p * kSize, out);
    }
  } else {
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      const float value = expf(load(l, v) - lse) - (v == target ? 1.0f : 0.0f);
      store(g, v, valid ? value : 0.0f);
    }
  }
}

template <typename T>
int cross_entropy_launch(const void* logits, const int64_t* targets, int64_t ignore_index,
                         int64_t rows, int64_t vocab, float* loss, void* grad,
                         cudaStream_t stream) {
  if (rows == 0) return 0;
  if (rows >= (int64_t{1} << 31) || vocab <= 0) return static_cast<int>(cudaErrorInvalidValue);
  const bool packed = vocab % Pack<T>::kSize == 0 && aligned16(logits) && aligned16(grad);
  const auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
        static_cast<const T*>(logits), targets, ignore_index, vocab, loss, static_cast<T*>(grad));
  };
  if (packed) {
    launch(cross_entropy_rows<T, true>);
  } else {
    launch(cross_entropy_rows<T, false>);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

extern "C" int llm_cross_entropy_rows_cuda(const void* logits, const int64_t* targets,
                                           int64_t ignore_index, int64_t rows, int64_t vocab,
                                           float* loss, void* grad, int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  LLM_DISPATCH_KIND(
      kind, cross_entropy_launch<T>(logits, targets, ignore_index, rows, vocab, loss, grad, s))
}
