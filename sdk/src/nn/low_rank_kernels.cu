// The low-rank update's kernels (low_rank_cuda_kernels.h). A LoRA update of rank r <= 64 is a
// stream over its [rows, cols] activations with r multiply-adds per element: each kernel reads or
// writes every activation once, in 16-byte packs, where the LibTorch form casts to fp32, drops, and
// multiplies in separate passes over fp32 copies (~1.6 GB of traffic per adapted 4096 x 4096
// layer and 4k-token step against ~0.3 GB here).
#include <algorithm>
#include <cstdint>

#include "cuda_pack.cuh"
#include "low_rank_cuda_kernels.h"

// At most n registers a thread on Hopper (sm_90), where the compiler has __maxnreg__ (CUDA 12.4).
// Unlike __launch_bounds__, which made ptxas recompute the Philox keys in the loop to reach its
// occupancy (the down pair: 1,480 -> 1,680 instructions a step), it only caps the count. Other
// architectures keep the compiler's choice (on sm_80 the down pair's split variant would spill).
#if defined(__CUDACC_VER_MAJOR__) && __CUDACC_VER_MAJOR__ * 100 + __CUDACC_VER_MINOR__ >= 1204 && \
    defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define LLM_MAX_REGISTERS(n) __maxnreg__(n)
#else
#define LLM_MAX_REGISTERS(n)
#endif

namespace {

struct Dropout {
  const int64_t* seed;  // null: no dropout
  uint32_t threshold;   // keep when the 32-bit draw is below it
  float scale;          // applied to kept elements
  // The keep bits as bytes, one per 8-element pack ([rows, cols / 8]): a drawing kernel records
  // them in `record`, and a kernel given `kept` reads them instead of drawing (null: neither).
  const uint8_t* kept;
  uint8_t* record;
};

// Philox4x32-10 (Salmon et al., SC'11): a counter-based generator, so the draw for element i is a
// pure function of (seed, i) and any kernel regenerates it.
__device__ inline uint4 philox(uint4 c, uint2 k) {
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
    c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k.x += 0x9E3779B9u;
    k.y += 0xBB67AE85u;
  }
  return c;
}

// Bit e set: element first + e is kept (first a multiple of 8, the start of a pack). One Philox
// call gives 128 bits: a 16-bit draw per element, kept below threshold = (1 - p) 2^16.
__device__ inline uint32_t keep_bits(uint64_t seed, uint64_t first, uint32_t threshold) {
  const uint64_t pack = first >> 3;
  const uint4 draw =
      philox(make_uint4(static_cast<uint32_t>(pack), static_cast<uint32_t>(pack >> 32), 0u, 0u),
             make_uint2(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)));
  const uint32_t words[4] = {draw.x, draw.y, draw.z, draw.w};
  uint32_t bits = 0;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const uint32_t sixteen = (words[e / 2] >> (16 * (e % 2))) & 0xFFFFu;
    bits |= static_cast<uint32_t>(sixteen < threshold) << e;
  }
  return bits;
}

// The keep bits of the pack starting at element `first` (a multiple of 8): read where an earlier
// kernel recorded them (the Philox draws are what the kernels that regenerate the mask wait on:
// each ran ~10 us slower at 7b than its twin without dropout, session 16), else drawn and, where
// asked, recorded.
__device__ inline uint32_t pack_keep(const Dropout& d, uint64_t seed, uint64_t first) {
  if (d.kept != nullptr) return d.kept[first >> 3];
  const uint32_t bits = keep_bits(seed, first, d.threshold);
  if (d.record != nullptr) d.record[first >> 3] = static_cast<uint8_t>(bits);
  return bits;
}

__device__ inline uint64_t seed_of(const Dropout& d) {
  return d.seed != nullptr ? static_cast<uint64_t>(*d.seed) : 0;
}

// The 8 elements of a pack as fp32, dropped and scaled as dropout writes them.
template <typename T>
__device__ inline void dropped_pack(const T* x, int64_t first, const Dropout& d, uint64_t seed,
                                    float (&v)[8]) {
  const Pack<T> pack = load_pack(x + first);
  const uint32_t bits = d.seed != nullptr ? pack_keep(d, seed, first) : 0xFFu;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const float value = load(pack.v, e);
    v[e] = d.seed == nullptr ? value : ((bits >> e) & 1u) ? value * d.scale : 0.0f;
  }
}

__device__ inline float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Loads 8 ranks of a [r, cols] fp32 factor at columns c0..c0+7 (zeros past r) as [rank][column].
__device__ inline void load_factor_pack(const float* w, int32_t r, int64_t cols, int64_t c0,
                                        float (&wr)[8][8]) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    if (j < r) {
      const float4* wj = reinterpret_cast<const float4*>(w + j * cols + c0);
      const float4 w0 = wj[0], w1 = wj[1];
      wr[j][0] = w0.x, wr[j][1] = w0.y, wr[j][2] = w0.z, wr[j][3] = w0.w;
      wr[j][4] = w1.x, wr[j][5] = w1.y, wr[j][6] = w1.z, wr[j][7] = w1.w;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) wr[j][e] = 0.0f;
    }
  }
}

// Ranks j0..j0+7 of row n of a [rows, r] fp32 factor (zeros past r).
__device__ inline void load_row_ranks(const float* u, int64_t n, int32_t r, int32_t j0,
                                      float (&uj)[8]) {
  if (r == 8) {  // LoRA's usual rank: two 16-byte loads
    const float4* ur = reinterpret_cast<const float4*>(u + n * 8);
    const float4 u0 = ur[0], u1 = ur[1];
    uj[0] = u0.x, uj[1] = u0.y, uj[2] = u0.z, uj[3] = u0.w;
    uj[4] = u1.x, uj[5] = u1.y, uj[6] = u1.z, uj[7] = u1.w;
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) uj[j] = j0 + j < r ? u[n * r + j0 + j] : 0.0f;
  }
}

// Two warps on 8 rows: of the shapes the session-10 bench tried (2-8 warps, 4-16 rows), the
// fastest up to 4096 columns (7b: 34 -> 28 us against 4 x 8); wider rows (1.4b's 6144-column
// output gradient) go faster on 4 warps x 4 rows (57 -> 47 us).
constexpr int kDownFewWarps = 2, kDownFewRows = 8;
constexpr int kDownWideWarps = 4, kDownWideRows = 4, kDownWidePacks = 512;

// u = scale * dropout(x) w^T for r <= 8: a block's WARPS warps share ROWS rows and split their
// packs. A lane holds w's [8 ranks, 8 columns] block of its pack in registers for all those rows
// (w is re-read from L2 once per ROWS rows: at 4096 columns it is 128 KB). Sums are reduced
// across the warp, then across the warps in a fixed order.
template <typename T, int WARPS = kDownFewWarps, int ROWS = kDownFewRows>
__global__ void low_rank_down_few(const T* __restrict__ x, int32_t rows, int32_t packs,
                                  const float* __restrict__ w, int32_t r, Dropout d, float scale,
                                  float* __restrict__ u) {
  __shared__ float warp_sums[WARPS][ROWS][8];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * ROWS;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const uint64_t seed = seed_of(d);
  float acc[ROWS][8];
#pragma unroll
  for (int i = 0; i < ROWS; ++i) {
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;
  }
  for (int32_t p = warp * 32 + lane; p < packs; p += WARPS * 32) {
    const int64_t c0 = static_cast<int64_t>(p) * 8;
    float wr[8][8];
    load_factor_pack(w, r, cols, c0, wr);
#pragma unroll
    for (int i = 0; i < ROWS; ++i) {
      if (row0 + i < rows) {
        float xv[8];
        dropped_pack(x, (row0 + i) * cols + c0, d, seed, xv);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[i][j] += xv[e] * wr[j][e];
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < ROWS; ++i) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float sum = warp_sum(acc[i][j]);
      if (lane == 0) warp_sums[warp][i][j] = sum;
    }
  }
  __syncthreads();
  const int i = threadIdx.x / 8, j = threadIdx.x % 8;
  if (threadIdx.x < ROWS * 8 && j < r && row0 + i < rows) {
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < WARPS; ++k) sum += warp_sums[k][i][j];
    u[(row0 + i) * r + j] = scale * sum;
  }
}

// u = scale * dropout(x) w^T for bf16 x and r <= 8 on tensor cores (sm_80 and later): each
// 16-row tile of x times the factor's [k, 8] slice as m16n8k16 bf16 products with fp32 sums. The
// fp32 factor goes in as three bf16 parts (hi + mid + lo, each the rounding of what the parts
// before it left), whose products with bf16 x are exact in fp32, so the three products together
// carry the factor's 24 bits where one bf16 product would carry 8. The CUDA-core kernel above
// spends 64 multiply-adds per 16-byte pack of x; here one warp-wide product covers 16 rows x 16
// columns x 8 ranks. A product's k is permuted within 32-column chunks, the same way for x and
// the factor (a lane with k-group t holds columns 8t..8t+7 of the chunk), so each lane reads x
// as whole 16-byte packs, the packs dropout draws its mask for. A block's warps share 16 rows and
// split the columns; their sums are added in a fixed order.
constexpr int kMmaWarps = 8, kMmaUnroll = 4;

__device__ inline uint32_t bf16_pair(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&pair);
}

// v as three bf16 values whose sum carries v's 24 bits: each the rounding of what the parts
// before it left (the subtraction is exact: a part holds the rest's leading bits).
__device__ inline void bf16_parts(float v, float (&parts)[3]) {
#pragma unroll
  for (int part = 0; part < 3; ++part) {
    parts[part] = __bfloat162float(__float2bfloat16_rn(v));
    v -= parts[part];
  }
}

// Three bf16 pairs (hi, mid, lo) of two fp32 values.
__device__ inline void pair_parts(float a, float b, uint32_t (&parts)[3]) {
  float split[2][3];
  bf16_parts(a, split[0]);
  bf16_parts(b, split[1]);
#pragma unroll
  for (int part = 0; part < 3; ++part) parts[part] = bf16_pair(split[0][part], split[1][part]);
}

// The three bf16 parts of 8 fp32 factor values, as the products' b registers: part p, step s,
// register h holds elements 4s + 2h and 4s + 2h + 1.
__device__ inline void factor_parts(const float (&w)[8], uint32_t (&b)[3][2][2]) {
  float parts[8][3];
#pragma unroll
  for (int e = 0; e < 8; ++e) bf16_parts(w[e], parts[e]);
#pragma unroll
  for (int part = 0; part < 3; ++part) {
#pragma unroll
    for (int step = 0; step < 2; ++step) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        b[part][step][h] =
            bf16_pair(parts[4 * step + 2 * h][part], parts[4 * step + 2 * h + 1][part]);
      }
    }
  }
}

__device__ inline void mma_bf16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#elif defined(LLM_CUDA_EMULATION)  // the CPU tests (tests/support/cuda_emulation)
  cuda_emulation::mma_m16n8k16_bf16(c, {a0, a1, a2, a3}, {b0, b1});
#else
  __trap();  // the host launches this kernel on sm_80 and later only
#endif
}

// A 16-bit-element pack (as four pairs) with the elements whose keep bit is clear zeroed.
__device__ inline uint4 kept_elements(uint4 v, uint32_t bits) {
  uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint32_t keep = (((bits >> (2 * j)) & 1u) ? 0x0000FFFFu : 0u) |
                          (((bits >> (2 * j + 1)) & 1u) ? 0xFFFF0000u : 0u);
    words[j] &= keep;
  }
  return make_uint4(words[0], words[1], words[2], words[3]);
}

// x's pack (row, pack p) as four bf16 pairs, the dropped elements zeroed (the keep scale is
// applied to the sums); zeros outside x.
__device__ inline uint4 dropped_bf16_pack(const __nv_bfloat16* x, int32_t rows, int32_t packs,
                                          int64_t row, int32_t p, const Dropout& d, uint64_t seed) {
  if (row >= rows || p >= packs) return make_uint4(0u, 0u, 0u, 0u);
  const int64_t first = row * packs * 8 + static_cast<int64_t>(p) * 8;
  const uint4 v = *reinterpret_cast<const uint4*>(x + first);
  return d.seed != nullptr ? kept_elements(v, pack_keep(d, seed, first)) : v;
}

