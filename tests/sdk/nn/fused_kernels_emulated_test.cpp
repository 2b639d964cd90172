// The fused CUDA kernels (sdk/src/nn/fused_kernels.cu) run on the CPU under
// tests/support/cuda_emulation: RMSNorm, SwiGLU over separate and joined halves, and rotary on
// each of its launch paths. Each rounds to bf16 where the composed LibTorch operations write a
// tensor, so the references round there too: exact bits where every step is exact in fp32, else
// within half a bf16 ulp of the exact value (2^-8 relative) plus the fp32 error before it. The
// CUDA tests in fused_ops_test.cpp run the same kernels on a device against LibTorch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fused_cuda_kernels.h"
#include "support/cuda_emulation/kernel_test_support.hpp"

namespace llm::test {
namespace {

constexpr int kBf16 = 2;

double round_bf16(double v) { return __bfloat162float(__float2bfloat16_rn(static_cast<float>(v))); }

// |bf16(v) - exact| where |v - exact| <= fp32_error: half an ulp of v, and the error.
double bf16_bound(double exact, double fp32_error) {
  return std::ldexp(std::fabs(exact) + fp32_error, -8) + fp32_error;
}

template <typename T>
void expect_same_bits(const std::vector<T>& a, const std::vector<T>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)), 0) << what;
}

TEST(EmulatedFusedKernels, RmsNormForwardNormalisesRoundsAndScalesOnBothPaths) {
  const int64_t rows = 5;
  const double eps = 1e-5;
  for (const int64_t dim : {int64_t{520}, int64_t{100}}) {  // whole packs a thread, and not
    const auto x = random_bf16(rows * dim, 1), weight = random_bf16(dim, 2);
    DeviceBuffer<__nv_bfloat16> y(rows * dim);
    DeviceBuffer<float> rstd(rows);
    ASSERT_EQ(llm_rms_norm_forward_cuda(x.data(), weight.data(), y.data(), rstd.data(), rows, dim,
                                        eps, kBf16, nullptr),
              0);
    for (int64_t n = 0; n < rows; ++n) {
      double squares = 0;
      for (int64_t c = 0; c < dim; ++c) squares += value(x[n * dim + c]) * value(x[n * dim + c]);
      const double exact = 1.0 / std::sqrt(squares / dim + eps);
      // The mean square's fp32 sum, its division and eps, then rsqrt (CUDA's: 2 ulp).
      EXPECT_NEAR(rstd[n], exact, exact * (fp32_sum_bound(dim + 2, 1.0) + 4 * std::ldexp(1.0, -24)))
          << "row " << n;
      for (int64_t c = 0; c < dim; ++c) {
        // The kernel's own rstd gives the exact expected bits: x * rstd rounded, times the weight,
        // rounded.
        const double normalised = round_bf16(static_cast<float>(value(x[n * dim + c])) * rstd[n]);
        const double expected =
            round_bf16(static_cast<float>(normalised) * static_cast<float>(value(weight[c])));
        ASSERT_EQ(value(y[n * dim + c]), expected)
            << "dim " << dim << " [" << n << ", " << c << "]";
      }
    }
    EXPECT_TRUE(y.guards_intact() && rstd.guards_intact());
  }
}

