// The low-rank update's CUDA kernels (sdk/src/nn/low_rank_kernels.cu) run on the CPU under
// tests/support/cuda_emulation: their sums against double-precision references within fp32's
// rounding bound, their dropout masks against an independent Philox4x32-10, and each kernel that
// promises another's sums (the pairs, the copy ring, the one-pass backward) against that kernel,
// bit for bit, under several thread schedules. CI has no GPU; the CUDA tests in low_rank_test.cpp
// run the same kernels on a device.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "low_rank_cuda_kernels.h"
#include "support/cuda_emulation/kernel_test_support.hpp"

namespace llm::test {
namespace {

// Philox4x32-10 as Random123 defines it (Salmon et al., SC'11), written from the paper.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{0xD2511F53u} * c[0], p1 = uint64_t{0xCD9E8D57u} * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k = {k[0] + 0x9E3779B9u, k[1] + 0xBB67AE85u};
  }
  return c;
}

// The keep bits of the 8-element pack `pack` (of the whole [rows, cols] input, row-major), as the
// header defines the mask: one 16-bit draw per element, kept below the threshold.
uint8_t keep_byte(uint64_t seed, uint64_t pack, uint32_t threshold) {
  const auto draw =
      philox4x32_10({static_cast<uint32_t>(pack), static_cast<uint32_t>(pack >> 32), 0, 0},
                    {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  uint8_t bits = 0;
  for (int e = 0; e < 8; ++e) {
    const uint32_t sixteen = (draw[static_cast<size_t>(e / 2)] >> (16 * (e % 2))) & 0xFFFFu;
    bits = static_cast<uint8_t>(bits | (sixteen < threshold) << e);
  }
  return bits;
}

// Dropout with p = 0.1, keyed by a "device" seed.
struct Dropout {
  explicit Dropout(int64_t seed_value) : seed(1, seed_value) {}
  DeviceBuffer<int64_t> seed;
  uint32_t threshold = 58982;  // round(0.9 * 2^16)
  float keep_scale = 1.0f / 0.9f;
};

// x as the kernels read it: dropped and scaled (mask: a byte per pack, or null for none).
template <typename T>
double dropped(const DeviceBuffer<T>& x, int64_t i, const uint8_t* mask, float keep_scale) {
  if (mask == nullptr) return value(x[static_cast<size_t>(i)]);
  return (mask[i / 8] >> (i % 8)) & 1u ? value(x[static_cast<size_t>(i)]) * keep_scale : 0.0;
}

// u[n, j] = scale sum_c dropped(x)[n, c] w[j, c], checked against the rounding bound.
template <typename T>
void expect_down_sums(const DeviceBuffer<T>& x, const DeviceBuffer<float>& w, const float* u,
                      int64_t rows, int64_t cols, int64_t r, float scale, const uint8_t* mask,
                      float keep_scale) {
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t j = 0; j < r; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double term = scale * dropped(x, n * cols + c, mask, keep_scale) * w[j * cols + c];
        sum += term;
        magnitude += std::fabs(term);
      }
      ASSERT_NEAR(u[n * r + j], sum, fp32_sum_bound(cols, magnitude))
          << "u[" << n << ", " << j << "]";
    }
  }
}

// The sum over chunks of partial [chunks, r, cols] is scale u^T dropped(x).
template <typename T>
void expect_outer_sums(const DeviceBuffer<T>& x, const DeviceBuffer<float>& u, const float* partial,
                       int64_t chunks, int64_t rows, int64_t cols, int64_t r, float scale,
                       const uint8_t* mask, float keep_scale) {
  for (int64_t j = 0; j < r; ++j) {
    for (int64_t c = 0; c < cols; ++c) {
      double sum = 0, magnitude = 0, got = 0;
      for (int64_t n = 0; n < rows; ++n) {
        const double term = scale * u[n * r + j] * dropped(x, n * cols + c, mask, keep_scale);
        sum += term;
        magnitude += std::fabs(term);
      }
      for (int64_t k = 0; k < chunks; ++k) got += partial[(k * r + j) * cols + c];
      ASSERT_NEAR(got, sum, fp32_sum_bound(rows + chunks, magnitude))
          << "[" << j << ", " << c << "]";
    }
  }
}

