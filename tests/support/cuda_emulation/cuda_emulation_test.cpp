// The emulation itself (cuda_emulation.hpp): warp operations against the PTX ISA's definitions,
// written here from the ISA's tables rather than from the emulation's code; cp.async groups; and
// the errors it raises where a GPU's behaviour is undefined.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda_emulation.hpp"
#include "support/cuda_emulation/kernel_test_support.hpp"

namespace llm::test {
namespace {

using cuda_emulation::launch;

uint16_t bf16_bits(float v) { return __float2bfloat16_rn(v).bits; }
uint32_t pair_of(float lo, float hi) {
  return static_cast<uint32_t>(bf16_bits(lo)) | static_cast<uint32_t>(bf16_bits(hi)) << 16;
}

TEST(CudaEmulation, ShufflesReadTheLanesTheirOffsetsName) {
  std::vector<int> xored(64), down(64);
  launch(
      [&] {
        const int value = static_cast<int>(threadIdx.x) * 10;
        xored[threadIdx.x] = __shfl_xor_sync(0xFFFFFFFFu, value, 5);
        down[threadIdx.x] = __shfl_down_sync(0xFFFFFFFFu, value, 3u);
      },
      1, 64);
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32, warp = t / 32;
    EXPECT_EQ(xored[t], (warp * 32 + (lane ^ 5)) * 10) << t;
    EXPECT_EQ(down[t], (warp * 32 + (lane + 3 < 32 ? lane + 3 : lane)) * 10) << t;  // width 32
  }
}

// CUDA's integer intrinsics as the CUDA Math API documents them.
TEST(CudaEmulation, HalfwordCompareAndBytePermuteFollowTheMathApi) {
  EXPECT_EQ(__vcmpleu2(0x0003FFFFu, 0x0003FFFEu), 0xFFFF0000u);  // unsigned halves: 3 <= 3
  EXPECT_EQ(__vcmpleu2(0x80000001u, 0x7FFF0001u), 0x0000FFFFu);
  EXPECT_EQ(__vcmpleu2(0u, 0u), 0xFFFFFFFFu);
  EXPECT_EQ(__byte_perm(0x33221100u, 0x77665544u, 0x6420u), 0x66442200u);
  EXPECT_EQ(__byte_perm(0x33221100u, 0x77665544u, 0x7531u), 0x77553311u);
  EXPECT_EQ(__byte_perm(0x33221100u, 0x77665544u, 0x0123u), 0x00112233u);
}

// mma.m16n8k16 .row.col bf16 (PTX ISA, "Matrix Fragments for mma.m16n8k16"): with groupID = lane
// / 4 and t = lane % 4, a0..a3 hold A's (g, 2t..2t+1), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..);
// b0, b1 hold B's (2t..2t+1, g) and (2t+8..2t+9, g); c0..c3 are D's (g, 2t), (g, 2t+1), (g+8, 2t),
// (g+8, 2t+1).
TEST(CudaEmulation, MmaMultipliesFragmentsLaidOutAsThePtxIsaTabulatesThem) {
  float a[16][16], b[16][8], c[16][8];
  for (int i = 0; i < 16; ++i) {
    for (int k = 0; k < 16; ++k) a[i][k] = static_cast<float>((i * 7 + k * 3) % 11 - 5);
  }
  for (int k = 0; k < 16; ++k) {
    for (int j = 0; j < 8; ++j) b[k][j] = static_cast<float>((k * 5 + j) % 7 - 3);
  }
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) c[i][j] = static_cast<float>(i - j) * 0.5f;
  }
  std::vector<float> d(16 * 8, 0.0f);
  launch(
      [&] {
        const int lane = static_cast<int>(threadIdx.x), g = lane / 4, t = lane % 4;
        const uint32_t fa[4] = {pair_of(a[g][2 * t], a[g][2 * t + 1]),
                                pair_of(a[g + 8][2 * t], a[g + 8][2 * t + 1]),
                                pair_of(a[g][2 * t + 8], a[g][2 * t + 9]),
                                pair_of(a[g + 8][2 * t + 8], a[g + 8][2 * t + 9])};
        const uint32_t fb[2] = {pair_of(b[2 * t][g], b[2 * t + 1][g]),
                                pair_of(b[2 * t + 8][g], b[2 * t + 9][g])};
        float acc[4] = {c[g][2 * t], c[g][2 * t + 1], c[g + 8][2 * t], c[g + 8][2 * t + 1]};
        cuda_emulation::mma_m16n8k16_bf16(acc, fa, fb);
        d[g * 8 + 2 * t] = acc[0], d[g * 8 + 2 * t + 1] = acc[1];
        d[(g + 8) * 8 + 2 * t] = acc[2], d[(g + 8) * 8 + 2 * t + 1] = acc[3];
      },
      1, 32);
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      float expected = c[i][j];  // small integers and halves: every sum exact
      for (int k = 0; k < 16; ++k) expected += a[i][k] * b[k][j];
      EXPECT_EQ(d[i * 8 + j], expected) << i << ", " << j;
    }
  }
}

