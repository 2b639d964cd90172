// The cross-entropy kernel (sdk/src/nn/cross_entropy_kernels.cu) on the CPU under
// tests/support/cuda_emulation: each row's loss and the logits' gradient against double, within
// fp32's bound for a log-sum-exp over the vocabulary (expf and logf a few ulp each) and one
// rounding to the element type; in place (the gradient over the logits) under every schedule.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cross_entropy_cuda_kernels.h"
#include "support/cuda_emulation/kernel_test_support.hpp"

namespace llm::test {
namespace {

// One row's log-sum-exp in double.
double log_sum_exp(const __nv_bfloat16* row, int64_t vocab) {
  double max = -INFINITY, sum = 0;
  for (int64_t v = 0; v < vocab; ++v) max = std::max(max, value(row[v]));
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(value(row[v]) - max);
  return max + std::log(sum);
}

void expect_cross_entropy(int64_t vocab, bool in_place) {
  const int64_t rows = 4, ignore = -100;
  const double u = std::ldexp(1.0, -24);
  const auto logits = random_bf16(rows * vocab, 60, 3.0f);
  DeviceBuffer<int64_t> targets(rows);
  targets[0] = 5, targets[1] = ignore, targets[2] = vocab - 1, targets[3] = vocab;  // 3: outside
  DeviceBuffer<float> loss(rows);
  DeviceBuffer<__nv_bfloat16> grad(rows * vocab);
  auto work = random_bf16(rows * vocab, 60, 3.0f);  // the logits again, overwritten in place
  ASSERT_EQ(llm_cross_entropy_rows_cuda(in_place ? work.data() : logits.data(), targets.data(),
                                        ignore, rows, vocab, loss.data(),
                                        in_place ? work.data() : grad.data(), 2, nullptr),
            0);
  const DeviceBuffer<__nv_bfloat16>& got = in_place ? work : grad;
  for (int64_t n = 0; n < rows; ++n) {
    const __nv_bfloat16* row = logits.data() + n * vocab;
    const double lse = log_sum_exp(row, vocab);
    const bool valid = targets[n] >= 0 && targets[n] < vocab;
    // The running sum of vocab exponentials (each a few ulp) and its log: lse's error.
    const double lse_error = fp32_sum_bound(vocab + 8, 1.0) + 4 * u * std::fabs(lse);
    const double expected_loss = valid ? lse - value(row[targets[n]]) : 0.0;
    EXPECT_NEAR(loss[n], expected_loss, lse_error + 2 * u * std::fabs(expected_loss))
        << "row " << n;
    for (int64_t v = 0; v < vocab; ++v) {
      const double p = std::exp(value(row[v]) - lse);
      const double exact = valid ? p - (v == targets[n] ? 1.0 : 0.0) : 0.0;
      const double error = p * (lse_error + 4 * u * (1 + std::fabs(value(row[v]) - lse))) + u;
      ASSERT_NEAR(value(got[n * vocab + v]), exact, rounded_bound<__nv_bfloat16>(exact, error))
          << "row " << n << " v " << v << (in_place ? " in place" : "");
    }
  }
  EXPECT_TRUE(loss.guards_intact() && got.guards_intact());
}

TEST(EmulatedCrossEntropyKernel, LossAndGradientPerRowOnBothPathsAndInPlaceUnderEverySchedule) {
  for_every_schedule([&] {
    for (const int64_t vocab : {int64_t{2048}, int64_t{1003}}) {  // packs, and one element a step
      for (const bool in_place : {false, true}) {
        SCOPED_TRACE("vocab " + std::to_string(vocab) + (in_place ? ", in place" : ""));
        expect_cross_entropy(vocab, in_place);
      }
    }
  });
}

}  // namespace
}  // namespace llm::test