TEST(EmulatedLowRankKernels, PhiloxReferenceGivesRandom123sKnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}),
            (std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                          {0xa4093822u, 0x299f31d0u}),
            (std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(EmulatedLowRankKernels, DownGivesTheSumsAndRecordsThePhiloxMaskOnTensorAndCudaCores) {
  for_every_schedule([&] {
    const int64_t rows = 37, cols = 520;  // a partial 16-row tile, an odd number of packs
    const auto x = random_bf16(rows * cols, 1);
    for (const int64_t r : {5, 8}) {
      const auto w = random_fp32(r * cols, 2, 0.05f);
      Dropout drop(123456789012345);
      for (const bool tensor_cores : {false, true}) {
        DeviceBuffer<float> u(rows * r);
        DeviceBuffer<uint8_t> mask(rows * cols / 8);
        const int status =
            tensor_cores ? llm_low_rank_down_mma_cuda(
                               x.data(), rows, cols, w.data(), r, drop.seed.data(), drop.threshold,
                               drop.keep_scale, mask.data(), 0.5f, u.data(), nullptr)
                         : llm_low_rank_down_cuda(x.data(), rows, cols, w.data(), r,
                                                  drop.seed.data(), drop.threshold, drop.keep_scale,
                                                  mask.data(), 0.5f, u.data(), 2, nullptr);
        ASSERT_EQ(status, 0);
        int64_t kept = 0;
        for (size_t p = 0; p < mask.size(); ++p) {
          ASSERT_EQ(mask[p], keep_byte(123456789012345, p, drop.threshold)) << "pack " << p;
          kept += __builtin_popcount(mask[p]);
        }
        EXPECT_NEAR(static_cast<double>(kept) / (rows * cols), 0.9, 0.01);
        expect_down_sums(x, w, u.data(), rows, cols, r, 0.5f, mask.data(), drop.keep_scale);
        EXPECT_TRUE(u.guards_intact() && mask.guards_intact());
      }
    }
  });
}

TEST(EmulatedLowRankKernels, DownPairGivesEachUpdatesSingleKernelBitsUnderEverySchedule) {
  const int64_t rows = 45, cols = 264, r = 8;
  const auto x = random_bf16(rows * cols, 3);
  const auto wq = random_fp32(r * cols, 4, 0.05f), wv = random_fp32(r * cols, 5, 0.05f);
  Dropout q_drop(11), v_drop(12);
  DeviceBuffer<float> uq(rows * r), uv(rows * r);
  DeviceBuffer<uint8_t> q_mask(rows * cols / 8), v_mask(rows * cols / 8);
  ASSERT_EQ(llm_low_rank_down_mma_cuda(x.data(), rows, cols, wq.data(), r, q_drop.seed.data(),
                                       q_drop.threshold, q_drop.keep_scale, q_mask.data(), 2.0f,
                                       uq.data(), nullptr),
            0);
  ASSERT_EQ(llm_low_rank_down_mma_cuda(x.data(), rows, cols, wv.data(), r, v_drop.seed.data(),
                                       v_drop.threshold, v_drop.keep_scale, v_mask.data(), 2.0f,
                                       uv.data(), nullptr),
            0);
  for (const auto& schedule : every_schedule()) {
    ScheduleScope scope(schedule);
    DeviceBuffer<float> pq(rows * r), pv(rows * r);
    DeviceBuffer<uint8_t> pq_mask(rows * cols / 8), pv_mask(rows * cols / 8);
    const LlmLowRankDownPart first{
        wq.data(),      q_drop.seed.data(), q_drop.threshold, q_drop.keep_scale,
        pq_mask.data(), pq.data(),          nullptr};
    const LlmLowRankDownPart second{
        wv.data(),      v_drop.seed.data(), v_drop.threshold, v_drop.keep_scale,
        pv_mask.data(), pv.data(),          nullptr};
    ASSERT_EQ(llm_low_rank_down_mma_pair_cuda(x.data(), rows, cols, r, first, second, 2.0f, nullptr,
                                              nullptr),
              0);
    expect_same_bits(pq.values(), uq.values(), "q's u");
    expect_same_bits(pv.values(), uv.values(), "v's u");
    expect_same_bits(pq_mask.values(), q_mask.values(), "q's mask");
    expect_same_bits(pv_mask.values(), v_mask.values(), "v's mask");
    EXPECT_TRUE(pq.guards_intact() && pv.guards_intact() && pq_mask.guards_intact() &&
                pv_mask.guards_intact());
  }
}

// v's three bf16 parts as the kernels split an fp32 value: each the rounding of what the parts
// before it left, as bits.
std::array<uint16_t, 3> three_parts(float v) {
  std::array<uint16_t, 3> bits{};
  for (auto& part : bits) {
    const __nv_bfloat16 rounded = __float2bfloat16_rn(v);
    std::memcpy(&part, &rounded, sizeof part);
    v -= __bfloat162float(rounded);
  }
  return bits;
}

// A [rows, r] product's three-part copy ([3, r, rows]) against three_parts of each value.
void expect_rank_parts(const DeviceBuffer<uint16_t>& parts, const std::vector<float>& u,
                       int64_t rows, int64_t r, const char* what) {
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t j = 0; j < r; ++j) {
      const auto expected = three_parts(u[static_cast<size_t>(n * r + j)]);
      for (int64_t p = 0; p < 3; ++p) {
        ASSERT_EQ(parts[static_cast<size_t>((p * r + j) * rows + n)], expected[p])
            << what << " [" << n << ", " << j << "] part " << p;
      }
    }
  }
}

// u [rows, r]'s three-part copy, as the kernels that form a rank product write it (the chunk sum
// over one chunk: u itself).
DeviceBuffer<uint16_t> rank_parts_of(const DeviceBuffer<float>& u, int64_t rows, int64_t r) {
  DeviceBuffer<float> copy(rows * r);
  DeviceBuffer<uint16_t> parts(3 * r * rows);
  EXPECT_EQ(
      llm_low_rank_sum_chunks_cuda(u.data(), 1, rows, r, 0, 0, copy.data(), parts.data(), nullptr),
      0);
  return parts;
}