__global__ void low_rank_down_mma(const __nv_bfloat16* __restrict__ x, int32_t rows, int32_t packs,
                                  const float* __restrict__ w, int32_t r, Dropout d, float scale,
                                  float* __restrict__ u) {
  __shared__ float warp_sums[kMmaWarps][16][8];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t group = lane / 4, k_group = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const int32_t chunks = (packs + 3) / 4;
  const uint64_t seed = seed_of(d);
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int32_t base = warp; base < chunks; base += kMmaWarps * kMmaUnroll) {
    uint4 top[kMmaUnroll], bottom[kMmaUnroll];
    float wv[kMmaUnroll][8];
    // Every load of the unrolled chunks first, so each lane has 8 packs of x in flight.
#pragma unroll
    for (int i = 0; i < kMmaUnroll; ++i) {
      const int32_t p = (base + i * kMmaWarps) * 4 + k_group;
      const bool inside = base + i * kMmaWarps < chunks;
      top[i] = dropped_bf16_pack(x, rows, inside ? packs : 0, row0 + group, p, d, seed);
      bottom[i] = dropped_bf16_pack(x, rows, inside ? packs : 0, row0 + group + 8, p, d, seed);
      const bool rank = group < r && inside && p < packs;
      const float4* wp = reinterpret_cast<const float4*>(w + group * cols + int64_t{p} * 8);
      const float4 w0 = rank ? wp[0] : make_float4(0.f, 0.f, 0.f, 0.f);
      const float4 w1 = rank ? wp[1] : make_float4(0.f, 0.f, 0.f, 0.f);
      wv[i][0] = w0.x, wv[i][1] = w0.y, wv[i][2] = w0.z, wv[i][3] = w0.w;
      wv[i][4] = w1.x, wv[i][5] = w1.y, wv[i][6] = w1.z, wv[i][7] = w1.w;
    }
#pragma unroll
    for (int i = 0; i < kMmaUnroll; ++i) {
      uint32_t b[3][2][2];
      factor_parts(wv[i], b);
      const uint32_t t[4] = {top[i].x, top[i].y, top[i].z, top[i].w};
      const uint32_t m[4] = {bottom[i].x, bottom[i].y, bottom[i].z, bottom[i].w};
#pragma unroll
      for (int step = 0; step < 2; ++step) {
#pragma unroll
        for (int part = 0; part < 3; ++part) {
          mma_bf16(c, t[2 * step], m[2 * step], t[2 * step + 1], m[2 * step + 1], b[part][step][0],
                   b[part][step][1]);
        }
      }
    }
  }
  // c: rows group and group + 8, ranks 2 k_group and 2 k_group + 1.
  warp_sums[warp][group][2 * k_group] = c[0];
  warp_sums[warp][group][2 * k_group + 1] = c[1];
  warp_sums[warp][group + 8][2 * k_group] = c[2];
  warp_sums[warp][group + 8][2 * k_group + 1] = c[3];
  __syncthreads();
  const int i = threadIdx.x / 8, j = threadIdx.x % 8;
  if (threadIdx.x < 128 && j < r && row0 + i < rows) {
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < kMmaWarps; ++k) sum += warp_sums[k][i][j];
    u[(row0 + i) * r + j] = (d.seed != nullptr ? scale * d.scale : scale) * sum;
  }
}

// u[n, j] (a [rows, r] rank product) into u's three-part copy: parts [3, r, rows] bf16 (rows
// even), part p of row n at (p r + j) rows + n, so that two rows of one rank are one 32-bit word:
// a b register of the products that take u (load_rank_row_parts).
__device__ inline void store_rank_row_parts(float value, __nv_bfloat16* parts, int64_t rows,
                                            int32_t r, int64_t n, int32_t j) {
  float split[3];
  bf16_parts(value, split);
#pragma unroll
  for (int p = 0; p < 3; ++p) {
    parts[(int64_t{p} * r + j) * rows + n] = __float2bfloat16_rn(split[p]);
  }
}

// Rows row, row + 1 (b[0]) and row + 8, row + 9 (b[1]) of `rank` from u's three-part copy
// (store_rank_row_parts' layout) as the products' b registers: pair_parts' values of the rows
// load_rank_rows reads, zeros at and past end and for rank >= r. row and end even, so a pair is
// inside or past end whole; parts 4-byte aligned (the launchers check).
__device__ inline void load_rank_row_parts(const __nv_bfloat16* parts, int64_t rows, int64_t row,
                                           int64_t end, int32_t r, int32_t rank,
                                           uint32_t (&b)[2][3]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t n = row + 8 * h;
#pragma unroll
    for (int p = 0; p < 3; ++p) {
      uint32_t v = 0u;
      if (rank < r && n < end) {
        v = *reinterpret_cast<const uint32_t*>(parts + (int64_t{p} * r + rank) * rows + n);
      }
      b[h][p] = v;
    }
  }
}

// The keep masks of a drawn pack (pack_keep's draw, not a recorded one) as four words whose 16-bit
// halves are 0xFFFF where the element is kept: what kept_elements builds from pack_keep's bits,
// here compared two elements an instruction sequence (at_most: threshold - 1 in both halves, so
// threshold >= 1), and recorded as pack_keep's bits where asked. pack_keep then kept_elements
// spend ~47 instructions a pack on the tests, selects and shifts (session 20's count).
__device__ inline void drawn_keep_words(const Dropout& d, uint64_t seed, uint64_t first,
                                        uint32_t at_most, uint32_t (&words)[4]) {
  const uint64_t pack = first >> 3;
  const uint4 draw =
      philox(make_uint4(static_cast<uint32_t>(pack), static_cast<uint32_t>(pack >> 32), 0u, 0u),
             make_uint2(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)));
  words[0] = __vcmpleu2(draw.x, at_most);
  words[1] = __vcmpleu2(draw.y, at_most);
  words[2] = __vcmpleu2(draw.z, at_most);
  words[3] = __vcmpleu2(draw.w, at_most);
  if (d.record != nullptr) {
    // Elements 0-3 and 4-7 as bytes (0xFF: kept), each four bytes' low bits gathered by one
    // multiply: byte i's bit lands on bit 24 + i, and no two terms meet there.
    const uint32_t low = __byte_perm(words[0], words[1], 0x6420u) & 0x01010101u;
    const uint32_t high = __byte_perm(words[2], words[3], 0x6420u) & 0x01010101u;
    d.record[pack] =
        static_cast<uint8_t>(((low * 0x01020408u) >> 24) | ((high * 0x01020408u) >> 20));
  }
}

// Two updates' downs over one x (q's and v's in forward): low_rank_down_mma reads x once for each
// (2 x ~25 us a layer in the step at 7b). Here one pass loads each pack of x once and forms both
// parts' sums, each with its own mask (drawn, or read, and recorded as pack_keep does) and
// factor, in low_rank_down_mma's order: a warp's chunks in the same sequence (the unroll only
// groups the loads), the warps' sums added in the same order. The default since session 19
// (51.1 -> 48.7 us at 7b; LLMHOST_LOW_RANK_DOWN_PAIR=0 keeps two launches).
//
// kSplitAhead: the same sums and masks with fewer instructions an element. Each lane split its
// factor slice into three bf16 parts for every 16 rows (a fifth of the loop's ~1,480 instructions
// at 7b); here split_factor_parts has split both factors once, and a lane loads its b registers
// as three 16-byte packs. Masks are always drawn here, by drawn_keep_words (a quarter of the loop
// went to pack_keep's and kept_elements' per-element tests). Each u is also written as its three
// bf16 parts where u_parts is given ([3, r, rows], rows even), so that backward's kernels load
// them instead of splitting u again in every block (load_rank_row_parts). Opt-in
// (LLMHOST_LOW_RANK_SPLIT_ONCE=1) until a device has timed it.
constexpr int kMmaPairUnroll = 2;