TEST(EmulatedFusedKernels, RmsNormBackwardGivesTheGradientWithAndWithoutTheResidualsOnBothPaths) {
  const int64_t rows = 4;
  for (const int64_t dim : {int64_t{1024}, int64_t{100}}) {
    const auto x = random_bf16(rows * dim, 3), weight = random_bf16(dim, 4);
    const auto grad = random_bf16(rows * dim, 5), passed = random_bf16(rows * dim, 6);
    DeviceBuffer<float> rstd(rows);
    DeviceBuffer<__nv_bfloat16> y(rows * dim);
    ASSERT_EQ(llm_rms_norm_forward_cuda(x.data(), weight.data(), y.data(), rstd.data(), rows, dim,
                                        1e-5, kBf16, nullptr),
              0);
    for (const bool with_residual : {false, true}) {
      DeviceBuffer<__nv_bfloat16> grad_x(rows * dim);
      ASSERT_EQ(llm_rms_norm_backward_cuda(grad.data(), x.data(), weight.data(), rstd.data(),
                                           with_residual ? passed.data() : nullptr, grad_x.data(),
                                           rows, dim, kBf16, nullptr),
                0);
      for (int64_t n = 0; n < rows; ++n) {
        // dn = dy * w rounded to bf16, as the composed operations round it; then
        // dx = r (dn - x_hat mean(dn x_hat)) (+ the residual's gradient), rounded once.
        const double r = rstd[n];
        std::vector<double> dn(static_cast<size_t>(dim));
        double dot = 0, dot_magnitude = 0;
        for (int64_t c = 0; c < dim; ++c) {
          dn[c] = round_bf16(value(grad[n * dim + c]) * value(weight[c]));
          dot += dn[c] * value(x[n * dim + c]) * r;
          dot_magnitude += std::fabs(dn[c] * value(x[n * dim + c]) * r);
        }
        const double mean_dot = dot / dim,
                     mean_error = fp32_sum_bound(dim + 2, dot_magnitude) / dim;
        for (int64_t c = 0; c < dim; ++c) {
          const double x_hat = value(x[n * dim + c]) * r;
          const double residual = with_residual ? value(passed[n * dim + c]) : 0.0;
          const double exact = r * (dn[c] - x_hat * mean_dot) + residual;
          const double error =
              r * std::fabs(x_hat) * mean_error +
              8 * std::ldexp(1.0, -24) *
                  (r * (std::fabs(dn[c]) + std::fabs(x_hat * mean_dot)) + std::fabs(residual));
          ASSERT_NEAR(value(grad_x[n * dim + c]), exact, bf16_bound(exact, error))
              << "dim " << dim << " residual " << with_residual << " [" << n << ", " << c << "]";
        }
      }
      EXPECT_TRUE(grad_x.guards_intact());
    }
  }
}

TEST(EmulatedFusedKernels, SwiGluOverJoinedHalvesGivesTheSeparateKernelsBitsBothWays) {
  const int64_t rows = 6, n = 136;  // 17 packs a half
  const auto gate_up = random_bf16(rows * 2 * n, 7, 2.0f), grad = random_bf16(rows * n, 8);
  DeviceBuffer<__nv_bfloat16> gate(rows * n), up(rows * n);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t c = 0; c < n; ++c) {
      gate[i * n + c] = gate_up[i * 2 * n + c];
      up[i * n + c] = gate_up[i * 2 * n + n + c];
    }
  }
  DeviceBuffer<__nv_bfloat16> out(rows * n), halves_out(rows * n);
  ASSERT_EQ(llm_swiglu_forward_cuda(gate.data(), up.data(), out.data(), rows * n, kBf16, nullptr),
            0);
  ASSERT_EQ(
      llm_swiglu_halves_forward_cuda(gate_up.data(), halves_out.data(), rows, n, kBf16, nullptr),
      0);
  for (int64_t i = 0; i < rows * n; ++i) {
    // silu in fp32 (expf and a division: a few ulp) is rounded to bf16, as LibTorch's silu writes
    // it; the product with up is rounded once more.
    const double g = value(gate[i]), silu = g / (1.0 + std::exp(-g)), u = value(up[i]);
    const double silu_error = bf16_bound(silu, 8 * std::ldexp(std::fabs(silu), -24));
    const double exact = silu * u;
    ASSERT_NEAR(value(out[i]), exact,
                bf16_bound(exact, silu_error * std::fabs(u) + std::ldexp(std::fabs(exact), -23)))
        << i;
  }
  expect_same_bits(halves_out.values(), out.values(), "forward");

  DeviceBuffer<__nv_bfloat16> grad_gate(rows * n), grad_up(rows * n), grad_halves(rows * 2 * n);
  ASSERT_EQ(llm_swiglu_backward_cuda(grad.data(), gate.data(), up.data(), grad_gate.data(),
                                     grad_up.data(), rows * n, kBf16, nullptr),
            0);
  ASSERT_EQ(llm_swiglu_halves_backward_cuda(grad.data(), gate_up.data(), grad_halves.data(), rows,
                                            n, kBf16, nullptr),
            0);
  std::vector<__nv_bfloat16> joined(static_cast<size_t>(rows * 2 * n));
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t c = 0; c < n; ++c) {
      joined[i * 2 * n + c] = grad_gate[i * n + c];
      joined[i * 2 * n + n + c] = grad_up[i * n + c];
    }
  }
  expect_same_bits(grad_halves.values(), joined, "backward");
  EXPECT_TRUE(halves_out.guards_intact() && grad_halves.guards_intact());
}