// The factors split into their parts before the pass, and the masks compared two elements at a
// time: the pair's sums and recorded masks, bit for bit, for ranks below 8, one part without
// dropout, thresholds equal to a draw of the mask and one above it (the comparison's edge), 1 and
// 65536 (only a draw of 0 kept; every draw kept) and a ragged last tile; the split factors
// themselves; with an even number of rows, each u also as its three parts.
TEST(EmulatedLowRankKernels, DownPairWithFactorsSplitAheadGivesThePairsBitsUnderEverySchedule) {
  struct Case {
    int64_t rows, cols, r;
    uint32_t q_threshold;
    bool v_dropout;
  };
  // q's first draw (seed 31, pack 0, element 0), 16 bits.
  const uint32_t first_draw = philox4x32_10({0, 0, 0, 0}, {31, 0})[0] & 0xFFFFu;
  for (const Case& c :
       {Case{45, 264, 8, 58982, true}, Case{20, 520, 5, 1, false}, Case{34, 64, 3, 65536, true},
        Case{16, 64, 8, first_draw, true}, Case{16, 64, 8, first_draw + 1, true}}) {
    SCOPED_TRACE(std::to_string(c.rows) + " x " + std::to_string(c.cols) + ", r " +
                 std::to_string(c.r) + ", threshold " + std::to_string(c.q_threshold));
    const int64_t rows = c.rows, cols = c.cols, r = c.r;
    const bool with_u_parts = rows % 2 == 0;
    const auto x = random_bf16(rows * cols, 21);
    const auto wq = random_fp32(r * cols, 22, 0.05f), wv = random_fp32(r * cols, 23, 0.05f);
    Dropout q_drop(31), v_drop(32);
    q_drop.threshold = c.q_threshold;
    DeviceBuffer<float> uq(rows * r), uv(rows * r);
    DeviceBuffer<uint8_t> q_mask(rows * cols / 8), v_mask(rows * cols / 8);
    const auto parts = [&](DeviceBuffer<float>& u_q, DeviceBuffer<float>& u_v,
                           DeviceBuffer<uint8_t>& m_q, DeviceBuffer<uint8_t>& m_v, void* q_parts,
                           void* v_parts) {
      return std::array<LlmLowRankDownPart, 2>{
          LlmLowRankDownPart{wq.data(), q_drop.seed.data(), q_drop.threshold, q_drop.keep_scale,
                             m_q.data(), u_q.data(), q_parts},
          LlmLowRankDownPart{wv.data(), c.v_dropout ? v_drop.seed.data() : nullptr,
                             v_drop.threshold, v_drop.keep_scale,
                             c.v_dropout ? m_v.data() : nullptr, u_v.data(), v_parts}};
    };
    const auto pair = parts(uq, uv, q_mask, v_mask, nullptr, nullptr);
    ASSERT_EQ(llm_low_rank_down_mma_pair_cuda(x.data(), rows, cols, r, pair[0], pair[1], 2.0f,
                                              nullptr, nullptr),
              0);
    for (const auto& schedule : every_schedule()) {
      ScheduleScope scope(schedule);
      DeviceBuffer<float> sq(rows * r), sv(rows * r);
      DeviceBuffer<uint8_t> sq_mask(rows * cols / 8), sv_mask(rows * cols / 8);
      DeviceBuffer<uint16_t> factor_parts(2 * 3 * r * cols), q_parts(3 * r * rows),
          v_parts(3 * r * rows);
      const auto split = parts(sq, sv, sq_mask, sv_mask, with_u_parts ? q_parts.data() : nullptr,
                               with_u_parts ? v_parts.data() : nullptr);
      ASSERT_EQ(llm_low_rank_down_mma_pair_cuda(x.data(), rows, cols, r, split[0], split[1], 2.0f,
                                                factor_parts.data(), nullptr),
                0);
      expect_same_bits(sq.values(), uq.values(), "q's u");
      expect_same_bits(sv.values(), uv.values(), "v's u");
      expect_same_bits(sq_mask.values(), q_mask.values(), "q's mask");
      if (c.v_dropout) expect_same_bits(sv_mask.values(), v_mask.values(), "v's mask");
      // The split factors, [2, 3, r, cols]: so the split kernel ran, and the pair read its layout.
      for (int64_t k = 0; k < 2; ++k) {
        const auto& w = k == 0 ? wq : wv;
        for (int64_t i = 0; i < r * cols; ++i) {
          const auto expected = three_parts(w[static_cast<size_t>(i)]);
          for (int64_t p = 0; p < 3; ++p) {
            ASSERT_EQ(factor_parts[static_cast<size_t>((k * 3 + p) * r * cols + i)], expected[p])
                << "factor " << k << ", element " << i << ", part " << p;
          }
        }
      }
      if (with_u_parts) {
        expect_rank_parts(q_parts, uq.values(), rows, r, "q's u in parts");
        expect_rank_parts(v_parts, uv.values(), rows, r, "v's u in parts");
      }
      EXPECT_TRUE(sq.guards_intact() && sv.guards_intact() && sq_mask.guards_intact() &&
                  sv_mask.guards_intact() && factor_parts.guards_intact() &&
                  q_parts.guards_intact() && v_parts.guards_intact());
    }
    // The masks themselves: each pack's byte as the header defines the draw.
    for (size_t p = 0; p < q_mask.size(); ++p) {
      ASSERT_EQ(q_mask[p], keep_byte(31, p, c.q_threshold)) << "pack " << p;
    }
    // u's parts need the split path and whole pairs of rows.
    DeviceBuffer<uint16_t> odd_parts(3 * r * rows);
    const auto without_split = parts(uq, uv, q_mask, v_mask, odd_parts.data(), nullptr);
    EXPECT_EQ(llm_low_rank_down_mma_pair_cuda(x.data(), rows, cols, r, without_split[0],
                                              without_split[1], 2.0f, nullptr, nullptr),
              static_cast<int>(cudaErrorInvalidValue));
  }
}

// out[n, c] = round(y + dropped(scale sum_j u[n, j] w[j, c])), within T's rounding of the fp32
// sum's bound.
template <typename T>
void expect_up_sums(const std::vector<T>& out, const T* y, const float* u, const float* w,
                    int64_t rows, int64_t cols, int64_t r, float scale, const uint8_t* mask,
                    float keep_scale, const char* what) {
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t c = 0; c < cols; ++c) {
      double sum = 0, magnitude = 0;
      for (int64_t j = 0; j < r; ++j) {
        sum += scale * static_cast<double>(u[n * r + j]) * w[j * cols + c];
        magnitude += std::fabs(scale * static_cast<double>(u[n * r + j]) * w[j * cols + c]);
      }
      const int64_t i = n * cols + c;
      const bool kept = mask == nullptr || ((mask[i / 8] >> (i % 8)) & 1u);
      const double update = kept ? sum * (mask != nullptr ? keep_scale : 1.0f) : 0.0;
      const double expected = (y != nullptr ? value(y[i]) : 0.0) + update;
      const double error = fp32_sum_bound(r + 2, magnitude * keep_scale + std::fabs(expected));
      ASSERT_NEAR(value(out[static_cast<size_t>(i)]), expected, rounded_bound<T>(expected, error))
          << what << " [" << n << ", " << c << "]";
    }
  }
}