template <bool kSplitAhead>
__global__ void LLM_MAX_REGISTERS(128)
    low_rank_down_mma_pair(const __nv_bfloat16* __restrict__ x, int32_t rows, int32_t packs,
                           const float* __restrict__ w0, const float* __restrict__ w1,
                           const uint4* __restrict__ split_parts, int32_t r, Dropout d0, Dropout d1,
                           float scale, float* __restrict__ u0, float* __restrict__ u1,
                           __nv_bfloat16* __restrict__ u_parts0,
                           __nv_bfloat16* __restrict__ u_parts1) {
  __shared__ float warp_sums[2][kMmaWarps][16][8];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t group = lane / 4, k_group = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const int32_t chunks = (packs + 3) / 4;
  const Dropout ds[2] = {d0, d1};
  const float* ws[2] = {w0, w1};
  const uint64_t seeds[2] = {seed_of(d0), seed_of(d1)};
  const uint32_t at_most[2] = {(d0.threshold - 1u) * 0x00010001u,
                               (d1.threshold - 1u) * 0x00010001u};
  float c[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
  for (int32_t base = warp; base < chunks; base += kMmaWarps * kMmaPairUnroll) {
    uint4 top[kMmaPairUnroll], bottom[kMmaPairUnroll];
#pragma unroll
    for (int i = 0; i < kMmaPairUnroll; ++i) {
      const int32_t p = (base + i * kMmaWarps) * 4 + k_group;
      const bool inside = base + i * kMmaWarps < chunks;
      const Dropout none{nullptr, 0, 1.0f, nullptr, nullptr};
      top[i] = dropped_bf16_pack(x, rows, inside ? packs : 0, row0 + group, p, none, 0);
      bottom[i] = dropped_bf16_pack(x, rows, inside ? packs : 0, row0 + group + 8, p, none, 0);
    }
#pragma unroll
    for (int i = 0; i < kMmaPairUnroll; ++i) {
      const int32_t p = (base + i * kMmaWarps) * 4 + k_group;
      const bool inside = base + i * kMmaWarps < chunks && p < packs;
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        // This part's mask on the shared packs (as dropped_bf16_pack applies it).
        uint4 kept_top = top[i], kept_bottom = bottom[i];
        if (ds[k].seed != nullptr && inside) {
          const int64_t top_first = (row0 + group) * cols + int64_t{p} * 8;
          const int64_t bottom_first = (row0 + group + 8) * cols + int64_t{p} * 8;
          if (kSplitAhead) {
            uint32_t keep[4];
            if (row0 + group < rows) {
              drawn_keep_words(ds[k], seeds[k], top_first, at_most[k], keep);
              kept_top = make_uint4(kept_top.x & keep[0], kept_top.y & keep[1],
                                    kept_top.z & keep[2], kept_top.w & keep[3]);
            }
            if (row0 + group + 8 < rows) {
              drawn_keep_words(ds[k], seeds[k], bottom_first, at_most[k], keep);
              kept_bottom = make_uint4(kept_bottom.x & keep[0], kept_bottom.y & keep[1],
                                       kept_bottom.z & keep[2], kept_bottom.w & keep[3]);
            }
          } else {
            if (row0 + group < rows) {
              kept_top = kept_elements(kept_top, pack_keep(ds[k], seeds[k], top_first));
            }
            if (row0 + group + 8 < rows) {
              kept_bottom = kept_elements(kept_bottom, pack_keep(ds[k], seeds[k], bottom_first));
            }
          }
        }
        const uint32_t t[4] = {kept_top.x, kept_top.y, kept_top.z, kept_top.w};
        const uint32_t m[4] = {kept_bottom.x, kept_bottom.y, kept_bottom.z, kept_bottom.w};
        const bool rank = group < r && inside;
        uint32_t b[3][2][2];
        if (kSplitAhead) {
          // Factor k's three parts at rank `group`, pack p: split_factor_parts' [2, 3, r, packs].
          const uint4* parts = split_parts + (int64_t{k} * 3 * r + group) * packs + p;
#pragma unroll
          for (int part = 0; part < 3; ++part) {
            const uint4 v = rank ? parts[int64_t{part} * r * packs] : make_uint4(0u, 0u, 0u, 0u);
            b[part][0][0] = v.x, b[part][0][1] = v.y, b[part][1][0] = v.z, b[part][1][1] = v.w;
          }
        } else {
          const float4* wp = reinterpret_cast<const float4*>(ws[k] + group * cols + int64_t{p} * 8);
          const float4 wa = rank ? wp[0] : make_float4(0.f, 0.f, 0.f, 0.f);
          const float4 wb = rank ? wp[1] : make_float4(0.f, 0.f, 0.f, 0.f);
          const float wv[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
          factor_parts(wv, b);
        }
#pragma unroll
        for (int step = 0; step < 2; ++step) {
#pragma unroll
          for (int part = 0; part < 3; ++part) {
            mma_bf16(c[k], t[2 * step], m[2 * step], t[2 * step + 1], m[2 * step + 1],
                     b[part][step][0], b[part][step][1]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    warp_sums[k][warp][group][2 * k_group] = c[k][0];
    warp_sums[k][warp][group][2 * k_group + 1] = c[k][1];
    warp_sums[k][warp][group + 8][2 * k_group] = c[k][2];
    warp_sums[k][warp][group + 8][2 * k_group + 1] = c[k][3];
  }
  __syncthreads();
  const int k = threadIdx.x / 128, i = (threadIdx.x % 128) / 8, j = threadIdx.x % 8;
  if (j < r && row0 + i < rows) {
    float sum = 0.0f;
#pragma unroll
    for (int q = 0; q < kMmaWarps; ++q) sum += warp_sums[k][q][i][j];
    const float value = (k == 0 ? (d0.seed != nullptr ? scale * d0.scale : scale)
                                : (d1.seed != nullptr ? scale * d1.scale : scale)) *
                        sum;
    (k == 0 ? u0 : u1)[(row0 + i) * r + j] = value;
    __nv_bfloat16* parts = k == 0 ? u_parts0 : u_parts1;
    if (kSplitAhead && parts != nullptr) store_rank_row_parts(value, parts, rows, r, row0 + i, j);
  }
}

// Both [r, cols] factors of a down pair as split_factor_parts' [2, 3, r, cols / 8] packs: pack
// (k, part, j, p) holds part `part` of factor k's row j, columns 8p..8p+7, as factor_parts gives
// them (b registers [step][h] in order), one thread a pack.
__global__ void split_factor_parts(const float* __restrict__ w0, const float* __restrict__ w1,
                                   int32_t r, int32_t packs, uint4* __restrict__ parts) {
  const int64_t per_factor = int64_t{r} * packs;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= 2 * per_factor) return;
  const int64_t k = i / per_factor, row_pack = i % per_factor;
  const float4* w = reinterpret_cast<const float4*>((k == 0 ? w0 : w1) + row_pack * 8);
  const float4 wa = w[0], wb = w[1];
  const float wv[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
  uint32_t b[3][2][2];
  factor_parts(wv, b);
#pragma unroll
  for (int part = 0; part < 3; ++part) {
    parts[(k * 3 + part) * per_factor + row_pack] =
        make_uint4(b[part][0][0], b[part][0][1], b[part][1][0], b[part][1][1]);
  }
}

constexpr int kDownWarps = 8;

// u = scale * dropout(x) w^T for 8 < r <= R: each warp takes ROWS rows, lanes stride over their
// packs, and every w load serves ROWS rows; the r sums of a row are reduced across the warp.
template <typename T, int R, int ROWS>
__global__ void low_rank_down(const T* __restrict__ x, int32_t rows, int32_t packs,
                              const float* __restrict__ w, int32_t r, Dropout d, float scale,
                              float* __restrict__ u) {
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * kDownWarps + warp) * ROWS;
  if (row0 >= rows) return;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const uint64_t seed = seed_of(d);
  float acc[ROWS][R];
#pragma unroll
  for (int i = 0; i < ROWS; ++i) {
#pragma unroll
    for (int j = 0; j < R; ++j) acc[i][j] = 0.0f;
  }
  for (int32_t p = lane; p < packs; p += 32) {
    float xv[ROWS][8];
#pragma unroll
    for (int i = 0; i < ROWS; ++i) {
      if (row0 + i < rows) {
        dropped_pack(x, (row0 + i) * cols + static_cast<int64_t>(p) * 8, d, seed, xv[i]);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) xv[i][e] = 0.0f;
      }
    }
#pragma unroll
    for (int j = 0; j < R; ++j) {
      if (j < r) {
        const float4* wj =
            reinterpret_cast<const float4*>(w + j * cols + static_cast<int64_t>(p) * 8);
        const float4 w0 = wj[0], w1 = wj[1];
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
          acc[i][j] += xv[i][0] * w0.x + xv[i][1] * w0.y + xv[i][2] * w0.z + xv[i][3] * w0.w +
                       xv[i][4] * w1.x + xv[i][5] * w1.y + xv[i][6] * w1.z + xv[i][7] * w1.w;
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < ROWS; ++i) {
#pragma unroll
    for (int j = 0; j < R; ++j) {
      if (j < r) {
        const float sum = warp_sum(acc[i][j]);
        if (lane == 0 && row0 + i < rows) u[(row0 + i) * r + j] = scale * sum;
      }
    }
  }
}

// out = y + dropout(scale * u w^T), w [r, cols], for 8 < r <= 64: each thread takes one pack of
// 8 columns over `row_count` rows and re-reads w's block (from L1) per row, 8 ranks at a time
// (r <= 8: low_rank_up_few). w's rows are read as 16-byte packs, so a warp's load of one rank is
// 512 contiguous bytes: with w as [cols, r] each lane read its own 256-byte span one float at a
// time, 32 cache lines per load instruction, and those loads took most of the kernel's time.
template <typename T>
__global__ void low_rank_up(const T* __restrict__ y, const float* __restrict__ u,
                            const float* __restrict__ w, int32_t rows, int32_t packs, int32_t r,
                            int32_t row_count, Dropout d, float scale, T* __restrict__ out) {
  const int64_t id = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t c0 = (id % packs) * 8;
  const int64_t row0 = (id / packs) * row_count;
  if (row0 >= rows) return;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const int64_t row_end = row0 + row_count < rows ? row0 + row_count : rows;
  const uint64_t seed = seed_of(d);
#pragma unroll 4
  for (int64_t row = row0; row < row_end; ++row) {
    float acc[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[e] = 0.0f;
    for (int32_t j0 = 0; j0 < r; j0 += 8) {
      float wr[8][8], uj[8];  // [rank, column], [rank]
      load_factor_pack(w + j0 * cols, r - j0, cols, c0, wr);
      load_row_ranks(u, row, r, j0, uj);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[e] += uj[j] * wr[j][e];
      }
    }
    const int64_t first = row * cols + c0;
    const uint32_t bits = d.seed != nullptr ? pack_keep(d, seed, first) : 0xFFu;
    Pack<T> base{};
    if (y != nullptr) base = load_pack(y + first);
    Pack<T> result;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float v = scale * acc[e];
      if (d.seed != nullptr) v = ((bits >> e) & 1u) ? v * d.scale : 0.0f;
      store(result.v, e, (y != nullptr ? load(base.v, e) : 0.0f) + v);
    }
    store_pack(out + first, result);
  }
}

constexpr int kUpBatch = 2;

// One pack of the update for r <= 8: v[e] = dropout(scale * sum_j u[j] w[j][e]), `bits` the pack's
// keep bits (pack_keep).
__device__ inline void update_pack(const float (&uj)[8], const float (&wr)[8][8], float scale,
                                   const Dropout& d, uint32_t bits, float (&v)[8]) {
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) sum += uj[j] * wr[j][e];
    sum *= scale;
    v[e] = d.seed == nullptr ? sum : ((bits >> e) & 1u) ? sum * d.scale : 0.0f;
  }
}

// out = y + dropout(scale * u w^T) for r <= 8, as low_rank_up with w's block in registers, but the
// rows go BATCH at a time: their y packs and u rows are all loaded before any is used, so each
// thread has BATCH loads in flight, not one. One row at a time the kernel moved 1-1.9 TB/s of the
// ~4 a copy reaches (bench/low_rank_kernels_bench.cu, session 10): too few bytes in flight. Two
// rows fit two 256-thread blocks an SM without spilling; four spill.
template <typename T, int BATCH = kUpBatch>
__global__ void __launch_bounds__(256, 2)
    low_rank_up_few(const T* __restrict__ y, const float* __restrict__ u,
                    const float* __restrict__ w, int32_t rows, int32_t packs, int32_t r,
                    int32_t row_count, Dropout d, float scale, T* __restrict__ out) {
  const int64_t id = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t c0 = (id % packs) * 8;
  const int64_t row0 = (id / packs) * row_count;
  if (row0 >= rows) return;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const int64_t row_end = row0 + row_count < rows ? row0 + row_count : rows;
  const uint64_t seed = seed_of(d);
  float wr[8][8];  // [rank, column]
  load_factor_pack(w, r, cols, c0, wr);
  for (int64_t batch = row0; batch < row_end; batch += BATCH) {
    Pack<T> base[BATCH];
    float uj[BATCH][8];
#pragma unroll
    for (int k = 0; k < BATCH; ++k) {
      const int64_t row = batch + k < row_end ? batch + k : row_end - 1;  // loads stay in range
      if (y != nullptr) base[k] = load_pack(y + row * cols + c0);
      load_row_ranks(u, row, r, 0, uj[k]);
    }
#pragma unroll
    for (int k = 0; k < BATCH; ++k) {
      const int64_t row = batch + k;
      if (row >= row_end) break;
      const int64_t first = row * cols + c0;
      const uint32_t bits = d.seed != nullptr ? pack_keep(d, seed, first) : 0xFFu;
      float v[8];
      update_pack(uj[k], wr, scale, d, bits, v);
      Pack<T> result;
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        store(result.v, e, (y != nullptr ? load(base[k].v, e) : 0.0f) + v[e]);
      }
      store_pack(out + first, result);
    }
  }
}

// low_rank_up_staged's blocks: 8 warps on the same 32 packs (256 columns), each warp over its own
// run of up to 16 rows.
constexpr int kUpStagedWarps = 8, kUpStagedMaxRows = 16;
constexpr int kUpTileRows = kUpStagedWarps * kUpStagedMaxRows;
constexpr int kUpThreads = kUpStagedWarps * 32;

// Rows [row0, row0 + count) of u [rows, r] (r <= 8, count <= kUpTileRows) into tile[count][8],
// zeros past r and past the rows, in two steps: each thread first issues all its loads (one L2
// round trip for the tile, where a loop storing each value as it came waited for one per value),
// then stores them, so a kernel can run other work between the two.
constexpr int kUpStagePerThread = kUpTileRows * 8 / kUpThreads;

__device__ inline void load_u_rows(const float* u, int64_t rows, int32_t r, int64_t row0,
                                   int64_t count, float (&v)[kUpStagePerThread]) {
#pragma unroll
  for (int t = 0; t < kUpStagePerThread; ++t) {
    const int64_t i = threadIdx.x + t * kUpThreads, row = row0 + i / 8;
    const int32_t j = static_cast<int32_t>(i % 8);
    v[t] = i < count * 8 && row < rows && j < r ? u[row * r + j] : 0.0f;
  }
}

__device__ inline void store_u_rows(const float (&v)[kUpStagePerThread], int64_t count,
                                    float (*tile)[8]) {
#pragma unroll
  for (int t = 0; t < kUpStagePerThread; ++t) {
    const int64_t i = threadIdx.x + t * kUpThreads;
    if (i < count * 8) tile[i / 8][i % 8] = v[t];
  }
}

__device__ inline void stage_u_rows(const float* u, int64_t rows, int32_t r, int64_t row0,
                                    int64_t count, float (*tile)[8]) {
  float v[kUpStagePerThread];
  load_u_rows(u, rows, r, row0, count, v);
  store_u_rows(v, count, tile);
}

// The recorded keep bytes of rows [row0, row0 + count) and packs [pack0, pack0 + 32) of a
// [rows, packs] mask into tile[count][32] (zeros outside), loaded and stored in two steps as the
// u rows are: as 32-bit words where the 32 packs are whole and aligned (keep_words_fit), else by
// stage_keep_bytes as bytes.
__device__ inline bool keep_words_fit(const uint8_t* kept, int32_t packs, int32_t pack0) {
  return pack0 + 32 <= packs && packs % 4 == 0 && (reinterpret_cast<uintptr_t>(kept) & 3u) == 0;
}

__device__ inline void load_keep_words(const uint8_t* kept, int64_t rows, int32_t packs,
                                       int64_t row0, int64_t count, int32_t pack0,
                                       uint32_t (&v)[kUpStagePerThread]) {
#pragma unroll
  for (int t = 0; t < kUpStagePerThread; ++t) {
    const int64_t i = threadIdx.x + t * kUpThreads, row = row0 + i / 8;
    v[t] = i < count * 8 && row < rows
               ? *reinterpret_cast<const uint32_t*>(kept + row * packs + pack0 + 4 * (i % 8))
               : 0u;
  }
}

__device__ inline void store_keep_words(const uint32_t (&v)[kUpStagePerThread], int64_t count,
                                        uint8_t (*tile)[32]) {
#pragma unroll
  for (int t = 0; t < kUpStagePerThread; ++t) {
    const int64_t i = threadIdx.x + t * kUpThreads;
    if (i < count * 8) reinterpret_cast<uint32_t*>(tile[i / 8])[i % 8] = v[t];
  }
}

__device__ inline void stage_keep_bytes(const uint8_t* kept, int64_t rows, int32_t packs,
                                        int64_t row0, int64_t count, int32_t pack0,
                                        uint8_t (*tile)[32]) {
  if (keep_words_fit(kept, packs, pack0)) {
    uint32_t v[kUpStagePerThread];
    load_keep_words(kept, rows, packs, row0, count, pack0, v);
    store_keep_words(v, count, tile);
    return;
  }
  constexpr int kPerThread = kUpTileRows * 32 / kUpThreads;
  uint8_t v[kPerThread];
#pragma unroll
  for (int t = 0; t < kPerThread; ++t) {
    const int64_t i = threadIdx.x + t * kUpThreads, row = row0 + i / 32;
    const int32_t pack = pack0 + static_cast<int32_t>(i % 32);
    v[t] = i < count * 32 && row < rows && pack < packs ? kept[row * packs + pack] : 0;
  }
#pragma unroll
  for (int t = 0; t < kPerThread; ++t) {
    const int64_t i = threadIdx.x + t * kUpThreads;
    if (i < count * 32) tile[i / 32][i % 32] = v[t];
  }
}

// The keep bits of a lane's pack in a staged row: from the staged bytes where the mask was
// recorded, else drawn (pack_keep); all kept without dropout.
__device__ inline uint32_t staged_keep(const Dropout& d, uint64_t seed, const uint8_t* row_bytes,
                                       int32_t lane, int64_t first) {
  if (d.seed == nullptr) return 0xFFu;
  return d.kept != nullptr ? row_bytes[lane] : keep_bits(seed, first, d.threshold);
}

// out = dropout(scale * u w) for r <= 8, the sums as low_rank_up_few forms them, with the u rows
// (and a recorded mask's bytes) of the whole block staged in shared memory first.
// low_rank_up_few loads each row's u from global memory as it comes to it: an L2 round trip on
// every row's critical path. The block's warps also read the same [8, 256] slice of w, so it
// comes from L2 once a block, not once a thread. Where the update is written on its own (the
// product adds itself afterwards) this is faster (session 16's bench at 7b: 19.0 -> 16.3 us
// forward, 30.3 -> 26.9 backward); onto a y, low_rank_up_few's batched y loads are (28.8 against
// 30.1 us), so the launcher keeps that kernel there.
template <typename T>
__global__ void __launch_bounds__(kUpThreads, 2)
    low_rank_up_staged(const float* __restrict__ u, const float* __restrict__ w, int32_t rows,
                       int32_t packs, int32_t r, int32_t row_count, Dropout d, float scale,
                       T* __restrict__ out) {
  __shared__ __align__(16) float u_tile[kUpTileRows][8];
  __shared__ __align__(16) uint8_t kept_tile[kUpTileRows][32];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t pack0 = static_cast<int32_t>(blockIdx.x) * 32, p = pack0 + lane;
  const int64_t cols = static_cast<int64_t>(packs) * 8, c0 = static_cast<int64_t>(p) * 8;
  const int64_t block_rows = static_cast<int64_t>(kUpStagedWarps) * row_count;
  const int64_t groups = (rows + block_rows - 1) / block_rows;
  const uint64_t seed = seed_of(d);
  const bool staged_mask = d.seed != nullptr && d.kept != nullptr;
  float wr[8][8];  // [rank, column]
  if (p < packs) load_factor_pack(w, r, cols, c0, wr);
  for (int64_t group = blockIdx.y; group < groups; group += gridDim.y) {
    const int64_t block_row0 = group * block_rows;
    __syncthreads();  // the previous group's rows have been read from the tiles
    stage_u_rows(u, rows, r, block_row0, block_rows, u_tile);
    if (staged_mask) {
      stage_keep_bytes(d.kept, rows, packs, block_row0, block_rows, pack0, kept_tile);
    }
    __syncthreads();
    if (p >= packs) continue;
    const int64_t row0 = block_row0 + static_cast<int64_t>(warp) * row_count;
    const int64_t row_end = row0 + row_count < rows ? row0 + row_count : rows;
    for (int64_t row = row0; row < row_end; ++row) {
      const float4* staged = reinterpret_cast<const float4*>(u_tile[row - block_row0]);
      const float4 u0 = staged[0], u1 = staged[1];
      const float uj[8] = {u0.x, u0.y, u0.z, u0.w, u1.x, u1.y, u1.z, u1.w};
      const int64_t first = row * cols + c0;
      const uint32_t bits = staged_keep(d, seed, kept_tile[row - block_row0], lane, first);
      float v[8];
      update_pack(uj, wr, scale, d, bits, v);
      Pack<T> result;
#pragma unroll
      for (int e = 0; e < 8; ++e) store(result.v, e, v[e]);
      store_pack(out + first, result);
    }
  }
}

// One of the two updates low_rank_up_pair writes together.
struct UpdatePart {
  const float* u;  // [rows, r]
  const float* w;  // [r, cols]
  int32_t r;
  Dropout d;
  float scale;
};

// out = dropout_1(scale_1 u_1 w_1) + dropout_2(scale_2 u_2 w_2) for r_1, r_2 <= 8: x's gradient
// through two updates of one input (q's and v's) in one pass, each part's sums as
// low_rank_up_staged forms them, added in fp32 and written once. Writing the first and adding the
// second in place read the 33.5 MB back and wrote them again (7b: 24 + 44 us a call in the step,
// session 16). Session 16's first pair kernel drew both masks with Philox and was bound by those
// draws (79.5 us in the step); here the masks recorded by forward's down are staged with the u
// rows, so a row costs two [8 x 8] sums, two selects and one 16-byte store. Both factors' blocks
// stay in registers, so one 8-warp block fits an SM: nothing else there hides a block's staging,
// so each block walks several row groups (grid.y of them apart) and loads the next group's u rows
// and mask bytes before it works on this one's (session 17's bench at 7b: 65 us with one group a
// block and its stores waiting on each load, 40 with the loads batched).
template <typename T>
__global__ void __launch_bounds__(kUpThreads, 1)
    low_rank_up_pair(UpdatePart first, UpdatePart second, int32_t rows, int32_t packs,
                     int32_t row_count, T* __restrict__ out) {
  __shared__ __align__(16) float u_tile[2][2][kUpTileRows][8];        // [buffer][part]
  __shared__ __align__(16) uint8_t kept_tile[2][2][kUpTileRows][32];  // [buffer][part]
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t pack0 = static_cast<int32_t>(blockIdx.x) * 32, p = pack0 + lane;
  const int64_t cols = static_cast<int64_t>(packs) * 8, c0 = static_cast<int64_t>(p) * 8;
  const int64_t block_rows = static_cast<int64_t>(kUpStagedWarps) * row_count;
  const int64_t groups = (rows + block_rows - 1) / block_rows;
  const UpdatePart parts[2] = {first, second};
  const uint64_t seeds[2] = {seed_of(first.d), seed_of(second.d)};
  bool staged[2], words[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    staged[k] = parts[k].d.seed != nullptr && parts[k].d.kept != nullptr;
    words[k] = staged[k] && keep_words_fit(parts[k].d.kept, packs, pack0);
  }
  // The group's u rows and mask bytes into tile buffer b: the words' loads are issued here and
  // stored by store_group after the caller's work; byte-wise masks are staged at once.
  float next_u[2][kUpStagePerThread];
  uint32_t next_kept[2][kUpStagePerThread];
  const auto load_group = [&](int64_t group, int b) {
    const int64_t row0 = group * block_rows;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      load_u_rows(parts[k].u, rows, parts[k].r, row0, block_rows, next_u[k]);
      if (words[k]) {
        load_keep_words(parts[k].d.kept, rows, packs, row0, block_rows, pack0, next_kept[k]);
      } else if (staged[k]) {
        stage_keep_bytes(parts[k].d.kept, rows, packs, row0, block_rows, pack0, kept_tile[b][k]);
      }
    }
  };
  const auto store_group = [&](int b) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      store_u_rows(next_u[k], block_rows, u_tile[b][k]);
      if (words[k]) store_keep_words(next_kept[k], block_rows, kept_tile[b][k]);
    }
  };
  float wr[2][8][8];  // [part][rank][column]
  if (p < packs) {
#pragma unroll
    for (int k = 0; k < 2; ++k) load_factor_pack(parts[k].w, parts[k].r, cols, c0, wr[k]);
  }
  int b = 0;
  if (blockIdx.y < groups) {
    load_group(blockIdx.y, 0);
    store_group(0);
  }
  __syncthreads();
  for (int64_t group = blockIdx.y; group < groups; group += gridDim.y, b ^= 1) {
    const int64_t following = group + gridDim.y;
    if (following < groups) load_group(following, b ^ 1);
    const int64_t block_row0 = group * block_rows;
    const int64_t row0 = block_row0 + static_cast<int64_t>(warp) * row_count;
    const int64_t row_end = row0 + row_count < rows ? row0 + row_count : rows;
    for (int64_t row = p < packs ? row0 : row_end; row < row_end; ++row) {
      const int64_t first_element = row * cols + c0;
      float v[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const float4* staged_u = reinterpret_cast<const float4*>(u_tile[b][k][row - block_row0]);
        const float4 u0 = staged_u[0], u1 = staged_u[1];
        const float uj[8] = {u0.x, u0.y, u0.z, u0.w, u1.x, u1.y, u1.z, u1.w};
        const uint32_t bits = staged_keep(parts[k].d, seeds[k], kept_tile[b][k][row - block_row0],
                                          lane, first_element);
        float part[8];
        update_pack(uj, wr[k], parts[k].scale, parts[k].d, bits, part);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] += part[e];
      }
      Pack<T> result;
#pragma unroll
      for (int e = 0; e < 8; ++e) store(result.v, e, v[e]);
      store_pack(out + first_element, result);
    }
    if (following < groups) store_group(b ^ 1);
    __syncthreads();  // the next buffer is written, and this one read before it is refilled
  }
}