struct RotaryCase {
  int64_t heads, dim, rotary_dim;
  const char* path;
};

// x [batch, heads, tokens, dim] (strided as a slice of a wider buffer), out [batch, tokens, heads,
// dim]; the first rotary_dim of each row rotated, the rest passed through.
void expect_rotary(const RotaryCase& shape, bool transpose) {
  const int64_t batch = 2, tokens = 5, heads = shape.heads, dim = shape.dim;
  const int64_t rotary_dim = shape.rotary_dim, half = rotary_dim / 2, offset = 3;
  const int64_t sizes[4] = {batch, heads, tokens, dim};
  const int64_t row_stride = dim + 8;  // each token's row padded: a strided view
  const int64_t strides[3] = {heads * tokens * row_stride, tokens * row_stride, row_stride};
  const auto x = random_bf16(batch * heads * tokens * row_stride, 9);
  const int64_t table_rows = offset + tokens;
  DeviceBuffer<__nv_bfloat16> cos(table_rows * dim), sin(table_rows * dim);
  for (int64_t p = 0; p < table_rows; ++p) {
    for (int64_t j = 0; j < dim; ++j) {
      const double angle = p * std::pow(10000.0, -2.0 * (j % std::max<int64_t>(half, 1)) /
                                                     std::max<int64_t>(rotary_dim, 1));
      cos[p * dim + j] =
          __float2bfloat16_rn(j < rotary_dim ? static_cast<float>(std::cos(angle)) : 1.0f);
      const double signed_sin = j < half ? -std::sin(angle) : std::sin(angle);
      sin[p * dim + j] =
          __float2bfloat16_rn(j < rotary_dim ? static_cast<float>(signed_sin) : 0.0f);
    }
  }
  DeviceBuffer<__nv_bfloat16> out(batch * tokens * heads * dim);
  ASSERT_EQ(llm_rotary_cuda(x.data(), sizes, strides, cos.data(), sin.data(), nullptr, offset,
                            rotary_dim, transpose ? 1 : 0, out.data(), kBf16, nullptr),
            0);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t t = 0; t < tokens; ++t) {
        const int64_t p = offset + t;
        const __nv_bfloat16* row = x.data() + b * strides[0] + h * strides[1] + t * strides[2];
        for (int64_t j = 0; j < dim; ++j) {
          // Each product is exact in fp32 (bf16 times bf16) and rounded to bf16, as the composed
          // operations write it; their sum is exact in fp32 and rounded once: exact bits.
          double expected = value(row[j]);
          if (j < rotary_dim) {
            const int64_t partner = j < half ? j + half : j - half;
            const double direct = round_bf16(value(row[j]) * value(cos[p * dim + j]));
            const double swapped =
                round_bf16(value(row[partner]) * value(sin[p * dim + (transpose ? partner : j)]));
            expected = round_bf16(static_cast<float>(direct) + static_cast<float>(swapped));
          }
          const double got = value(out[((b * tokens + t) * heads + h) * dim + j]);
          ASSERT_EQ(got, expected) << shape.path << (transpose ? " backward" : " forward") << " ["
                                   << b << ", " << h << ", " << t << ", " << j << "]";
        }
      }
    }
  }
  EXPECT_TRUE(out.guards_intact());
}

TEST(EmulatedFusedKernels, RotaryRotatesTheRotaryDimsOnEveryLaunchPathBothWays) {
  for (const RotaryCase& shape : {RotaryCase{4, 64, 64, "four heads a thread"},
                                  RotaryCase{3, 64, 32, "one head a thread, partial rotary"},
                                  RotaryCase{2, 24, 8, "element a thread"}}) {
    for (const bool transpose : {false, true}) expect_rotary(shape, transpose);
  }
}

}  // namespace
}  // namespace llm::test