TEST(EmulatedLowRankKernels, UpGivesTheRoundedSumsOnTensorAndCudaCoresWithAndWithoutInput) {
  for_every_schedule([&] {
    const int64_t rows = 21, cols = 512, r = 8;
    const auto x = random_bf16(rows * cols, 6), y = random_bf16(rows * cols, 7);
    const auto u = random_fp32(rows * r, 8), w = random_fp32(r * cols, 9, 0.05f);
    Dropout drop(99);
    DeviceBuffer<float> unused(rows * r);
    DeviceBuffer<uint8_t> mask(rows * cols / 8);
    ASSERT_EQ(llm_low_rank_down_mma_cuda(x.data(), rows, cols, w.data(), r, drop.seed.data(),
                                         drop.threshold, drop.keep_scale, mask.data(), 1.0f,
                                         unused.data(), nullptr),
              0);
    for (const bool with_input : {false, true}) {
      const __nv_bfloat16* input = with_input ? y.data() : nullptr;
      DeviceBuffer<__nv_bfloat16> cuda_cores(rows * cols), tensor_cores(rows * cols);
      ASSERT_EQ(llm_low_rank_up_cuda(input, u.data(), w.data(), rows, cols, r, drop.seed.data(),
                                     drop.threshold, drop.keep_scale, mask.data(), 0.25f,
                                     cuda_cores.data(), 2, nullptr),
                0);
      ASSERT_EQ(llm_low_rank_up_mma_cuda(input, u.data(), w.data(), rows, cols, r, drop.seed.data(),
                                         drop.threshold, drop.keep_scale, mask.data(), 0.25f,
                                         tensor_cores.data(), nullptr),
                0);
      expect_up_sums(cuda_cores.values(), input, u.data(), w.data(), rows, cols, r, 0.25f,
                     mask.data(), drop.keep_scale, "CUDA cores");
      expect_up_sums(tensor_cores.values(), input, u.data(), w.data(), rows, cols, r, 0.25f,
                     mask.data(), drop.keep_scale, "tensor cores");
      EXPECT_TRUE(cuda_cores.guards_intact() && tensor_cores.guards_intact());
    }
  });
}

TEST(EmulatedLowRankKernels, NarrowUpPairGivesThePairsBitsUnderEverySchedule) {
  const int64_t rows = 70, cols = 1024, r = 8;  // 128 packs: the narrow pair's 16-pack blocks
  const auto x = random_bf16(rows * cols, 10);
  const auto uq = random_fp32(rows * r, 11), uv = random_fp32(rows * r, 12);
  const auto wq = random_fp32(r * cols, 13, 0.05f), wv = random_fp32(r * cols, 14, 0.05f);
  Dropout q_drop(21), v_drop(22);
  DeviceBuffer<uint8_t> q_mask(rows * cols / 8), v_mask(rows * cols / 8);
  DeviceBuffer<float> unused(rows * r);
  for (auto [drop, w, mask] :
       {std::make_tuple(&q_drop, &wq, &q_mask), std::make_tuple(&v_drop, &wv, &v_mask)}) {
    ASSERT_EQ(llm_low_rank_down_mma_cuda(x.data(), rows, cols, w->data(), r, drop->seed.data(),
                                         drop->threshold, drop->keep_scale, mask->data(), 1.0f,
                                         unused.data(), nullptr),
              0);
  }
  const LlmLowRankPart first{
      uq.data(),         wq.data(),     r,   q_drop.seed.data(), q_drop.threshold,
      q_drop.keep_scale, q_mask.data(), 0.5f};
  const LlmLowRankPart second{
      uv.data(),         wv.data(),     r,   v_drop.seed.data(), v_drop.threshold,
      v_drop.keep_scale, v_mask.data(), 0.5f};
  DeviceBuffer<__nv_bfloat16> pair(rows * cols);
  ASSERT_EQ(llm_low_rank_up_pair_cuda(first, second, rows, cols, pair.data(), 0, 2, nullptr), 0);
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = n * cols + c;
      double expected = 0, magnitude = 0;
      for (auto [u, w, mask, keep_scale] :
           {std::make_tuple(&uq, &wq, &q_mask, q_drop.keep_scale),
            std::make_tuple(&uv, &wv, &v_mask, v_drop.keep_scale)}) {
        double sum = 0;
        for (int64_t j = 0; j < r; ++j) {
          sum += 0.5 * (*u)[n * r + j] * (*w)[j * cols + c];
          magnitude += std::fabs(0.5 * (*u)[n * r + j] * (*w)[j * cols + c]) * keep_scale;
        }
        expected += ((*mask)[i / 8] >> (i % 8)) & 1u ? sum * keep_scale : 0.0;
      }
      ASSERT_NEAR(value(pair[i]), expected,
                  rounded_bound<__nv_bfloat16>(expected, fp32_sum_bound(2 * r + 1, magnitude)))
          << "[" << n << ", " << c << "]";
    }
  }
  {
    // One SM: each block of the pair goes through every row group, refilling its double buffer.
    cuda_emulation::Options one_multiprocessor;
    one_multiprocessor.multiprocessors = 1;
    ScheduleScope scope(one_multiprocessor);
    DeviceBuffer<__nv_bfloat16> looped(rows * cols);
    ASSERT_EQ(llm_low_rank_up_pair_cuda(first, second, rows, cols, looped.data(), 0, 2, nullptr),
              0);
    expect_same_bits(looped.values(), pair.values(), "pair over every row group");
  }
  for (const auto& schedule : every_schedule()) {
    ScheduleScope scope(schedule);
    DeviceBuffer<__nv_bfloat16> narrow(rows * cols);
    ASSERT_EQ(llm_low_rank_up_pair_cuda(first, second, rows, cols, narrow.data(), 1, 2, nullptr),
              0);
    expect_same_bits(narrow.values(), pair.values(), "narrow pair");
    EXPECT_TRUE(narrow.guards_intact());
  }
}

// A recorded mask of x [rows, cols] for `drop`, drawn by the tensor-core down kernel.
DeviceBuffer<uint8_t> recorded_mask(const DeviceBuffer<__nv_bfloat16>& x, int64_t rows,
                                    int64_t cols, Dropout& drop) {
  const auto w = random_fp32(cols, 99);
  DeviceBuffer<float> u(rows);
  DeviceBuffer<uint8_t> mask(rows * cols / 8);
  EXPECT_EQ(llm_low_rank_down_mma_cuda(x.data(), rows, cols, w.data(), 1, drop.seed.data(),
                                       drop.threshold, drop.keep_scale, mask.data(), 1.0f, u.data(),
                                       nullptr),
            0);
  return mask;
}