// Four 16-bit elements stored as one 8-byte word.
template <typename T>
struct alignas(8) Quad {
  T v[4];
};

// low_rank_up_pair's sums in its order, but each lane takes 4 columns, not 8, so both factors'
// blocks take 64 registers, not 128, and two 8-warp blocks fit an SM where low_rank_up_pair fits
// one (7b: 39 us alone, 50 a call in the step; session 17). A block covers 128 columns (16 packs)
// and one row group, as low_rank_up_staged; recorded masks only, staged as 4 words a row, so
// packs % 16 == 0 (the launcher checks); 8-byte stores. The default since session 19 (38.9 -> 30.0
// us at 7b; LLMHOST_LOW_RANK_UP_PAIR_NARROW=0 keeps low_rank_up_pair).
template <typename T>
__global__ void __launch_bounds__(kUpThreads, 2)
    low_rank_up_pair_narrow(UpdatePart first, UpdatePart second, int32_t rows, int32_t packs,
                            int32_t row_count, T* __restrict__ out) {
  __shared__ __align__(16) float u_tile[2][kUpTileRows][8];
  __shared__ __align__(16) uint8_t kept_tile[2][kUpTileRows][16];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const int32_t pack0 = static_cast<int32_t>(blockIdx.x) * 16;
  const int64_t c0 = static_cast<int64_t>(pack0) * 8 + lane * 4;
  const int32_t shift = (lane % 2) * 4;
  const int64_t block_rows = static_cast<int64_t>(kUpStagedWarps) * row_count;
  const int64_t block_row0 = static_cast<int64_t>(blockIdx.y) * block_rows;
  const UpdatePart parts[2] = {first, second};
  float wr[2][8][4];
  if (c0 < cols) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float4 w4 = j < parts[k].r
                              ? *reinterpret_cast<const float4*>(parts[k].w + j * cols + c0)
                              : make_float4(0.f, 0.f, 0.f, 0.f);
        wr[k][j][0] = w4.x, wr[k][j][1] = w4.y, wr[k][j][2] = w4.z, wr[k][j][3] = w4.w;
      }
    }
  }
  float us[2][kUpStagePerThread];
  uint32_t words[2][2];  // 128 rows x 4 words / 256 threads
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    load_u_rows(parts[k].u, rows, parts[k].r, block_row0, block_rows, us[k]);
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int64_t i = threadIdx.x + t * kUpThreads, row = block_row0 + i / 4;
      words[k][t] = i < block_rows * 4 && row < rows
                        ? *reinterpret_cast<const uint32_t*>(parts[k].d.kept + row * packs + pack0 +
                                                             4 * (i % 4))
                        : 0u;
    }
  }
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    store_u_rows(us[k], block_rows, u_tile[k]);
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int64_t i = threadIdx.x + t * kUpThreads;
      if (i < block_rows * 4) reinterpret_cast<uint32_t*>(kept_tile[k][i / 4])[i % 4] = words[k][t];
    }
  }
  __syncthreads();
  if (c0 >= cols) return;
  const int64_t row0 = block_row0 + static_cast<int64_t>(warp) * row_count;
  const int64_t row_end = row0 + row_count < rows ? row0 + row_count : rows;
  for (int64_t row = row0; row < row_end; ++row) {
    float v[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const float4* staged = reinterpret_cast<const float4*>(u_tile[k][row - block_row0]);
      const float4 u0 = staged[0], u1 = staged[1];
      const float uj[8] = {u0.x, u0.y, u0.z, u0.w, u1.x, u1.y, u1.z, u1.w};
      const uint32_t bits = kept_tile[k][row - block_row0][lane / 2] >> shift;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) sum += uj[j] * wr[k][j][e];
        sum *= parts[k].scale;
        v[e] += ((bits >> e) & 1u) ? sum * parts[k].d.scale : 0.0f;
      }
    }
    Quad<T> result;
#pragma unroll
    for (int e = 0; e < 4; ++e) store(result.v, e, v[e]);
    *reinterpret_cast<Quad<T>*>(out + row * cols + c0) = result;
  }
}

// out = y + dropout(scale * u w) for bf16 and r <= 8 on tensor cores (sm_80 and later): the
// CUDA-core form spends 64 multiply-adds and the factor's 64 registers on each 16-byte pack, which
// leaves it bound by its arithmetic once it no longer reads y (7b: 29 us a call for 33.5 MB
// written, session 15). Here a warp holds 32 columns of the factor as products' b operands and
// walks 16-row tiles of u: three m16n8k16 bf16 products a tile and 8 columns, with u and the
// factor each in three bf16 parts and the k of a product over two parts of 8 ranks (hi hi + mid
// hi, hi mid + hi lo, lo hi + mid mid: every term above 2^-24 of the product). The products'
// columns are permuted so that a lane with k-group t holds columns 8t..8t+7 of the warp's 32:
// each lane writes whole 16-byte packs, the packs dropout draws its mask for.
constexpr int kUpMmaWarps = 4, kUpMmaCols = 32;

// Ranks 2t and 2t + 1 of row n of u [rows, r] (zeros past r and past the rows) as three bf16
// pairs: hi, mid, lo.
__device__ inline void rank_pair_parts(const float* u, int32_t rows, int32_t r, int64_t n,
                                       int32_t t, uint32_t (&pair)[3]) {
  float v[2] = {0.0f, 0.0f};
  if (n < rows) {
#pragma unroll
    for (int h = 0; h < 2; ++h) v[h] = 2 * t + h < r ? u[n * r + 2 * t + h] : 0.0f;
  }
  pair_parts(v[0], v[1], pair);
}

