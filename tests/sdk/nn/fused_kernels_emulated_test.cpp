// The fused CUDA kernels (sdk/src/nn/fused_kernels.cu) run on the CPU under
// tests/support/cuda_emulation: RMSNorm, SwiGLU on its pack and element paths, and rotary on
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

// |bf16(v) - exact| where |v - exact| <= fp32_error.
double bf16_bound(double exact, double fp32_error) {
  return rounded_bound<__nv_bfloat16>(exact, fp32_error);
}

TEST(EmulatedFusedKernels, RmsNormForwardNormalisesRoundsAndScalesOnBothPaths) {
  for_every_schedule([&] {
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
        EXPECT_NEAR(rstd[n], exact,
                    exact * (fp32_sum_bound(dim + 2, 1.0) + 4 * std::ldexp(1.0, -24)))
            << "row " << n;
        for (int64_t c = 0; c < dim; ++c) {
          // The kernel's own rstd gives the exact expected bits: x * rstd rounded, times the
          // weight, rounded.
          const double normalised = round_bf16(static_cast<float>(value(x[n * dim + c])) * rstd[n]);
          const double expected =
              round_bf16(static_cast<float>(normalised) * static_cast<float>(value(weight[c])));
          ASSERT_EQ(value(y[n * dim + c]), expected)
              << "dim " << dim << " [" << n << ", " << c << "]";
        }
      }
      EXPECT_TRUE(y.guards_intact() && rstd.guards_intact());
    }
  });
}

TEST(EmulatedFusedKernels, RmsNormBackwardGivesTheGradientWithAndWithoutTheResidualsOnBothPaths) {
  for_every_schedule([&] {
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
  });
}

// The pack path (whole 16-byte packs): forward within its roundings of silu(g) u; backward the
// element path's bits, which the same per-element arithmetic gives wherever it runs.
TEST(EmulatedFusedKernels, SwiGluGivesTheRoundedProductOnThePackPathAndTheElementPathsGradients) {
  for_every_schedule([&] {
    const int64_t n = 6 * 136;  // whole packs
    const auto gate = random_bf16(n, 7, 2.0f), up = random_bf16(n, 9), grad = random_bf16(n, 8);
    DeviceBuffer<__nv_bfloat16> out(n);
    ASSERT_EQ(llm_swiglu_forward_cuda(gate.data(), up.data(), out.data(), n, kBf16, nullptr), 0);
    for (int64_t i = 0; i < n; ++i) {
      // silu in fp32 (expf and a division: a few ulp) is rounded to bf16, as LibTorch's silu writes
      // it; the product with up is rounded once more.
      const double g = value(gate[i]), silu = g / (1.0 + std::exp(-g)), u = value(up[i]);
      const double silu_error = bf16_bound(silu, 8 * std::ldexp(std::fabs(silu), -24));
      const double exact = silu * u;
      ASSERT_NEAR(value(out[i]), exact,
                  bf16_bound(exact, silu_error * std::fabs(u) + std::ldexp(std::fabs(exact), -23)))
          << i;
    }
    DeviceBuffer<__nv_bfloat16> grad_gate(n), grad_up(n), element_gate(n - 1), element_up(n - 1);
    ASSERT_EQ(llm_swiglu_backward_cuda(grad.data(), gate.data(), up.data(), grad_gate.data(),
                                       grad_up.data(), n, kBf16, nullptr),
              0);
    ASSERT_EQ(llm_swiglu_backward_cuda(grad.data(), gate.data(), up.data(), element_gate.data(),
                                       element_up.data(), n - 1, kBf16, nullptr),
              0);
    auto packed_gate = grad_gate.values(), packed_up = grad_up.values();
    packed_gate.pop_back();
    packed_up.pop_back();
    expect_same_bits(packed_gate, element_gate.values(), "gate's gradient");
    expect_same_bits(packed_up, element_up.values(), "up's gradient");
    EXPECT_TRUE(out.guards_intact() && grad_gate.guards_intact() && grad_up.guards_intact() &&
                element_gate.guards_intact() && element_up.guards_intact());
  });
}