struct OuterCase {
  int64_t rows, cols;
  const char* what;
  // The small cases check everything; the large one (the ring wraps: seconds under emulation)
  // checks q's sums once (recorded masks) and both parts' bits against low_rank_outer_mma with
  // drawn and recorded masks, but not the CUDA-core kernel.
  bool small;
};

// Both outer-product kernels' sums for one update, and the pair's (two updates of one x through
// its cp.async ring) bits against the tensor-core kernel's for each, with masks drawn and recorded.
void expect_outer_and_pair(const OuterCase& shape) {
  const int64_t rows = shape.rows, cols = shape.cols, r = 8;
  const int64_t chunks = llm_low_rank_chunks(rows, cols);
  const auto x = random_bf16(rows * cols, 15);
  const auto uq = random_fp32(rows * r, 16), uv = random_fp32(rows * r, 18);
  Dropout q_drop(31), v_drop(42);
  const auto q_mask = recorded_mask(x, rows, cols, q_drop);
  const auto v_mask = recorded_mask(x, rows, cols, v_drop);
  for (const bool recorded : {false, true}) {
    const uint8_t* q_kept = recorded ? q_mask.data() : nullptr;
    const uint8_t* v_kept = recorded ? v_mask.data() : nullptr;
    DeviceBuffer<float> q_plain(chunks * r * cols), v_plain(chunks * r * cols);
    ASSERT_EQ(llm_low_rank_outer_mma_cuda(x.data(), uq.data(), rows, cols, r, q_drop.seed.data(),
                                          q_drop.threshold, q_drop.keep_scale, q_kept, 0.5f,
                                          q_plain.data(), nullptr),
              0);
    if (shape.small || recorded) {  // the same sums either way: the large case checks them once
      expect_outer_sums(x, uq, q_plain.data(), chunks, rows, cols, r, 0.5f, q_mask.data(),
                        q_drop.keep_scale);
    }
    ASSERT_EQ(llm_low_rank_outer_mma_cuda(x.data(), uv.data(), rows, cols, r, v_drop.seed.data(),
                                          v_drop.threshold, v_drop.keep_scale, v_kept, 0.5f,
                                          v_plain.data(), nullptr),
              0);
    if (shape.small) {
      DeviceBuffer<float> cuda_cores(chunks * r * cols);
      ASSERT_EQ(llm_low_rank_outer_cuda(x.data(), uq.data(), rows, cols, r, q_drop.seed.data(),
                                        q_drop.threshold, q_drop.keep_scale, q_kept, 0.5f,
                                        cuda_cores.data(), 2, nullptr),
                0);
      expect_outer_sums(x, uq, cuda_cores.data(), chunks, rows, cols, r, 0.5f, q_mask.data(),
                        q_drop.keep_scale);
    }
    // With both u's as their three bf16 parts too, where rows pair up (the large case: once).
    DeviceBuffer<uint16_t> uq_parts(1), uv_parts(1);
    if (rows % 2 == 0) uq_parts = rank_parts_of(uq, rows, r), uv_parts = rank_parts_of(uv, rows, r);
    for (const bool in_parts : {false, true}) {
      if (in_parts && rows % 2 != 0) continue;
      const auto schedules = shape.small || !in_parts
                                 ? every_schedule()
                                 : std::vector<cuda_emulation::Options>{every_schedule()[0]};
      for (const auto& schedule : schedules) {
        ScheduleScope scope(schedule);
        DeviceBuffer<float> q_pair(chunks * r * cols), v_pair(chunks * r * cols);
        const auto part = [&](const DeviceBuffer<float>& u, const Dropout& drop,
                              const uint8_t* kept, DeviceBuffer<float>& out,
                              const DeviceBuffer<uint16_t>& parts) {
          return LlmLowRankOuterPart{u.data(),
                                     drop.seed.data(),
                                     drop.threshold,
                                     drop.keep_scale,
                                     kept,
                                     out.data(),
                                     in_parts ? parts.data() : nullptr};
        };
        const auto first = part(uq, q_drop, q_kept, q_pair, uq_parts);
        const auto second = part(uv, v_drop, v_kept, v_pair, uv_parts);
        ASSERT_EQ(
            llm_low_rank_outer_mma_pair_cuda(x.data(), rows, cols, r, first, second, 0.5f, nullptr),
            0);
        const std::string what = std::string(shape.what) +
                                 (recorded ? ", recorded masks" : ", drawn masks") +
                                 (in_parts ? ", u in parts" : "");
        expect_same_bits(q_pair.values(), q_plain.values(), (what + ", q").c_str());
        expect_same_bits(v_pair.values(), v_plain.values(), (what + ", v").c_str());
        EXPECT_TRUE(q_pair.guards_intact() && v_pair.guards_intact());
      }
    }
  }
}

TEST(EmulatedLowRankKernels, OuterProductsGiveTheSumsAndThePairTheirBitsUnderEverySchedule) {
  expect_outer_and_pair({45, 384, "45 x 384", true});
  expect_outer_and_pair({200, 1280, "200 x 1280", true});
  // Chunks of 7 rows: u's parts cannot pair them, so the pair splits u as before.
  expect_outer_and_pair({42, 2048, "42 x 2048", true});
}

TEST(EmulatedLowRankKernels, OuterPairWhoseRingWrapsGivesTheOuterProductsBits) {
  // 2,048 columns: 32 chunks, 96 rows each: six 16-row steps through a 4-step ring.
  expect_outer_and_pair({3072, 2048, "3072 x 2048", false});
}