// ldmatrix .x4 .trans: lanes 8m..8m+7 give the rows of matrix m; register m of lane l holds
// column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1 (the lower half first).
TEST(CudaEmulation, TransposedLdmatrixGivesEachLaneTwoRowsOfAColumn) {
  alignas(16) uint16_t tile[32][8];
  for (int row = 0; row < 32; ++row) {
    for (int col = 0; col < 8; ++col) tile[row][col] = static_cast<uint16_t>(row * 8 + col);
  }
  std::vector<uint32_t> got(32 * 4);
  launch(
      [&] {
        const int lane = static_cast<int>(threadIdx.x);
        uint32_t regs[4];
        cuda_emulation::ldmatrix_x4_trans(regs, tile[lane]);
        for (int m = 0; m < 4; ++m) got[lane * 4 + m] = regs[m];
      },
      1, 32);
  for (int lane = 0; lane < 32; ++lane) {
    for (int m = 0; m < 4; ++m) {
      const uint32_t lo = tile[8 * m + 2 * (lane % 4)][lane / 4];
      const uint32_t hi = tile[8 * m + 2 * (lane % 4) + 1][lane / 4];
      EXPECT_EQ(got[lane * 4 + m], lo | hi << 16) << lane << ", " << m;
    }
  }
}

TEST(CudaEmulation, CopiesLandAtTheWaitThatCoversTheirGroup) {
  alignas(16) float source[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  alignas(16) float target[8] = {};
  float seen[3][2] = {};
  launch(
      [&] {
        cuda_emulation::cp_async(&target[0], &source[0], 16);
        cuda_emulation::cp_async_commit();
        cuda_emulation::cp_async(&target[4], &source[4], 16);
        cuda_emulation::cp_async_commit();
        seen[0][0] = target[0], seen[0][1] = target[4];
        cuda_emulation::cp_async_wait(1);  // all but the newest group
        seen[1][0] = target[0], seen[1][1] = target[4];
        cuda_emulation::cp_async_wait(0);
        seen[2][0] = target[0], seen[2][1] = target[4];
      },
      1, 1);
  EXPECT_EQ(seen[0][0], 0.0f);
  EXPECT_EQ(seen[0][1], 0.0f);
  EXPECT_EQ(seen[1][0], 1.0f);
  EXPECT_EQ(seen[1][1], 0.0f);
  EXPECT_EQ(seen[2][0], 1.0f);
  EXPECT_EQ(seen[2][1], 5.0f);
}

TEST(CudaEmulation, SyncthreadsOrdersEveryThreadsWritesBeforeAnyRead) {
  for_every_schedule([&] {
    std::vector<int> read(128);
    launch(
        [&] {
          __shared__ int slots[128];
          slots[threadIdx.x] = static_cast<int>(threadIdx.x) + 1;
          __syncthreads();
          read[threadIdx.x] = slots[127 - threadIdx.x];
          __syncthreads();  // the slots are reused by the next block
        },
        2, 128);
    for (int t = 0; t < 128; ++t) EXPECT_EQ(read[t], 128 - t);
  });
}

TEST(CudaEmulation, LaunchesPastCudasLimitsAreRefusedWithTheirError) {
  bool ran = false;
  launch([&] { ran = true; }, 1, 1025);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  launch([&] { ran = true; }, dim3(1, 65536), 32);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_FALSE(ran);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // read once, then cleared
}

TEST(CudaEmulationDeathTest, WhatAGpuLeavesUndefinedStopsTheTestNamingIt) {
  EXPECT_DEATH(launch(
                   [] {
                     if (threadIdx.x < 16) return;
                     __syncthreads();
                   },
                   1, 64),
               "__syncthreads that some threads of the block left");
  EXPECT_DEATH(launch(
                   [] {
                     if (threadIdx.x % 32 == 3) return;
                     (void)__shfl_xor_sync(0xFFFFFFFFu, 1.0f, 1);
                   },
                   1, 32),
               "warp operation some lanes of the warp left");
  EXPECT_DEATH(launch(
                   [] {
                     if (threadIdx.x % 2 == 0) {
                       (void)__shfl_xor_sync(0xFFFFFFFFu, 1.0f, 1);
                     } else {
                       uint32_t a[4];
                       alignas(16) static uint16_t row[8];
                       cuda_emulation::ldmatrix_x4_trans(a, row);
                     }
                   },
                   1, 32),
               "lanes of a warp met in");
  EXPECT_DEATH(launch(
                   [] {
                     if (threadIdx.x < 16) {
                       __syncthreads();
                     } else {
                       (void)__shfl_xor_sync(0xFFFFFFFFu, 1.0f, 1);
                       __syncthreads();
                     }
                   },
                   1, 32),
               "deadlock");
}

}  // namespace
}  // namespace llm::test