__global__ void __launch_bounds__(kUpMmaWarps * 32)
    low_rank_up_mma(const __nv_bfloat16* __restrict__ y, const float* __restrict__ u,
                    const float* __restrict__ w, int32_t rows, int32_t cols, int32_t r,
                    int32_t col_blocks, int32_t tiles_per_warp, Dropout d, float scale,
                    __nv_bfloat16* __restrict__ out) {
  const int32_t lane = threadIdx.x % 32;
  const int32_t task = blockIdx.x * kUpMmaWarps + threadIdx.x / 32;
  const int32_t group = lane / 4, t = lane % 4;
  const int32_t col_block = task % col_blocks;
  const int64_t first_tile = static_cast<int64_t>(task / col_blocks) * tiles_per_warp;
  if (first_tile * 16 >= rows) return;
  const int32_t c_base = col_block * kUpMmaCols;
  // b operands: product column `group` of tile j is column c_base + 8 (group / 2) + 2 j +
  // group % 2; its ranks 2t and 2t + 1, in three parts.
  uint32_t b[4][3];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int32_t col = c_base + 8 * (group / 2) + 2 * j + group % 2;
    float v[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) v[h] = 2 * t + h < r ? w[(2 * t + h) * int64_t{cols} + col] : 0.0f;
    pair_parts(v[0], v[1], b[j]);
  }
  const uint64_t seed = seed_of(d);
  const int64_t tile_end = min(first_tile + tiles_per_warp, (static_cast<int64_t>(rows) + 15) / 16);
  for (int64_t tile = first_tile; tile < tile_end; ++tile) {
    const int64_t top = tile * 16 + group, bottom = top + 8;
    uint32_t a_top[3], a_bottom[3];
    rank_pair_parts(u, rows, r, top, t, a_top);
    rank_pair_parts(u, rows, r, bottom, t, a_bottom);
    Pack<__nv_bfloat16> base_top{}, base_bottom{};
    if (y != nullptr && top < rows) base_top = load_pack(y + top * cols + c_base + 8 * t);
    if (y != nullptr && bottom < rows) base_bottom = load_pack(y + bottom * cols + c_base + 8 * t);
    float c[4][4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) c[j][e] = 0.0f;
      // k: ranks 0..7 of the first part, then of the second.
      mma_bf16(c[j], a_top[0], a_bottom[0], a_top[1], a_bottom[1], b[j][0], b[j][0]);
      mma_bf16(c[j], a_top[0], a_bottom[0], a_top[0], a_bottom[0], b[j][1], b[j][2]);
      mma_bf16(c[j], a_top[2], a_bottom[2], a_top[1], a_bottom[1], b[j][0], b[j][1]);
    }
    // c[j]: rows top (0, 1) and bottom (2, 3), columns c_base + 8t + 2j and + 1.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = h == 0 ? top : bottom;
      if (row >= rows) continue;
      const Pack<__nv_bfloat16>& base = h == 0 ? base_top : base_bottom;
      const int64_t first = row * cols + c_base + 8 * t;
      const uint32_t bits = d.seed != nullptr ? pack_keep(d, seed, first) : 0xFFu;
      Pack<__nv_bfloat16> result;
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        float v = scale * c[e / 2][2 * h + e % 2];
        if (d.seed != nullptr) v = ((bits >> e) & 1u) ? v * d.scale : 0.0f;
        store(result.v, e, (y != nullptr ? load(base.v, e) : 0.0f) + v);
      }
      store_pack(out + first, result);
    }
  }
}

constexpr int kTileWarps = 8;  // the outer product's blocks: 8 warps over 32 packs

// A block's [8 ranks][8 columns] sums of every warp, added over the warps in a fixed order and
// stored as ranks j0.. of the block's 256 columns of out [r, cols] (times scale).
__device__ inline void store_block_sums(float (&acc)[8][8], float4 (*sums)[64], int32_t lane,
                                        int32_t warp, int32_t j0, int32_t r, int64_t cols,
                                        float scale, float* out) {
  for (int j = 0; j < 8 && j0 + j < r; ++j) {
    sums[warp][2 * lane] = make_float4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]);
    sums[warp][2 * lane + 1] = make_float4(acc[j][4], acc[j][5], acc[j][6], acc[j][7]);
    __syncthreads();
    const int t = threadIdx.x;  // column t of the block's 256
    const int64_t col = static_cast<int64_t>(blockIdx.x) * 256 + t;
    if (col < cols) {
      const float* column = reinterpret_cast<const float*>(sums) + t;
      float sum = 0.0f;
#pragma unroll
      for (int k = 0; k < kTileWarps; ++k) sum += column[k * 256];
      out[(j0 + j) * cols + col] = scale * sum;
    }
    __syncthreads();
  }
}

// partial[k] = scale * u^T dropout(x) over the rows of chunk k, [r, cols]. A block's 8 warps share
// a tile of 32 packs (256 columns), each lane one pack, and take every 8th row of the chunk each;
// their sums meet in shared memory. With one pack a thread per 32-row chunk instead, the partial
// sums were half as many bytes as x (bench/NOTES.md, session 10: 44 -> 31 us at 7b with the sum).
template <typename T>
__global__ void __launch_bounds__(kTileWarps * 32)
    low_rank_outer(const T* __restrict__ x, const float* __restrict__ u, int32_t rows,
                   int32_t packs, int32_t r, int32_t chunk_rows, Dropout d, float scale,
                   float* __restrict__ partial) {
  __shared__ float4 sums[kTileWarps][64];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t p = blockIdx.x * 32 + lane;
  const int64_t cols = static_cast<int64_t>(packs) * 8, c0 = static_cast<int64_t>(p) * 8;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  const uint64_t seed = seed_of(d);
  float* out = partial + static_cast<int64_t>(blockIdx.y) * cols * r;
  for (int32_t j0 = 0; j0 < r; j0 += 8) {
    float acc[8][8] = {};
    if (p < packs) {
#pragma unroll 4
      for (int64_t n = begin + warp; n < end; n += kTileWarps) {
        float xv[8], uj[8];
        dropped_pack(x, n * cols + c0, d, seed, xv);
        load_row_ranks(u, n, r, j0, uj);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[j][e] += xv[e] * uj[j];
        }
      }
    }
    store_block_sums(acc, sums, lane, warp, j0, r, cols, scale, out);
  }
}

// partial[chunk] = scale * u^T dropout(x) over the chunk's rows, for bf16 x and r <= 8 on tensor
// cores (sm_80 and later), as low_rank_outer computes it: m16n8k16 bf16 products of x^T's
// [16 columns, 16 rows] tiles and u's [16 rows, 8 ranks] slice, u's fp32 values in three bf16
// parts (as low_rank_down_mma splits its factor). Rows are the products' k, so x goes through
// shared memory: each step the block's threads load one 16-byte pack each of 16 rows x 128
// columns (dropped elements zeroed; the keep scale goes on the sums), and each warp reads its 16
// columns transposed with ldmatrix. The next step's pack is loaded before this step's products.
constexpr int kOuterMmaWarps = 8, kOuterMmaCols = 16 * kOuterMmaWarps;
constexpr int kOuterMmaStride = kOuterMmaCols + 8;  // padded rows: ldmatrix's 8 rows hit 32 banks

__device__ inline void ldmatrix_x4_trans(uint32_t (&a)[4], const __nv_bfloat16* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
               : "r"(address));
#elif defined(LLM_CUDA_EMULATION)
  cuda_emulation::ldmatrix_x4_trans(a, p);
#else
  __trap();  // the host launches this kernel on sm_80 and later only
#endif
}

// u's values for `rank` at rows row, row + 1, row + 8 and row + 9 (zeros outside u), loaded a
// step before the products that need them (session 16: 7b's dB 19.6 -> 18.7 us).
__device__ inline void load_rank_rows(const float* u, int64_t row, int64_t end, int32_t r,
                                      int32_t rank, float (&v)[4]) {
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int64_t n = row + (e / 2) * 8 + e % 2;
    v[e] = n < end && rank < r ? u[n * r + rank] : 0.0f;
  }
}

// One rank's u at rows row, row + 1, row + 8 and row + 9, loaded a step before the products that
// take them as b registers: as fp32 values, split into their bf16 parts when taken, or
// (kRankParts) from u's three-part copy, taken as they are.
template <bool kRankParts>
struct RankRowsAhead {
  float values[4];
  uint32_t parts[2][3];

  __device__ void load(const float* u, const __nv_bfloat16* u_parts, int64_t rows, int64_t row,
                       int64_t end, int32_t r, int32_t rank) {
    if (kRankParts) {
      load_rank_row_parts(u_parts, rows, row, end, r, rank, parts);
    } else {
      load_rank_rows(u, row, end, r, rank, values);
    }
  }

  // b0: rows row and row + 1, b1: rows row + 8 and row + 9, each [bf16 part].
  __device__ void take(uint32_t (&b0)[3], uint32_t (&b1)[3]) const {
    if (kRankParts) {
#pragma unroll
      for (int part = 0; part < 3; ++part) b0[part] = parts[0][part], b1[part] = parts[1][part];
    } else {
      pair_parts(values[0], values[1], b0);
      pair_parts(values[2], values[3], b1);
    }
  }
};

// A warp's sums c of low_rank_outer_mma (columns group and group + 8 of the warp's 16, ranks
// 2 k_group and 2 k_group + 1) into this block's chunk of partial [chunks, r, cols], times the
// scale (and the keep scale where there was dropout).
__device__ inline void store_outer_sums(const float (&c)[4], const Dropout& d, float scale,
                                        int64_t cols, int32_t r, int64_t col0, float* partial) {
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t group = lane / 4, k_group = lane % 4;
  float* out = partial + static_cast<int64_t>(blockIdx.y) * cols * r;
  const float total = d.seed != nullptr ? scale * d.scale : scale;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int64_t col = col0 + warp * 16 + group + 8 * half;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int32_t rank = 2 * k_group + e;
      if (col < cols && rank < r) out[rank * cols + col] = total * c[2 * half + e];
    }
  }
}

__global__ void __launch_bounds__(kOuterMmaWarps * 32)
    low_rank_outer_mma(const __nv_bfloat16* __restrict__ x, const float* __restrict__ u,
                       int32_t rows, int32_t packs, int32_t r, int32_t chunk_rows, Dropout d,
                       float scale, float* __restrict__ partial) {
  __shared__ __align__(16) __nv_bfloat16 tile[16][kOuterMmaStride];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t group = lane / 4, k_group = lane % 4;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kOuterMmaCols;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  const uint64_t seed = seed_of(d);
  // The pack this thread stages: row threadIdx / 16 of the step, columns 8 (threadIdx % 16) on.
  const int32_t stage_row = threadIdx.x / 16, stage_pack = threadIdx.x % 16;
  const int32_t pack = static_cast<int32_t>(col0 / 8) + stage_pack;
  // ldmatrix's row addresses: lanes 8q..8q+7 give rows of matrix q (k 8 (q / 2) on, m 8 (q % 2)).
  const int32_t matrix = lane / 8;
  const __nv_bfloat16* fragment = &tile[(matrix / 2) * 8 + lane % 8][warp * 16 + (matrix % 2) * 8];
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  uint4 next =
      dropped_bf16_pack(x, static_cast<int32_t>(end), packs, begin + stage_row, pack, d, seed);
  float u_next[4];
  load_rank_rows(u, begin + 2 * k_group, end, r, group, u_next);
  for (int64_t row0 = begin; row0 < end; row0 += 16) {
    __syncthreads();  // the previous step's products have read the tile
    *reinterpret_cast<uint4*>(&tile[stage_row][stage_pack * 8]) = next;
    __syncthreads();
    uint32_t b0[3], b1[3];
    pair_parts(u_next[0], u_next[1], b0);
    pair_parts(u_next[2], u_next[3], b1);
    if (row0 + 16 < end) {
      next = dropped_bf16_pack(x, static_cast<int32_t>(end), packs, row0 + 16 + stage_row, pack, d,
                               seed);
      load_rank_rows(u, row0 + 16 + 2 * k_group, end, r, group, u_next);
    }
    uint32_t a[4];
    ldmatrix_x4_trans(a, fragment);
#pragma unroll
    for (int part = 0; part < 3; ++part) mma_bf16(c, a[0], a[1], a[2], a[3], b0[part], b1[part]);
  }
  store_outer_sums(c, d, scale, cols, r, col0, partial);
}

__device__ inline void cp_async16(void* smem, const void* gmem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(smem))),
               "l"(gmem));
#elif defined(LLM_CUDA_EMULATION)
  cuda_emulation::cp_async(smem, gmem, 16);
#else
  __trap();  // the host launches the kernels that copy this way on sm_80 and later only
#endif
}

__device__ inline void cp_async4(void* smem, const void* gmem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(smem))),
               "l"(gmem));
#elif defined(LLM_CUDA_EMULATION)
  cuda_emulation::cp_async(smem, gmem, 4);
#else
  __trap();
#endif
}

__device__ inline void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#elif defined(LLM_CUDA_EMULATION)
  cuda_emulation::cp_async_commit();
#endif
}

template <int N>
__device__ inline void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#elif defined(LLM_CUDA_EMULATION)
  cuda_emulation::cp_async_wait(N);
#endif
}

// One update's outer product in low_rank_outer_mma_ring: u [rows, r], its dropout and its partial
// [chunks, r, cols].
struct OuterPart {
  const float* u;
  Dropout d;
  float* partial;
  const __nv_bfloat16* u_parts;  // u's three-part copy (store_rank_row_parts), or null
};

template <int PARTS>
struct OuterParts {
  OuterPart part[PARTS];
};