TEST(EmulatedLowRankKernels, OnePassOverDyGivesBothProductsSumsUnderEverySchedule) {
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{53, 520}, {300, 1152}}) {
    const int64_t r = 8;
    int64_t ranges = 0, chunks = 0;
    llm_low_rank_down_outer_shape(rows, cols, &ranges, &chunks);
    const auto dy = random_bf16(rows * cols, 20);
    const auto w = random_fp32(r * cols, 21, 0.05f), u = random_fp32(rows * r, 22);
    std::vector<float> g_first, partial_first;
    for (const auto& schedule : every_schedule()) {
      ScheduleScope scope(schedule);
      DeviceBuffer<float> g_partial(ranges * rows * r), partial(chunks * r * cols);
      ASSERT_EQ(
          llm_low_rank_down_outer_mma_cuda(dy.data(), rows, cols, w.data(), u.data(), nullptr, r,
                                           0.5f, g_partial.data(), partial.data(), nullptr),
          0);
      EXPECT_TRUE(g_partial.guards_intact() && partial.guards_intact());
      if (g_first.empty()) {
        g_first = g_partial.values();
        partial_first = partial.values();
        continue;
      }
      expect_same_bits(g_partial.values(), g_first, "dy B's partial sums");
      expect_same_bits(partial.values(), partial_first, "B's gradient's partial sums");
    }
    if (rows % 2 == 0) {  // u's b registers loaded from its parts: the same bits
      const auto u_parts = rank_parts_of(u, rows, r);
      for (const auto& schedule : every_schedule()) {
        ScheduleScope scope(schedule);
        DeviceBuffer<float> g_partial(ranges * rows * r), partial(chunks * r * cols);
        ASSERT_EQ(llm_low_rank_down_outer_mma_cuda(dy.data(), rows, cols, w.data(), u.data(),
                                                   u_parts.data(), r, 0.5f, g_partial.data(),
                                                   partial.data(), nullptr),
                  0);
        expect_same_bits(g_partial.values(), g_first, "dy B's partial sums, u in parts");
        expect_same_bits(partial.values(), partial_first, "B's gradient's sums, u in parts");
      }
    }
    std::vector<float> g(rows * r, 0.0f);
    for (int64_t k = 0; k < ranges; ++k) {
      for (int64_t i = 0; i < rows * r; ++i) g[i] += g_first[k * rows * r + i];
    }
    expect_down_sums(dy, w, g.data(), rows, cols, r, 0.5f, nullptr, 1.0f);
    expect_outer_sums(dy, u, partial_first.data(), chunks, rows, cols, r, 0.5f, nullptr, 1.0f);
  }
}

// The CUDA-core kernels (any r <= 64, fp16 or bf16) on each of their rank paths: down, up (with
// and without an input) and the outer product, with the mask down draws.
template <typename T>
void expect_cuda_core_kernels(int kind, int64_t r, int64_t cols) {
  const int64_t rows = 19;
  const auto x = random_values<T>(rows * cols, 30), y = random_values<T>(rows * cols, 31);
  const auto w = random_fp32(r * cols, 32, 0.05f), u = random_fp32(rows * r, 33);
  Dropout drop(77);
  DeviceBuffer<float> down(rows * r);
  DeviceBuffer<uint8_t> mask(rows * cols / 8);
  ASSERT_EQ(
      llm_low_rank_down_cuda(x.data(), rows, cols, w.data(), r, drop.seed.data(), drop.threshold,
                             drop.keep_scale, mask.data(), 0.5f, down.data(), kind, nullptr),
      0);
  for (size_t p = 0; p < mask.size(); ++p) ASSERT_EQ(mask[p], keep_byte(77, p, drop.threshold));
  expect_down_sums(x, w, down.data(), rows, cols, r, 0.5f, mask.data(), drop.keep_scale);
  for (const T* input : {static_cast<const T*>(nullptr), y.data()}) {
    DeviceBuffer<T> out(rows * cols);
    ASSERT_EQ(llm_low_rank_up_cuda(input, u.data(), w.data(), rows, cols, r, drop.seed.data(),
                                   drop.threshold, drop.keep_scale, mask.data(), 0.25f, out.data(),
                                   kind, nullptr),
              0);
    expect_up_sums(out.values(), input, u.data(), w.data(), rows, cols, r, 0.25f, mask.data(),
                   drop.keep_scale, input != nullptr ? "up onto y" : "up");
    EXPECT_TRUE(out.guards_intact());
  }
  const int64_t chunks = llm_low_rank_chunks(rows, cols);
  DeviceBuffer<float> partial(chunks * r * cols);
  ASSERT_EQ(
      llm_low_rank_outer_cuda(x.data(), u.data(), rows, cols, r, drop.seed.data(), drop.threshold,
                              drop.keep_scale, mask.data(), 0.5f, partial.data(), kind, nullptr),
      0);
  expect_outer_sums(x, u, partial.data(), chunks, rows, cols, r, 0.5f, mask.data(),
                    drop.keep_scale);
  EXPECT_TRUE(down.guards_intact() && mask.guards_intact() && partial.guards_intact());
}

TEST(EmulatedLowRankKernels, CudaCoreKernelsGiveTheSumsOnEveryRankPathInBf16AndFp16) {
  for_every_schedule([&] {
    for (const int64_t r : {3, 8, 12, 24, 40}) {  // r <= 8, and the 16-, 32- and 64-rank kernels
      SCOPED_TRACE("r = " + std::to_string(r));
      expect_cuda_core_kernels<__nv_bfloat16>(2, r, 264);
      expect_cuda_core_kernels<__half>(1, r, 264);
    }
    SCOPED_TRACE("rows wider than 512 packs");
    expect_cuda_core_kernels<__nv_bfloat16>(2, 8, 4160);
  });
}