TEST(EmulatedFusedKernels, SwiGluGivesTheRoundedProductOnTheElementPathToo) {
  for_every_schedule([&] {
    const int64_t n = 301;  // not whole packs: one element a thread
    const auto gate = random_bf16(n, 40, 2.0f), up = random_bf16(n, 41);
    DeviceBuffer<__nv_bfloat16> out(n);
    ASSERT_EQ(llm_swiglu_forward_cuda(gate.data(), up.data(), out.data(), n, kBf16, nullptr), 0);
    for (int64_t i = 0; i < n; ++i) {
      const double g = value(gate[i]), silu = g / (1.0 + std::exp(-g)), u = value(up[i]);
      const double silu_error = bf16_bound(silu, 8 * std::ldexp(std::fabs(silu), -24));
      ASSERT_NEAR(
          value(out[i]), silu * u,
          bf16_bound(silu * u, silu_error * std::fabs(u) + std::ldexp(std::fabs(silu * u), -23)))
          << i;
    }
    EXPECT_TRUE(out.guards_intact());
  });
}

TEST(EmulatedFusedKernels, AddThreeRoundsAfterEachAddOnBothPaths) {
  for_every_schedule([&] {
    for (const int64_t n : {int64_t{4096}, int64_t{301}}) {
      const auto a = random_bf16(n, 42), b = random_bf16(n, 43), c = random_bf16(n, 44);
      DeviceBuffer<__nv_bfloat16> out(n);
      ASSERT_EQ(llm_add_three_cuda(a.data(), b.data(), c.data(), out.data(), n, kBf16, nullptr), 0);
      for (int64_t i = 0; i < n; ++i) {
        // (a + b) rounded, then + c rounded: each sum of two bf16 values within fp32's range of
        // exactness here (|values| < 8, exponents within 16 of each other) or rounded once more.
        const double ab = round_bf16(value(a[i]) + value(b[i]));
        const double exact = ab + value(c[i]);
        ASSERT_NEAR(value(out[i]), exact, bf16_bound(exact, std::ldexp(std::fabs(exact), -24)))
            << "n " << n << " [" << i << "]";
      }
      EXPECT_TRUE(out.guards_intact());
    }
  });
}

TEST(EmulatedFusedKernels, GemvGivesTheRowSumsWithAndWithoutBias) {
  for_every_schedule([&] {
    const int64_t rows = 37, cols = 520;  // a partial block of warps
    const auto w = random_bf16(rows * cols, 45), x = random_bf16(cols, 46),
               bias = random_bf16(rows, 47);
    for (const bool with_bias : {false, true}) {
      DeviceBuffer<__nv_bfloat16> y(rows);
      ASSERT_EQ(llm_gemv_cuda(w.data(), x.data(), with_bias ? bias.data() : nullptr, y.data(), rows,
                              cols, kBf16, nullptr),
                0);
      for (int64_t n = 0; n < rows; ++n) {
        double sum = with_bias ? value(bias[n]) : 0.0, magnitude = std::fabs(sum);
        for (int64_t c = 0; c < cols; ++c) {
          sum += value(w[n * cols + c]) * value(x[c]);
          magnitude += std::fabs(value(w[n * cols + c]) * value(x[c]));
        }
        ASSERT_NEAR(value(y[n]), sum, bf16_bound(sum, fp32_sum_bound(cols + 1, magnitude)))
            << "bias " << with_bias << " row " << n;
      }
      EXPECT_TRUE(y.guards_intact());
    }
  });
}