// low_rank_outer_mma's sums with its tiles, chunks, products and order, but x's packs copied with
// cp.async into a ring of STAGES steps, STAGES - 1 steps ahead (with, for a recorded mask, the
// 32-bit word that holds the thread's keep byte), each thread masking its own pack in shared
// memory once it has landed, and one barrier a step. low_rank_outer_mma waits on most of a memory
// round trip each step (two barriers, the next pack one step ahead: 7b ~25 us a call in the step
// against ~9 of bandwidth). PARTS updates of one x (q's and v's A gradients: PARTS = 2) share one
// copy of x's tiles: each thread masks its landed pack once with each part's mask, into that
// part's tile ring, and each part's sums are low_rank_outer_mma's, so x is read once where two
// kernels read it twice (7b: 33.5 MB and its masks a layer). Session 19's call: one part is not
// faster than low_rank_outer_mma (7b's dA 23.6 -> 25.7 us), so the ring runs for two parts only
// (its one-part launch was removed in session 20), by default (LLMHOST_LOW_RANK_OUTER_PAIR=0:
// low_rank_outer_mma for each).
//
// kRankParts: every part's u as b registers loaded from its three-part copy, not split in every
// block and step (chunks of an even number of rows, so that each step's rows pair up). The two
// forms are kernels of their own (below) because they take different register limits.
template <int STAGES, int PARTS, bool kRankParts>
__device__ __forceinline__ void outer_mma_ring_body(const __nv_bfloat16* __restrict__ x,
                                                    int32_t rows, int32_t packs, int32_t r,
                                                    int32_t chunk_rows, float scale,
                                                    const OuterParts<PARTS>& parts) {
  __shared__ __align__(16) __nv_bfloat16 tiles[PARTS][STAGES][16][kOuterMmaStride];
  __shared__ uint32_t keep_words[PARTS][STAGES][kOuterMmaWarps * 32];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t group = lane / 4, k_group = lane % 4;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kOuterMmaCols;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  const int32_t stage_row = threadIdx.x / 16, stage_pack = threadIdx.x % 16;
  const int32_t pack = static_cast<int32_t>(col0 / 8) + stage_pack;
  const int32_t matrix = lane / 8;
  const int32_t fragment_row = (matrix / 2) * 8 + lane % 8;
  const int32_t fragment_col = warp * 16 + (matrix % 2) * 8;
  const int64_t steps = (end - begin + 15) / 16;
  uint64_t seeds[PARTS];
  bool recorded[PARTS];
#pragma unroll
  for (int k = 0; k < PARTS; ++k) {
    seeds[k] = seed_of(parts.part[k].d);
    recorded[k] = parts.part[k].d.seed != nullptr && parts.part[k].d.kept != nullptr;
  }
  // Step `step`'s pack of this thread into part 0's ring slot `slot` (the other parts' are
  // written from it once it has landed), and each recorded mask's word; zeros outside x.
  const auto issue = [&](int64_t step, int slot) {
    const int64_t row = begin + 16 * step + stage_row;
    __nv_bfloat16* dst = &tiles[0][slot][stage_row][stage_pack * 8];
    if (row < end && pack < packs) {
      cp_async16(dst, x + row * cols + static_cast<int64_t>(pack) * 8);
      const int64_t word = (row * packs + pack) & ~int64_t{3};
#pragma unroll
      for (int k = 0; k < PARTS; ++k) {
        if (recorded[k]) cp_async4(&keep_words[k][slot][threadIdx.x], parts.part[k].d.kept + word);
      }
    } else {
      *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
    }
  };
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < steps) issue(s, s);
    cp_async_commit();  // one group a step, empty or not, so wait_group counts steps
  }
  float c[PARTS][4] = {};
  RankRowsAhead<kRankParts> u_next[PARTS];
#pragma unroll
  for (int k = 0; k < PARTS; ++k) {
    u_next[k].load(parts.part[k].u, parts.part[k].u_parts, rows, begin + 2 * k_group, end, r,
                   group);
  }

  for (int64_t step = 0; step < steps; ++step) {
    const int slot = static_cast<int>(step % STAGES);
    cp_async_wait<STAGES - 2>();  // this thread's copies for `step` have landed
    const int64_t row = begin + 16 * step + stage_row;
    const bool inside = row < end && pack < packs;
    const uint4 raw = *reinterpret_cast<const uint4*>(&tiles[0][slot][stage_row][stage_pack * 8]);
#pragma unroll
    for (int k = 0; k < PARTS; ++k) {
      const Dropout& d = parts.part[k].d;
      const bool masked = d.seed != nullptr && inside;
      if (k == 0 && !masked) continue;  // part 0's tile holds the pack as it landed
      uint4 v = raw;
      if (masked) {
        const int64_t index = row * packs + pack;
        const uint32_t bits = recorded[k]
                                  ? (keep_words[k][slot][threadIdx.x] >> (8 * (index & 3))) & 0xFFu
                                  : keep_bits(seeds[k], index * 8, d.threshold);
        v = kept_elements(raw, bits);
      }
      *reinterpret_cast<uint4*>(&tiles[k][slot][stage_row][stage_pack * 8]) = v;
    }
    // Everyone's packs of this step are in place, and everyone is done with the slots refilled
    // next (read in the step before this one).
    __syncthreads();
    if (step + STAGES - 1 < steps) issue(step + STAGES - 1, (slot + STAGES - 1) % STAGES);
    cp_async_commit();
    uint32_t b[PARTS][2][3];  // [part][register][bf16 part]
#pragma unroll
    for (int k = 0; k < PARTS; ++k) u_next[k].take(b[k][0], b[k][1]);
    if (step + 1 < steps) {
      const int64_t next = begin + 16 * (step + 1) + 2 * k_group;
#pragma unroll
      for (int k = 0; k < PARTS; ++k) {
        u_next[k].load(parts.part[k].u, parts.part[k].u_parts, rows, next, end, r, group);
      }
    }
#pragma unroll
    for (int k = 0; k < PARTS; ++k) {
      uint32_t a[4];
      ldmatrix_x4_trans(a, &tiles[k][slot][fragment_row][fragment_col]);
#pragma unroll
      for (int part = 0; part < 3; ++part) {
        mma_bf16(c[k], a[0], a[1], a[2], a[3], b[k][0][part], b[k][1][part]);
      }
    }
  }
#pragma unroll
  for (int k = 0; k < PARTS; ++k) {
    store_outer_sums(c[k], parts.part[k].d, scale, cols, r, col0, parts.part[k].partial);
  }
}

template <int STAGES, int PARTS>
__global__ void __launch_bounds__(kOuterMmaWarps * 32)
    low_rank_outer_mma_ring(const __nv_bfloat16* __restrict__ x, int32_t rows, int32_t packs,
                            int32_t r, int32_t chunk_rows, float scale, OuterParts<PARTS> parts) {
  outer_mma_ring_body<STAGES, PARTS, false>(x, rows, packs, r, chunk_rows, scale, parts);
}

// u in parts: 84 registers uncapped (two blocks an SM where the other form runs with 60 and fits
// four); at 80, three blocks fit for 5 % more instructions a step (460 against 439 by
// scripts/sass-loop-counts.sh). __maxnreg__ excludes __launch_bounds__; it is launched with
// kOuterMmaWarps warps like the other.
template <int STAGES, int PARTS>
__global__ void LLM_MAX_REGISTERS(80)
    low_rank_outer_mma_ring_rank_parts(const __nv_bfloat16* __restrict__ x, int32_t rows,
                                       int32_t packs, int32_t r, int32_t chunk_rows, float scale,
                                       OuterParts<PARTS> parts) {
  outer_mma_ring_body<STAGES, PARTS, true>(x, rows, packs, r, chunk_rows, scale, parts);
}

// Backward's two products over dy [rows, cols] in one pass, for bf16 dy and r <= 8 on tensor
// cores: g_partial[k, n, j] = scale * the sum over column range k of dy[n, c] w[j, c] (their sum
// over k is low_rank_down_mma's dy w^T) and partial[k, j, c] = scale * the sum over row chunk k of
// u[n, j] dy[n, c] (their sum over k is B's gradient, as low_rank_outer_mma's without dropout).
// Apart, each reads dy on its own (7b: 13.7 + 19.6 us with the sum, session 17's bench). Here a
// block walks its chunk's rows over its range of kDyPassSteps 128-column steps, each [16, 128]
// tile of dy copied through a cp.async ring (as low_rank_outer_mma_ring), and each warp takes 16
// columns of a tile for both products: the outer product's as low_rank_outer_mma forms it, and
// the down product's with the tile's rows as the a operand, lane k-group t holding columns
// 4t..4t+3 of the warp's 16 (w's k permuted the same way; its three bf16 parts held for the whole
// block). The warps' down sums meet in shared memory once a row step and are added in a fixed
// order. The default since session 19 (35.4 -> 26.5 us for both at 7b; LLMHOST_LOW_RANK_DY_PASS=0
// keeps low_rank_down_mma and low_rank_outer_mma).
constexpr int kDyPassSteps = 2;
constexpr int kDyPassCols = kDyPassSteps * kOuterMmaCols;

//
// kRankParts: u's b registers loaded from its three-part copy (u_parts, store_rank_row_parts'
// layout, written by the kernel that formed u), not split from u in every block and row step.
template <int STAGES, bool kRankParts>
__global__ void __launch_bounds__(kOuterMmaWarps * 32)
    low_rank_down_outer_mma(const __nv_bfloat16* __restrict__ dy, const float* __restrict__ w,
                            const float* __restrict__ u, const __nv_bfloat16* __restrict__ u_parts,
                            int32_t rows, int32_t packs, int32_t r, int32_t chunk_rows, float scale,
                            float* __restrict__ g_partial, float* __restrict__ partial) {
  __shared__ __align__(16) __nv_bfloat16 tiles[STAGES][16][kOuterMmaStride];
  __shared__ float warp_sums[kOuterMmaWarps][16][8];
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int32_t group = lane / 4, k_group = lane % 4;
  const int64_t cols = static_cast<int64_t>(packs) * 8;
  const int64_t range0 = static_cast<int64_t>(blockIdx.x) * kDyPassCols;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  const int32_t stage_row = threadIdx.x / 16, stage_pack = threadIdx.x % 16;
  const int32_t matrix = lane / 8;
  const int32_t fragment_row = (matrix / 2) * 8 + lane % 8;
  const int32_t fragment_col = warp * 16 + (matrix % 2) * 8;
  const int64_t row_steps = (end - begin + 15) / 16;
  const int64_t tile_count = row_steps * kDyPassSteps;
  // Tile q (rows from begin + 16 (q / kDyPassSteps), columns from range0 + 128 (q %
  // kDyPassSteps)): this thread's pack into ring slot `slot`; zeros outside dy.
  const auto issue = [&](int64_t q, int slot) {
    const int64_t row = begin + 16 * (q / kDyPassSteps) + stage_row;
    const int64_t pack = range0 / 8 + 16 * (q % kDyPassSteps) + stage_pack;
    __nv_bfloat16* dst = &tiles[slot][stage_row][stage_pack * 8];
    if (row < end && pack < packs) {
      cp_async16(dst, dy + row * cols + pack * 8);
    } else {
      *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
    }
  };
#pragma unroll
  for (int q = 0; q < STAGES - 1; ++q) {
    if (q < tile_count) issue(q, q);
    cp_async_commit();  // one group a tile, empty or not, so wait_group counts tiles
  }
  // The down product's b registers: rank `group` at columns 4 k_group.. of the warp's 16 in each
  // step, in three bf16 parts (part p, register h: columns 2h and 2h + 1 of the lane's 4).
  uint32_t bw[kDyPassSteps][3][2];
#pragma unroll
  for (int s = 0; s < kDyPassSteps; ++s) {
    const int64_t c = range0 + kOuterMmaCols * s + 16 * warp + 4 * k_group;
    const float4 w4 = group < r && c < cols ? *reinterpret_cast<const float4*>(w + group * cols + c)
                                            : make_float4(0.f, 0.f, 0.f, 0.f);
    float parts[4][3];
    bf16_parts(w4.x, parts[0]);
    bf16_parts(w4.y, parts[1]);
    bf16_parts(w4.z, parts[2]);
    bf16_parts(w4.w, parts[3]);
#pragma unroll
    for (int part = 0; part < 3; ++part) {
      bw[s][part][0] = bf16_pair(parts[0][part], parts[1][part]);
      bw[s][part][1] = bf16_pair(parts[2][part], parts[3][part]);
    }
  }
  float c_outer[kDyPassSteps][4] = {};
  RankRowsAhead<kRankParts> u_next;
  u_next.load(u, u_parts, rows, begin + 2 * k_group, end, r, group);
  for (int64_t row_step = 0; row_step < row_steps; ++row_step) {
    uint32_t bu0[3], bu1[3];
    u_next.take(bu0, bu1);
    if (row_step + 1 < row_steps) {
      u_next.load(u, u_parts, rows, begin + 16 * (row_step + 1) + 2 * k_group, end, r, group);
    }
    float c_down[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int s = 0; s < kDyPassSteps; ++s) {
      const int64_t q = row_step * kDyPassSteps + s;
      const int slot = static_cast<int>(q % STAGES);
      cp_async_wait<STAGES - 2>();  // this thread's copies for tile q have landed
      // Everyone's packs of tile q are in place, and everyone is done with the slot refilled next
      // (read for tile q - 1).
      __syncthreads();
      if (q + STAGES - 1 < tile_count) issue(q + STAGES - 1, (slot + STAGES - 1) % STAGES);
      cp_async_commit();
      uint32_t a[4];
      ldmatrix_x4_trans(a, &tiles[slot][fragment_row][fragment_col]);
#pragma unroll
      for (int part = 0; part < 3; ++part) {
        mma_bf16(c_outer[s], a[0], a[1], a[2], a[3], bu0[part], bu1[part]);
      }
      const __nv_bfloat16* top = &tiles[slot][group][warp * 16 + 4 * k_group];
      const uint2 t = *reinterpret_cast<const uint2*>(top);
      const uint2 m = *reinterpret_cast<const uint2*>(top + 8 * kOuterMmaStride);
#pragma unroll
      for (int part = 0; part < 3; ++part) {
        mma_bf16(c_down, t.x, m.x, t.y, m.y, bw[s][part][0], bw[s][part][1]);
      }
    }
    // c_down: rows group and group + 8 of the step, ranks 2 k_group and 2 k_group + 1.
    warp_sums[warp][group][2 * k_group] = c_down[0];
    warp_sums[warp][group][2 * k_group + 1] = c_down[1];
    warp_sums[warp][group + 8][2 * k_group] = c_down[2];
    warp_sums[warp][group + 8][2 * k_group + 1] = c_down[3];
    __syncthreads();
    const int i = threadIdx.x / 8, j = threadIdx.x % 8;
    const int64_t row = begin + 16 * row_step + i;
    if (threadIdx.x < 128 && j < r && row < end) {
      float sum = 0.0f;
#pragma unroll
      for (int k = 0; k < kOuterMmaWarps; ++k) sum += warp_sums[k][i][j];
      g_partial[(static_cast<int64_t>(blockIdx.x) * rows + row) * r + j] = scale * sum;
    }
    // warp_sums is written again only after the next row step's first barrier.
  }
  const Dropout none{nullptr, 0, 1.0f, nullptr, nullptr};
#pragma unroll
  for (int s = 0; s < kDyPassSteps; ++s) {
    store_outer_sums(c_outer[s], none, scale, cols, r, range0 + kOuterMmaCols * s, partial);
  }
}