// Every bf16 kernel that takes (rows, cols, r), with dropout drawn and recorded, against the
// references: the small and ragged shapes (one row, one pack, r = 1) where tiles are mostly
// padding.
void expect_every_kernel_at(int64_t rows, int64_t cols, int64_t r) {
  const auto x = random_bf16(rows * cols, 90), dy = random_bf16(rows * cols, 91);
  const auto w = random_fp32(r * cols, 92, 0.05f), u = random_fp32(rows * r, 93);
  Dropout drop(5), other(6);
  DeviceBuffer<float> down(rows * r), down_pair(rows * r), other_down(rows * r);
  DeviceBuffer<uint8_t> mask(rows * cols / 8), pair_mask(rows * cols / 8),
      other_mask(rows * cols / 8);
  ASSERT_EQ(llm_low_rank_down_mma_cuda(x.data(), rows, cols, w.data(), r, drop.seed.data(),
                                       drop.threshold, drop.keep_scale, mask.data(), 0.5f,
                                       down.data(), nullptr),
            0);
  expect_down_sums(x, w, down.data(), rows, cols, r, 0.5f, mask.data(), drop.keep_scale);
  for (size_t p = 0; p < mask.size(); ++p) ASSERT_EQ(mask[p], keep_byte(5, p, drop.threshold));
  const LlmLowRankDownPart first{w.data(),        drop.seed.data(), drop.threshold,
                                 drop.keep_scale, pair_mask.data(), down_pair.data(),
                                 nullptr};
  const LlmLowRankDownPart second{w.data(),         other.seed.data(), other.threshold,
                                  other.keep_scale, other_mask.data(), other_down.data(),
                                  nullptr};
  ASSERT_EQ(llm_low_rank_down_mma_pair_cuda(x.data(), rows, cols, r, first, second, 0.5f, nullptr,
                                            nullptr),
            0);
  expect_same_bits(down_pair.values(), down.values(), "down pair");
  expect_same_bits(pair_mask.values(), mask.values(), "down pair's mask");

  // x's gradient through one update, and through two (the second without dropout's mask
  // recorded: the pair then draws it).
  DeviceBuffer<__nv_bfloat16> up(rows * cols), up_mma(rows * cols), pair(rows * cols);
  ASSERT_EQ(llm_low_rank_up_cuda(nullptr, u.data(), w.data(), rows, cols, r, drop.seed.data(),
                                 drop.threshold, drop.keep_scale, mask.data(), 0.25f, up.data(), 2,
                                 nullptr),
            0);
  expect_up_sums(up.values(), static_cast<const __nv_bfloat16*>(nullptr), u.data(), w.data(), rows,
                 cols, r, 0.25f, mask.data(), drop.keep_scale, "up");
  if (cols % 32 == 0) {
    ASSERT_EQ(llm_low_rank_up_mma_cuda(dy.data(), u.data(), w.data(), rows, cols, r,
                                       drop.seed.data(), drop.threshold, drop.keep_scale,
                                       mask.data(), 0.25f, up_mma.data(), nullptr),
              0);
    expect_up_sums(up_mma.values(), dy.data(), u.data(), w.data(), rows, cols, r, 0.25f,
                   mask.data(), drop.keep_scale, "up on tensor cores");
  }
  const LlmLowRankPart masked{u.data(),       w.data(),        r,           drop.seed.data(),
                              drop.threshold, drop.keep_scale, mask.data(), 0.25f};
  const LlmLowRankPart plain{u.data(), w.data(), r, nullptr, 0, 1.0f, nullptr, 0.25f};
  for (const int narrow : {0, 1}) {
    ASSERT_EQ(llm_low_rank_up_pair_cuda(masked, plain, rows, cols, pair.data(), narrow, 2, nullptr),
              0);
    for (int64_t i = 0; i < rows * cols; ++i) {
      const int64_t n = i / cols, c = i % cols;
      double sum = 0, magnitude = 0;
      for (int64_t j = 0; j < r; ++j) {
        sum += 0.25 * u[n * r + j] * w[j * cols + c];
        magnitude += std::fabs(0.25 * u[n * r + j] * w[j * cols + c]);
      }
      const bool kept = (mask[i / 8] >> (i % 8)) & 1u;
      const double expected = (kept ? sum * drop.keep_scale : 0.0) + sum;
      ASSERT_NEAR(value(pair[i]), expected,
                  rounded_bound<__nv_bfloat16>(expected, fp32_sum_bound(2 * r + 2, 3 * magnitude)))
          << "pair (narrow " << narrow << ") [" << n << ", " << c << "]";
    }
  }

  // The factor gradients: over x (A's) and over dy (B's, with dy B).
  const int64_t chunks = llm_low_rank_chunks(rows, cols);
  for (const bool recorded : {false, true}) {
    const uint8_t* kept = recorded ? mask.data() : nullptr;
    DeviceBuffer<float> partial(chunks * r * cols), q_pair(chunks * r * cols),
        v_pair(chunks * r * cols);
    const int status = llm_low_rank_outer_mma_cuda(
        x.data(), u.data(), rows, cols, r, drop.seed.data(), drop.threshold, drop.keep_scale, kept,
        0.5f, partial.data(), nullptr);
    ASSERT_EQ(status, 0);
    expect_outer_sums(x, u, partial.data(), chunks, rows, cols, r, 0.5f, mask.data(),
                      drop.keep_scale);
    const LlmLowRankOuterPart q{u.data(), drop.seed.data(), drop.threshold, drop.keep_scale,
                                kept,     q_pair.data(),    nullptr};
    const LlmLowRankOuterPart v{u.data(), nullptr, 0, 1.0f, nullptr, v_pair.data(), nullptr};
    const int pair_status =
        llm_low_rank_outer_mma_pair_cuda(x.data(), rows, cols, r, q, v, 0.5f, nullptr);
    if (recorded && (cols / 8) % 4 != 0) {  // a recorded mask in whole words only
      EXPECT_EQ(pair_status, static_cast<int>(cudaErrorInvalidValue));
      continue;
    }
    ASSERT_EQ(pair_status, 0);
    expect_outer_sums(x, u, q_pair.data(), chunks, rows, cols, r, 0.5f, mask.data(),
                      drop.keep_scale);
    expect_outer_sums(x, u, v_pair.data(), chunks, rows, cols, r, 0.5f, nullptr, 1.0f);
  }
  int64_t ranges = 0, dy_chunks = 0;
  llm_low_rank_down_outer_shape(rows, cols, &ranges, &dy_chunks);
  DeviceBuffer<float> g_partial(ranges * rows * r), b_partial(dy_chunks * r * cols);
  ASSERT_EQ(llm_low_rank_down_outer_mma_cuda(dy.data(), rows, cols, w.data(), u.data(), nullptr, r,
                                             0.5f, g_partial.data(), b_partial.data(), nullptr),
            0);
  std::vector<float> g(static_cast<size_t>(rows * r), 0.0f);
  for (int64_t k = 0; k < ranges; ++k) {
    for (int64_t i = 0; i < rows * r; ++i) g[i] += g_partial[k * rows * r + i];
  }
  expect_down_sums(dy, w, g.data(), rows, cols, r, 0.5f, nullptr, 1.0f);
  expect_outer_sums(dy, u, b_partial.data(), dy_chunks, rows, cols, r, 0.5f, nullptr, 1.0f);
  EXPECT_TRUE(down.guards_intact() && down_pair.guards_intact() && other_down.guards_intact() &&
              mask.guards_intact() && up.guards_intact() && up_mma.guards_intact() &&
              pair.guards_intact() && g_partial.guards_intact() && b_partial.guards_intact());
}