// Two LayerNorms of one x: the statistics against double, each output within its rounding of
// the kernel's own statistics' x_hat; backward against the formula in double.
TEST(EmulatedFusedKernels, LayerNormPairGivesBothNormsAndTheirJointGradient) {
  for_every_schedule([&] {
    const int64_t rows = 3, dim = 264;
    const double eps = 1e-5, u = std::ldexp(1.0, -24);
    const auto x = random_bf16(rows * dim, 48, 3.0f);
    const auto w1 = random_bf16(dim, 49), b1 = random_bf16(dim, 50), w2 = random_bf16(dim, 51),
               b2 = random_bf16(dim, 52);
    DeviceBuffer<__nv_bfloat16> y1(rows * dim), y2(rows * dim);
    DeviceBuffer<float> mean(rows), rstd(rows);
    ASSERT_EQ(llm_layer_norm_pair_forward_cuda(x.data(), w1.data(), b1.data(), w2.data(), b2.data(),
                                               y1.data(), y2.data(), mean.data(), rstd.data(), rows,
                                               dim, eps, kBf16, nullptr),
              0);
    for (int64_t n = 0; n < rows; ++n) {
      double sum = 0, magnitude = 0;
      for (int64_t c = 0; c < dim; ++c) sum += value(x[n * dim + c]);
      for (int64_t c = 0; c < dim; ++c) magnitude += std::fabs(value(x[n * dim + c]));
      const double exact_mean = sum / dim;
      double squares = 0;
      for (int64_t c = 0; c < dim; ++c) {
        squares += (value(x[n * dim + c]) - exact_mean) * (value(x[n * dim + c]) - exact_mean);
      }
      const double exact_rstd = 1.0 / std::sqrt(squares / dim + eps);
      ASSERT_NEAR(mean[n], exact_mean, fp32_sum_bound(dim + 1, magnitude) / dim);
      // The mean square about an fp32 mean (its error enters squared), then rsqrt: a relative
      // error of the sum's bound plus a few ulp.
      ASSERT_NEAR(rstd[n], exact_rstd, exact_rstd * (fp32_sum_bound(dim + 4, 1.0) + 8 * u));
      for (int64_t c = 0; c < dim; ++c) {
        const double x_hat = (value(x[n * dim + c]) - mean[n]) * static_cast<double>(rstd[n]);
        for (const auto& [y, w, b] :
             {std::make_tuple(&y1, &w1, &b1), std::make_tuple(&y2, &w2, &b2)}) {
          const double exact = x_hat * value((*w)[c]) + value((*b)[c]);
          const double error =
              4 * u * (std::fabs(x_hat * value((*w)[c])) + std::fabs(value((*b)[c])));
          ASSERT_NEAR(value((*y)[n * dim + c]), exact, bf16_bound(exact, error)) << n << ", " << c;
        }
      }
    }
    const auto dy1 = random_bf16(rows * dim, 53), dy2 = random_bf16(rows * dim, 54),
               dres = random_bf16(rows * dim, 55);
    for (const bool with_residual : {false, true}) {
      DeviceBuffer<__nv_bfloat16> grad_x(rows * dim);
      ASSERT_EQ(llm_layer_norm_pair_backward_cuda(dy1.data(), dy2.data(),
                                                  with_residual ? dres.data() : nullptr, x.data(),
                                                  w1.data(), w2.data(), mean.data(), rstd.data(),
                                                  grad_x.data(), rows, dim, kBf16, nullptr),
                0);
      for (int64_t n = 0; n < rows; ++n) {
        const double r = rstd[n];
        std::vector<double> g(static_cast<size_t>(dim)), x_hat(static_cast<size_t>(dim));
        double sum_g = 0, sum_gx = 0, abs_g = 0, abs_gx = 0;
        for (int64_t c = 0; c < dim; ++c) {
          const int64_t i = n * dim + c;
          g[c] = value(dy1[i]) * value(w1[c]) + value(dy2[i]) * value(w2[c]);
          x_hat[c] = (value(x[i]) - mean[n]) * r;
          sum_g += g[c], sum_gx += g[c] * x_hat[c];
          abs_g += std::fabs(g[c]), abs_gx += std::fabs(g[c] * x_hat[c]);
        }
        const double mean_g = sum_g / dim, mean_gx = sum_gx / dim;
        // g and x_hat carry a few ulp each; the means the sums' bounds on top.
        const double mean_g_error = (fp32_sum_bound(dim + 2, abs_g) + 3 * u * abs_g) / dim;
        const double mean_gx_error = (fp32_sum_bound(dim + 2, abs_gx) + 6 * u * abs_gx) / dim;
        for (int64_t c = 0; c < dim; ++c) {
          const double residual = with_residual ? value(dres[n * dim + c]) : 0.0;
          const double inner = g[c] - mean_g - x_hat[c] * mean_gx;
          const double exact = residual + r * inner;
          const double inner_error =
              mean_g_error + std::fabs(x_hat[c]) * mean_gx_error +
              6 * u * (std::fabs(g[c]) + std::fabs(mean_g) + std::fabs(x_hat[c] * mean_gx));
          const double error =
              r * inner_error + 2 * u * (std::fabs(r * inner) + std::fabs(residual));
          ASSERT_NEAR(value(grad_x[n * dim + c]), exact, bf16_bound(exact, error))
              << "residual " << with_residual << " [" << n << ", " << c << "]";
        }
      }
      EXPECT_TRUE(grad_x.guards_intact());
    }
  });
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
  for_every_schedule([&] {
    for (const RotaryCase& shape : {RotaryCase{4, 64, 64, "four heads a thread"},
                                    RotaryCase{3, 64, 32, "one head a thread, partial rotary"},
                                    RotaryCase{2, 24, 8, "element a thread"}}) {
      for (const bool transpose : {false, true}) expect_rotary(shape, transpose);
    }
  });
}