// out = the sum over k of partial[k] in order k = 0, 1, ..., partial [chunks, rows, cols] fp32,
// out [rows, cols] or (`transposed`) [cols, rows]: the factor gradients' partial sums added as
// LibTorch's sum over the first dimension adds them, in one pass and straight into B's [out, r]
// layout, where at::sum_out into a transposed view reduced into a buffer and copied it (7b: ~4.5
// us and a 2 us copy a call, 129 calls a step, session 17's trace). A thread an element, reading
// along the rows: the chunks' loads are independent and all in flight.
// parts (or null; not transposed): the sums also as their three bf16 parts in
// store_rank_row_parts' layout, for a [rows, r] rank product (g, which the outer products take).
// accumulate: out + the sum, where out holds a gradient being accumulated (AccumulateGrad's add,
// the same bits).
__global__ void sum_chunks(const float* __restrict__ partial, int64_t chunks, int64_t rows,
                           int64_t cols, bool transposed, bool accumulate, float* __restrict__ out,
                           __nv_bfloat16* __restrict__ parts) {
  const int64_t n = rows * cols;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float sum = 0.0f;
#pragma unroll 8
  for (int64_t k = 0; k < chunks; ++k) sum += __ldcs(partial + k * n + i);
  const int64_t at = transposed ? (i % cols) * rows + i / cols : i;
  out[at] = accumulate ? out[at] + sum : sum;
  if (parts != nullptr) {
    store_rank_row_parts(sum, parts, rows, static_cast<int32_t>(cols), i / cols,
                         static_cast<int32_t>(i % cols));
  }
}

constexpr int64_t kMaxRank = 64;

// A rank product's three-part copy (store_rank_row_parts' layout), or null: whole 32-bit pairs of
// rows, which its readers load as one word.
bool rank_parts_fit(int64_t rows, const void* parts) {
  return parts == nullptr || (rows % 2 == 0 && reinterpret_cast<uintptr_t>(parts) % 4 == 0);
}

template <typename T>
bool shapes_fit(int64_t rows, int64_t cols, int64_t r,
                std::initializer_list<const void*> pointers) {
  return cols % 8 == 0 && r >= 1 && r <= kMaxRank && rows < (int64_t{1} << 31) &&
         cols / 8 < (int64_t{1} << 31) && packs_fit<T>(cols, pointers);
}

template <typename T, int R, int ROWS>
void down_launch(const void* x, int64_t rows, int64_t cols, const float* w, int64_t r,
                 const Dropout& d, float scale, float* u, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((rows + kDownWarps * ROWS - 1) / (kDownWarps * ROWS));
  low_rank_down<T, R, ROWS><<<blocks, kDownWarps * 32, 0, stream>>>(
      static_cast<const T*>(x), static_cast<int32_t>(rows), static_cast<int32_t>(cols / 8), w,
      static_cast<int32_t>(r), d, scale, u);
}

template <typename T>
int down(const void* x, int64_t rows, int64_t cols, const float* w, int64_t r, const Dropout& d,
         float scale, float* u, cudaStream_t stream) {
  if (!shapes_fit<T>(rows, cols, r, {x, w})) return static_cast<int>(cudaErrorInvalidValue);
  if (rows == 0) return 0;
  if (r <= 8 && cols / 8 > kDownWidePacks) {
    const auto blocks = static_cast<unsigned>((rows + kDownWideRows - 1) / kDownWideRows);
    low_rank_down_few<T, kDownWideWarps, kDownWideRows><<<blocks, kDownWideWarps * 32, 0, stream>>>(
        static_cast<const T*>(x), static_cast<int32_t>(rows), static_cast<int32_t>(cols / 8), w,
        static_cast<int32_t>(r), d, scale, u);
  } else if (r <= 8) {
    const auto blocks = static_cast<unsigned>((rows + kDownFewRows - 1) / kDownFewRows);
    low_rank_down_few<T><<<blocks, kDownFewWarps * 32, 0, stream>>>(
        static_cast<const T*>(x), static_cast<int32_t>(rows), static_cast<int32_t>(cols / 8), w,
        static_cast<int32_t>(r), d, scale, u);
  } else if (r <= 16) {
    down_launch<T, 16, 2>(x, rows, cols, w, r, d, scale, u, stream);
  } else if (r <= 32) {
    down_launch<T, 32, 1>(x, rows, cols, w, r, d, scale, u, stream);
  } else {
    down_launch<T, 64, 1>(x, rows, cols, w, r, d, scale, u, stream);
  }
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int up(const void* y, const float* u, const float* w, int64_t rows, int64_t cols, int64_t r,
       const Dropout& d, float scale, void* out, cudaStream_t stream) {
  if (!shapes_fit<T>(rows, cols, r, {y, out, w})) return static_cast<int>(cudaErrorInvalidValue);
  if (rows == 0) return 0;
  const int64_t packs = cols / 8;
  // Rows per thread: up to 16 (w's registers serve them all) while ~64k threads stay in flight.
  const int64_t row_count =
      std::max<int64_t>(1, std::min<int64_t>(kUpStagedMaxRows, rows * packs / 65536));
  const int64_t threads = packs * ((rows + row_count - 1) / row_count);
  constexpr int kBlock = 256;
  const auto blocks = static_cast<unsigned>((threads + kBlock - 1) / kBlock);
  const auto launch = [&](auto kernel) {
    kernel<<<blocks, kBlock, 0, stream>>>(
        static_cast<const T*>(y), u, w, static_cast<int32_t>(rows), static_cast<int32_t>(packs),
        static_cast<int32_t>(r), static_cast<int32_t>(row_count), d, scale, static_cast<T*>(out));
  };
  if (r <= 8 && y == nullptr) {
    const int64_t groups = (rows + kUpStagedWarps * row_count - 1) / (kUpStagedWarps * row_count);
    const dim3 grid(static_cast<unsigned>((packs + 31) / 32),
                    static_cast<unsigned>(std::min<int64_t>(groups, 65535)));
    low_rank_up_staged<T><<<grid, kUpStagedWarps * 32, 0, stream>>>(
        u, w, static_cast<int32_t>(rows), static_cast<int32_t>(packs), static_cast<int32_t>(r),
        static_cast<int32_t>(row_count), d, scale, static_cast<T*>(out));
  } else if (r <= 8) {
    launch(low_rank_up_few<T>);
  } else {
    launch(low_rank_up<T>);
  }
  return static_cast<int>(cudaGetLastError());
}

// Whether a recorded mask can be copied as the 4-byte words that hold each pack's byte: whole,
// aligned words (low_rank_outer_mma_ring, low_rank_up_pair_narrow).
bool mask_in_words(const Dropout& d, int64_t packs) {
  return d.kept != nullptr && reinterpret_cast<uintptr_t>(d.kept) % 4 == 0 && packs % 4 == 0;
}

// low_rank_up_pair_narrow's conditions: both masks recorded, as whole aligned 4-byte words of
// 16 packs, and a grid of one row group a block.
bool narrow_pair_fits(const UpdatePart& first, const UpdatePart& second, int64_t packs,
                      int64_t groups) {
  for (const UpdatePart* part : {&first, &second}) {
    if (part->d.seed == nullptr || !mask_in_words(part->d, packs)) return false;
  }
  return packs % 16 == 0 && groups <= 65535;
}

template <typename T>
int up_pair(const UpdatePart& first, const UpdatePart& second, int64_t rows, int64_t cols,
            void* out, bool narrow, cudaStream_t stream) {
  if (first.r > 8 || second.r > 8 || second.r < 1 ||
      !shapes_fit<T>(rows, cols, first.r, {out, first.w, second.w})) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (rows == 0) return 0;
  const int64_t packs = cols / 8;
  const int64_t row_count =
      std::max<int64_t>(1, std::min<int64_t>(kUpStagedMaxRows, rows * packs / 65536));
  const int64_t groups = (rows + kUpStagedWarps * row_count - 1) / (kUpStagedWarps * row_count);
  if (narrow && narrow_pair_fits(first, second, packs, groups)) {
    const dim3 grid(static_cast<unsigned>(packs / 16), static_cast<unsigned>(groups));
    low_rank_up_pair_narrow<T><<<grid, kUpThreads, 0, stream>>>(
        first, second, static_cast<int32_t>(rows), static_cast<int32_t>(packs),
        static_cast<int32_t>(row_count), static_cast<T*>(out));
    return static_cast<int>(cudaGetLastError());
  }
  // One block an SM (the factors' registers allow no more), each over several row groups.
  int device = 0, sms = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) {
    status = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  }
  if (status != cudaSuccess) return static_cast<int>(status);
  const int64_t tiles = (packs + 31) / 32;
  const int64_t per_tile = std::max<int64_t>(1, std::min<int64_t>(groups, sms / tiles));
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(per_tile));
  low_rank_up_pair<T><<<grid, kUpStagedWarps * 32, 0, stream>>>(
      first, second, static_cast<int32_t>(rows), static_cast<int32_t>(packs),
      static_cast<int32_t>(row_count), static_cast<T*>(out));
  return static_cast<int>(cudaGetLastError());
}

// The outer product's grid: 256-column tiles times row chunks, ~256 blocks in all (two 8-warp
// blocks an SM; the session-10 bench found 128-256 rows a chunk best at the lora-train shapes).
int64_t tiles_for(int64_t cols) { return std::max<int64_t>(1, (cols / 8 + 31) / 32); }

int64_t chunks_for(int64_t rows, int64_t cols) {
  const int64_t wanted = std::max<int64_t>(1, (256 + tiles_for(cols) / 2) / tiles_for(cols));
  return std::max<int64_t>(1, std::min(wanted, (rows + 7) / 8));
}

dim3 tile_grid(int64_t rows, int64_t cols, int64_t* chunk_rows) {
  const int64_t chunks = chunks_for(rows, cols);
  *chunk_rows = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
  return dim3(static_cast<unsigned>(tiles_for(cols)),
              static_cast<unsigned>((rows + *chunk_rows - 1) / *chunk_rows));
}

template <typename T>
int outer(const void* x, const float* u, int64_t rows, int64_t cols, int64_t r, const Dropout& d,
          float scale, float* partial, cudaStream_t stream) {
  if (!shapes_fit<T>(rows, cols, r, {x, partial})) return static_cast<int>(cudaErrorInvalidValue);
  if (rows == 0) return 0;
  int64_t chunk = 0;
  const dim3 grid = tile_grid(rows, cols, &chunk);
  low_rank_outer<T><<<grid, kTileWarps * 32, 0, stream>>>(
      static_cast<const T*>(x), u, static_cast<int32_t>(rows), static_cast<int32_t>(cols / 8),
      static_cast<int32_t>(r), static_cast<int32_t>(chunk), d, scale, partial);
  return static_cast<int>(cudaGetLastError());
}

// low_rank_down_outer_mma's grid: column ranges times chunks of whole 16-row steps, ~256 blocks
// in all (two 8-warp blocks an SM, as the outer products'); no chunks without rows.
dim3 dy_pass_grid(int64_t rows, int64_t cols, int64_t* chunk_rows) {
  const int64_t ranges = std::max<int64_t>(1, (cols + kDyPassCols - 1) / kDyPassCols);
  const int64_t steps = (rows + 15) / 16;
  const int64_t wanted = std::max<int64_t>(1, (256 + ranges / 2) / ranges);
  const int64_t chunks = std::max<int64_t>(1, std::min(wanted, steps));
  *chunk_rows = 16 * ((steps + chunks - 1) / chunks);
  const int64_t used = *chunk_rows > 0 ? (rows + *chunk_rows - 1) / *chunk_rows : 0;
  return dim3(static_cast<unsigned>(ranges), static_cast<unsigned>(used));
}

// The tensor-core outer product's grid (tile_grid's chunks, 128-column tiles); its chunk rows.
dim3 outer_mma_grid(int64_t rows, int64_t cols, int64_t* chunk_rows) {
  const dim3 tiles = tile_grid(rows, cols, chunk_rows);
  return dim3(static_cast<unsigned>((cols + kOuterMmaCols - 1) / kOuterMmaCols), tiles.y);
}

