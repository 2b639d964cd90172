// The NF4 dequantization kernel (sdk/src/nn/nf4_dequantize.cu) on the CPU under
// tests/support/cuda_emulation: every code of every byte times its 64-element block's absmax,
// multiplied in fp32 and rounded once, to exact bits in fp32, fp16 and bf16.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "nf4_codebook.h"
#include "nf4_cuda_kernel.h"
#include "support/cuda_emulation/kernel_test_support.hpp"

namespace llm::test {
namespace {

constexpr float kCodes[16] = LLM_NF4_VALUES;

template <typename T>
void expect_dequantized(int kind) {
  const int64_t bytes = 600;  // 1,200 weights: 19 blocks of 64, the last partial; 3 thread blocks
  DeviceBuffer<uint8_t> packed(bytes);
  for (int64_t k = 0; k < bytes; ++k) packed[k] = static_cast<uint8_t>((k * 37 + 11) % 256);
  const auto absmax = random_fp32((2 * bytes + 63) / 64, 70);
  DeviceBuffer<T> out(2 * bytes);
  ASSERT_EQ(llm_nf4_dequantize_cuda(packed.data(), absmax.data(), out.data(), bytes, kind, nullptr),
            0);
  for (int64_t i = 0; i < 2 * bytes; ++i) {
    const uint8_t code = i % 2 == 0 ? packed[i / 2] >> 4 : packed[i / 2] & 15;
    T expected;
    assign(expected, kCodes[code] * absmax[i / 64]);
    ASSERT_EQ(std::memcmp(&out[i], &expected, sizeof(T)), 0) << "kind " << kind << " element " << i;
  }
  EXPECT_TRUE(out.guards_intact());
}

TEST(EmulatedNf4Kernel, DequantizesEveryCodeTimesItsBlocksScaleToExactBits) {
  for_every_schedule([&] {
    expect_dequantized<float>(0);
    expect_dequantized<__half>(1);
    expect_dequantized<__nv_bfloat16>(2);
  });
}

}  // namespace
}  // namespace llm::test