// q, k and v interleaved per head as GPT-NeoX's projection lays them out ([batch, tokens, heads,
// 3, dim]): the parts kernel moves them to [batch, heads, tokens, dim], rotating q and k, and the
// in-place kernel rotates q and k where they are; both as llm_rotary_cuda rotates each part.
TEST(EmulatedFusedKernels, RotaryPartsAndInPlaceRotateAsTheRotaryKernel) {
  for_every_schedule([&] {
    const int64_t batch = 2, tokens = 3, heads = 4, dim = 32, rotary_dim = 16, offset = 1;
    const int64_t sizes[4] = {batch, heads, tokens, dim};
    const int64_t in_strides[3] = {tokens * heads * 3 * dim, 3 * dim, heads * 3 * dim};
    const auto qkv = random_bf16(batch * tokens * heads * 3 * dim, 80);
    const int64_t table_rows = offset + tokens;
    const auto cos = random_bf16(table_rows * dim, 81), sin = random_bf16(table_rows * dim, 82);
    for (const int transpose : {0, 1}) {
      // Each part through llm_rotary_cuda: out [batch, tokens, heads, dim].
      std::vector<std::vector<__nv_bfloat16>> expected;
      for (int part = 0; part < 3; ++part) {
        DeviceBuffer<__nv_bfloat16> one(batch * tokens * heads * dim);
        ASSERT_EQ(llm_rotary_cuda(qkv.data() + part * dim, sizes, in_strides, cos.data(),
                                  sin.data(), nullptr, offset, part < 2 ? rotary_dim : 0, transpose,
                                  one.data(), kBf16, nullptr),
                  0);
        expected.push_back(one.values());
      }
      DeviceBuffer<__nv_bfloat16> moved(3 * batch * heads * tokens * dim);
      LlmRotaryParts parts{};
      for (int part = 0; part < 3; ++part) {
        parts.in[part] = qkv.data() + part * dim;
        parts.out[part] = moved.data() + part * batch * heads * tokens * dim;
        for (int d = 0; d < 3; ++d) parts.in_strides[part][d] = in_strides[d];
        parts.out_strides[part][0] = heads * tokens * dim;
        parts.out_strides[part][1] = tokens * dim;
        parts.out_strides[part][2] = dim;
      }
      ASSERT_EQ(llm_rotary_parts_cuda(&parts, 3, 2, sizes, cos.data(), sin.data(), nullptr, offset,
                                      rotary_dim, transpose, kBf16, nullptr),
                0);
      auto in_place = random_bf16(batch * tokens * heads * 3 * dim, 80);  // qkv again
      if (transpose == 0) {
        ASSERT_EQ(llm_rotary_in_place_cuda(in_place.data(), 2, dim, sizes, in_strides, cos.data(),
                                           sin.data(), nullptr, offset, rotary_dim, kBf16, nullptr),
                  0);
      }
      for (int part = 0; part < 3; ++part) {
        for (int64_t b = 0; b < batch; ++b) {
          for (int64_t h = 0; h < heads; ++h) {
            for (int64_t t = 0; t < tokens; ++t) {
              for (int64_t j = 0; j < dim; ++j) {
                const __nv_bfloat16 want = expected[part][((b * tokens + t) * heads + h) * dim + j];
                const __nv_bfloat16 got =
                    moved[(((part * batch + b) * heads + h) * tokens + t) * dim + j];
                ASSERT_EQ(got.bits, want.bits)
                    << "parts: part " << part << " transpose " << transpose << " [" << b << ", "
                    << h << ", " << t << ", " << j << "]";
                if (transpose != 0) continue;
                const int64_t at =
                    b * in_strides[0] + h * in_strides[1] + t * in_strides[2] + part * dim + j;
                ASSERT_EQ(in_place[at].bits, want.bits)
                    << "in place: part " << part << " [" << b << ", " << h << ", " << t << ", " << j
                    << "]";
              }
            }
          }
        }
      }
      EXPECT_TRUE(moved.guards_intact() && in_place.guards_intact());
    }
  });
}

}  // namespace
}  // namespace llm::test