// low_rank_outer_mma_ring for PARTS updates of one x: a mask drawn, or recorded in whole words;
// else cudaErrorInvalidValue (the callers check).
template <int PARTS>
int outer_mma_ring(const void* x, int64_t rows, int64_t cols, int64_t r, float scale,
                   const OuterParts<PARTS>& parts, cudaStream_t stream) {
  if (r > 8 || !shapes_fit<__nv_bfloat16>(rows, cols, r, {x})) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  for (const OuterPart& part : parts.part) {
    if (!shapes_fit<__nv_bfloat16>(rows, cols, r, {part.partial}) ||
        (part.d.kept != nullptr && !mask_in_words(part.d, cols / 8))) {
      return static_cast<int>(cudaErrorInvalidValue);
    }
  }
  bool every_part_split = true;
  for (const OuterPart& part : parts.part) {
    if (!rank_parts_fit(rows, part.u_parts)) return static_cast<int>(cudaErrorInvalidValue);
    every_part_split = every_part_split && part.u_parts != nullptr;
  }
  if (rows == 0) return 0;
  int64_t chunk = 0;
  const dim3 grid = outer_mma_grid(rows, cols, &chunk);
  const auto launch = [&](auto kernel) {
    kernel<<<grid, kOuterMmaWarps * 32, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(x), static_cast<int32_t>(rows),
        static_cast<int32_t>(cols / 8), static_cast<int32_t>(r), static_cast<int32_t>(chunk), scale,
        parts);
  };
  // u's parts pair rows from each chunk's first: an odd chunk would split a pair.
  if (every_part_split && chunk % 2 == 0) {
    launch(low_rank_outer_mma_ring_rank_parts<4, PARTS>);
  } else {
    launch(low_rank_outer_mma_ring<4, PARTS>);
  }
  return static_cast<int>(cudaGetLastError());
}

// low_rank_outer_mma on the tensor-core outer product's grid.
int outer_mma(const void* x, const float* u, int64_t rows, int64_t cols, int64_t r,
              const Dropout& d, float scale, float* partial, cudaStream_t stream) {
  if (r > 8 || !shapes_fit<__nv_bfloat16>(rows, cols, r, {x, partial})) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (rows == 0) return 0;
  int64_t chunk = 0;
  const dim3 grid = outer_mma_grid(rows, cols, &chunk);
  low_rank_outer_mma<<<grid, kOuterMmaWarps * 32, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(x), u, static_cast<int32_t>(rows),
      static_cast<int32_t>(cols / 8), static_cast<int32_t>(r), static_cast<int32_t>(chunk), d,
      scale, partial);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

extern "C" int llm_low_rank_down_cuda(const void* x, int64_t rows, int64_t cols, const float* w,
                                      int64_t r, const int64_t* seed, uint32_t keep_threshold,
                                      float keep_scale, uint8_t* keep_bits, float scale, float* u,
                                      int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  const Dropout d{seed, keep_threshold, keep_scale, nullptr, keep_bits};
  LLM_DISPATCH_HALF_KIND(kind, down<T>(x, rows, cols, w, r, d, scale, u, s))
}

extern "C" int llm_low_rank_down_mma_cuda(const void* x, int64_t rows, int64_t cols, const float* w,
                                          int64_t r, const int64_t* seed, uint32_t keep_threshold,
                                          float keep_scale, uint8_t* keep_bits, float scale,
                                          float* u, void* stream) {
  if (r > 8 || !shapes_fit<__nv_bfloat16>(rows, cols, r, {x, w})) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (rows == 0) return 0;
  const Dropout d{seed, keep_threshold, keep_scale, nullptr, keep_bits};
  const auto blocks = static_cast<unsigned>((rows + 15) / 16);
  low_rank_down_mma<<<blocks, kMmaWarps * 32, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const __nv_bfloat16*>(x), static_cast<int32_t>(rows),
      static_cast<int32_t>(cols / 8), w, static_cast<int32_t>(r), d, scale, u);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int llm_low_rank_down_mma_pair_cuda(const void* x, int64_t rows, int64_t cols, int64_t r,
                                               LlmLowRankDownPart first, LlmLowRankDownPart second,
                                               float scale, void* factor_parts, void* stream) {
  if (r > 8 || !shapes_fit<__nv_bfloat16>(rows, cols, r, {x, first.w, second.w, factor_parts})) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (rows == 0) return 0;
  const auto mask = [](const LlmLowRankDownPart& part) {
    return Dropout{part.seed, part.keep_threshold, part.keep_scale, nullptr, part.keep_bits};
  };
  // drawn_keep_words compares 16-bit draws with threshold - 1: a part that keeps nothing, or
  // every draw past 2^16, takes the other path.
  const auto keeps_some = [](const LlmLowRankDownPart& part) {
    return part.seed == nullptr || (part.keep_threshold >= 1 && part.keep_threshold <= 65536);
  };
  const auto s = static_cast<cudaStream_t>(stream);
  const auto blocks = static_cast<unsigned>((rows + 15) / 16);
  const auto packs = static_cast<int32_t>(cols / 8);
  // u's parts: written by the split kernel only.
  const bool u_parts = first.u_parts != nullptr || second.u_parts != nullptr;
  if (!rank_parts_fit(rows, first.u_parts) || !rank_parts_fit(rows, second.u_parts)) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (factor_parts != nullptr && keeps_some(first) && keeps_some(second)) {
    auto* parts = static_cast<uint4*>(factor_parts);
    const int64_t threads = 2 * r * packs;
    if (threads > 0) {  // no columns: u is zeros, with nothing to split
      split_factor_parts<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, s>>>(
          first.w, second.w, static_cast<int32_t>(r), packs, parts);
    }
    low_rank_down_mma_pair<true><<<blocks, kMmaWarps * 32, 0, s>>>(
        static_cast<const __nv_bfloat16*>(x), static_cast<int32_t>(rows), packs, first.w, second.w,
        parts, static_cast<int32_t>(r), mask(first), mask(second), scale, first.u, second.u,
        static_cast<__nv_bfloat16*>(first.u_parts), static_cast<__nv_bfloat16*>(second.u_parts));
  } else if (u_parts) {
    return static_cast<int>(cudaErrorInvalidValue);  // no split kernel, so no parts written
  } else {
    low_rank_down_mma_pair<false><<<blocks, kMmaWarps * 32, 0, s>>>(
        static_cast<const __nv_bfloat16*>(x), static_cast<int32_t>(rows), packs, first.w, second.w,
        nullptr, static_cast<int32_t>(r), mask(first), mask(second), scale, first.u, second.u,
        nullptr, nullptr);
  }
  return static_cast<int>(cudaGetLastError());
}

extern "C" int llm_low_rank_up_cuda(const void* y, const float* u, const float* w, int64_t rows,
                                    int64_t cols, int64_t r, const int64_t* seed,
                                    uint32_t keep_threshold, float keep_scale,
                                    const uint8_t* keep_bits, float scale, void* out, int kind,
                                    void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  const Dropout d{seed, keep_threshold, keep_scale, keep_bits, nullptr};
  LLM_DISPATCH_HALF_KIND(kind, up<T>(y, u, w, rows, cols, r, d, scale, out, s))
}

extern "C" int llm_low_rank_up_pair_cuda(LlmLowRankPart first, LlmLowRankPart second, int64_t rows,
                                         int64_t cols, void* out, int narrow, int kind,
                                         void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  const auto part = [](const LlmLowRankPart& q) {
    return UpdatePart{q.u, q.w, static_cast<int32_t>(q.r),
                      Dropout{q.seed, q.keep_threshold, q.keep_scale, q.keep_bits, nullptr},
                      q.scale};
  };
  LLM_DISPATCH_HALF_KIND(kind,
                         up_pair<T>(part(first), part(second), rows, cols, out, narrow != 0, s))
}

extern "C" int llm_low_rank_up_mma_cuda(const void* y, const float* u, const float* w, int64_t rows,
                                        int64_t cols, int64_t r, const int64_t* seed,
                                        uint32_t keep_threshold, float keep_scale,
                                        const uint8_t* keep_bits, float scale, void* out,
                                        void* stream) {
  if (r > 8 || cols % kUpMmaCols != 0 || !shapes_fit<__nv_bfloat16>(rows, cols, r, {y, out, w})) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (rows == 0) return 0;
  const Dropout d{seed, keep_threshold, keep_scale, keep_bits, nullptr};
  // ~8k warps in all (16 an SM a wave, several waves), each 32 columns over its run of tiles.
  const int64_t col_blocks = cols / kUpMmaCols, tiles = (rows + 15) / 16;
  const int64_t groups = std::max<int64_t>(1, std::min<int64_t>(tiles, 8192 / col_blocks));
  const int64_t tiles_per_warp = (tiles + groups - 1) / groups;
  const int64_t warps = col_blocks * ((tiles + tiles_per_warp - 1) / tiles_per_warp);
  const auto blocks = static_cast<unsigned>((warps + kUpMmaWarps - 1) / kUpMmaWarps);
  low_rank_up_mma<<<blocks, kUpMmaWarps * 32, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const __nv_bfloat16*>(y), u, w, static_cast<int32_t>(rows),
      static_cast<int32_t>(cols), static_cast<int32_t>(r), static_cast<int32_t>(col_blocks),
      static_cast<int32_t>(tiles_per_warp), d, scale, static_cast<__nv_bfloat16*>(out));
  return static_cast<int>(cudaGetLastError());
}

extern "C" int64_t llm_low_rank_chunks(int64_t rows, int64_t cols) {
  int64_t chunk = 0;
  return tile_grid(rows, cols, &chunk).y;
}

extern "C" int llm_low_rank_outer_cuda(const void* x, const float* u, int64_t rows, int64_t cols,
                                       int64_t r, const int64_t* seed, uint32_t keep_threshold,
                                       float keep_scale, const uint8_t* keep_bits, float scale,
                                       float* partial, int kind, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  const Dropout d{seed, keep_threshold, keep_scale, keep_bits, nullptr};
  LLM_DISPATCH_HALF_KIND(kind, outer<T>(x, u, rows, cols, r, d, scale, partial, s))
}

extern "C" int llm_low_rank_outer_mma_cuda(const void* x, const float* u, int64_t rows,
                                           int64_t cols, int64_t r, const int64_t* seed,
                                           uint32_t keep_threshold, float keep_scale,
                                           const uint8_t* keep_bits, float scale, float* partial,
                                           void* stream) {
  const Dropout d{seed, keep_threshold, keep_scale, keep_bits, nullptr};
  return outer_mma(x, u, rows, cols, r, d, scale, partial, static_cast<cudaStream_t>(stream));
}

extern "C" void llm_low_rank_down_outer_shape(int64_t rows, int64_t cols, int64_t* ranges,
                                              int64_t* chunks) {
  int64_t chunk_rows = 0;
  const dim3 grid = dy_pass_grid(rows, cols, &chunk_rows);
  *ranges = grid.x;
  *chunks = grid.y;
}

extern "C" int llm_low_rank_down_outer_mma_cuda(const void* dy, int64_t rows, int64_t cols,
                                                const float* w, const float* u, const void* u_parts,
                                                int64_t r, float scale, float* g_partial,
                                                float* partial, void* stream) {
  if (r > 8 || !shapes_fit<__nv_bfloat16>(rows, cols, r, {dy, w, partial})) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (!rank_parts_fit(rows, u_parts)) return static_cast<int>(cudaErrorInvalidValue);
  if (rows == 0) return 0;
  int64_t chunk_rows = 0;
  const dim3 grid = dy_pass_grid(rows, cols, &chunk_rows);
  if (grid.y > 65535) return static_cast<int>(cudaErrorInvalidValue);
  // Its chunks are whole 16-row steps, so each step's rows pair up in u's parts.
  const auto launch = [&](auto kernel) {
    kernel<<<grid, kOuterMmaWarps * 32, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const __nv_bfloat16*>(dy), w, u, static_cast<const __nv_bfloat16*>(u_parts),
        static_cast<int32_t>(rows), static_cast<int32_t>(cols / 8), static_cast<int32_t>(r),
        static_cast<int32_t>(chunk_rows), scale, g_partial, partial);
  };
  if (u_parts != nullptr) {
    launch(low_rank_down_outer_mma<4, true>);
  } else {
    launch(low_rank_down_outer_mma<4, false>);
  }
  return static_cast<int>(cudaGetLastError());
}

extern "C" int llm_low_rank_sum_chunks_cuda(const float* partial, int64_t chunks, int64_t rows,
                                            int64_t cols, int transposed, int accumulate,
                                            float* out, void* parts, void* stream) {
  const int64_t n = rows * cols;
  if (chunks < 0 || n < 0) return static_cast<int>(cudaErrorInvalidValue);
  if (!rank_parts_fit(rows, parts) || (parts != nullptr && (transposed != 0 || cols > kMaxRank))) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (n == 0) return 0;
  constexpr int kBlock = 256;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  if (blocks > 0x7FFFFFFF) return static_cast<int>(cudaErrorInvalidValue);
  sum_chunks<<<static_cast<unsigned>(blocks), kBlock, 0, static_cast<cudaStream_t>(stream)>>>(
      partial, chunks, rows, cols, transposed != 0, accumulate != 0, out,
      static_cast<__nv_bfloat16*>(parts));
  return static_cast<int>(cudaGetLastError());
}

extern "C" int llm_low_rank_outer_mma_pair_cuda(const void* x, int64_t rows, int64_t cols,
                                                int64_t r, LlmLowRankOuterPart first,
                                                LlmLowRankOuterPart second, float scale,
                                                void* stream) {
  const auto part = [](const LlmLowRankOuterPart& p) {
    return OuterPart{p.u, Dropout{p.seed, p.keep_threshold, p.keep_scale, p.keep_bits, nullptr},
                     p.partial, static_cast<const __nv_bfloat16*>(p.u_parts)};
  };
  return outer_mma_ring(x, rows, cols, r, scale, OuterParts<2>{{part(first), part(second)}},
                        static_cast<cudaStream_t>(stream));
}