TEST(EmulatedLowRankKernels, EveryKernelGivesTheSumsOnRaggedAndTinyShapes) {
  struct Shape {
    int64_t rows, cols, r;
  };
  for_every_schedule([&] {
    for (const Shape& shape :
         {Shape{1, 8, 1}, Shape{1, 256, 8}, Shape{17, 8, 3}, Shape{17, 40, 8}, Shape{33, 136, 2},
          Shape{2, 128, 8}, Shape{16, 32, 8}, Shape{31, 1024, 5}}) {
      SCOPED_TRACE("rows " + std::to_string(shape.rows) + ", cols " + std::to_string(shape.cols) +
                   ", r " + std::to_string(shape.r));
      expect_every_kernel_at(shape.rows, shape.cols, shape.r);
    }
  });
}

TEST(EmulatedLowRankKernels, ShapesTheKernelsCannotTakeAreRefusedWithoutALaunch) {
  const auto x = random_bf16(16 * 64, 34);
  const auto w = random_fp32(9 * 64, 35);
  DeviceBuffer<float> u(16 * 9);
  const int invalid = static_cast<int>(cudaErrorInvalidValue);
  // cols not a multiple of 8; r past 64; r past 8 on tensor cores; an unknown element type.
  EXPECT_EQ(llm_low_rank_down_cuda(x.data(), 16, 60, w.data(), 8, nullptr, 0, 1.0f, nullptr, 1.0f,
                                   u.data(), 2, nullptr),
            invalid);
  EXPECT_EQ(llm_low_rank_down_cuda(x.data(), 16, 64, w.data(), 65, nullptr, 0, 1.0f, nullptr, 1.0f,
                                   u.data(), 2, nullptr),
            invalid);
  EXPECT_EQ(llm_low_rank_down_mma_cuda(x.data(), 16, 64, w.data(), 9, nullptr, 0, 1.0f, nullptr,
                                       1.0f, u.data(), nullptr),
            invalid);
  EXPECT_EQ(llm_low_rank_down_cuda(x.data(), 16, 64, w.data(), 8, nullptr, 0, 1.0f, nullptr, 1.0f,
                                   u.data(), 0, nullptr),
            invalid);
  for (size_t i = 0; i < u.size(); ++i) ASSERT_EQ(std::memcmp(&u[i], "\0\0\0\0", 4), 0);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // nothing was launched
}

TEST(EmulatedLowRankKernels, ChunkSumAddsThePartialsInOrderIntoEitherLayoutOrOntoAGradient) {
  for_every_schedule([&] {
    const int64_t chunks = 7, rows = 8, cols = 130;
    const auto partial = random_fp32(chunks * rows * cols, 23);
    const auto before = random_fp32(rows * cols, 25);  // a gradient accumulated so far
    for (const int transposed : {0, 1}) {
      for (const int accumulate : {0, 1}) {
        DeviceBuffer<float> out(rows * cols);
        for (int64_t i = 0; i < rows * cols; ++i) out[i] = before[i];
        ASSERT_EQ(llm_low_rank_sum_chunks_cuda(partial.data(), chunks, rows, cols, transposed,
                                               accumulate, out.data(), nullptr, nullptr),
                  0);
        for (int64_t j = 0; j < rows; ++j) {
          for (int64_t c = 0; c < cols; ++c) {
            float sum = 0.0f;
            for (int64_t k = 0; k < chunks; ++k) sum += partial[(k * rows + j) * cols + c];
            const int64_t at = transposed ? c * rows + j : j * cols + c;
            // AccumulateGrad's grad + new_grad, to the bit.
            const float expected = accumulate ? before[at] + sum : sum;
            ASSERT_EQ(out[at], expected) << "[" << j << ", " << c << "] transposed " << transposed
                                         << ", accumulate " << accumulate;
          }
        }
        EXPECT_TRUE(out.guards_intact());
      }
    }
  });
}

TEST(EmulatedLowRankKernels, ChunkSumWritesARankProductsThreePartsTooWherePairsOfRowsAreWhole) {
  for_every_schedule([&] {
    const int64_t chunks = 3, rows = 26, r = 5;
    const auto partial = random_fp32(chunks * rows * r, 24);
    DeviceBuffer<float> out(rows * r);
    DeviceBuffer<uint16_t> parts(3 * r * rows);
    ASSERT_EQ(llm_low_rank_sum_chunks_cuda(partial.data(), chunks, rows, r, 0, 0, out.data(),
                                           parts.data(), nullptr),
              0);
    expect_rank_parts(parts, out.values(), rows, r, "sum in parts");
    EXPECT_TRUE(out.guards_intact() && parts.guards_intact());
    // Not into B's transposed layout, nor with a row left without its pair.
    EXPECT_EQ(llm_low_rank_sum_chunks_cuda(partial.data(), chunks, rows, r, 1, 0, out.data(),
                                           parts.data(), nullptr),
              static_cast<int>(cudaErrorInvalidValue));
    EXPECT_EQ(llm_low_rank_sum_chunks_cuda(partial.data(), chunks, rows - 1, r, 0, 0, out.data(),
                                           parts.data(), nullptr),
              static_cast<int>(cudaErrorInvalidValue));
  });
}

}  // namespace
}  // namespace llm::test
