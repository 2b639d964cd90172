// The frozen products in training (sdk/src/nn/tuned_gemm.cpp), reached through AdaptableLinear
// without a bias: on CUDA each shape's product, both ways, goes through the fastest of at::mm
// and cuBLASLt's offered algorithms, timed when the shape is first seen. Whichever is picked, the
// value and x's gradient are the exact sums within a bf16 product's rounding, and the choice is
// kept, so a shape's second run gives the same bits.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "llm/nn/linear.hpp"

namespace llm {
namespace {

struct Shape {
  std::vector<int64_t> x;  // [..., in]
  int64_t out;
};

struct Run {
  torch::Tensor y, grad_x;
};

Run run_layer(AdaptableLinear& layer, const torch::Tensor& x_in, const torch::Tensor& dy) {
  auto x = x_in.clone().requires_grad_(true);
  const auto y = layer(x);
  y.backward(dy);
  return {y.detach(), x.grad()};
}

// ours within u |exact| + 3 u M + 2^-16 max |exact|: M the sum of the product's absolute terms
// (bf16 operands give exact fp32 products; the sums' order and any partial rounding of a split
// sum stay inside 3 u M), u the output type's relative step.
void expect_within_product_rounding(const torch::Tensor& ours, const torch::Tensor& exact_value,
                                    const torch::Tensor& magnitude, const std::string& what) {
  ASSERT_EQ(ours.sizes(), exact_value.sizes()) << what;
  const double u =
      ours.scalar_type() == torch::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -23);
  const auto a = ours.to(torch::kCPU, torch::kDouble);
  const double scale = exact_value.abs().max().item<double>();
  const auto bound = exact_value.abs() * u + magnitude * (3 * u) + std::ldexp(1.0, -16) * scale;
  const auto excess = ((a - exact_value).abs() - bound).max().item<double>();
  EXPECT_LE(excess, 0.0) << what << ": max |ours - exact| "
                         << (a - exact_value).abs().max().item<double>();
}

std::vector<torch::Device> devices() {
  std::vector<torch::Device> list{torch::kCPU};
  if (torch::cuda::is_available()) list.emplace_back(torch::kCUDA);
  return list;
}

// Shapes: a batch of rows (the tuned path), a single row, and widths that are not whole 16-byte
// packs (60 in, 36 out: at::linear's path on CUDA too).
const std::vector<Shape> kShapes = {{{3, 100, 512}, 768}, {{1, 1, 256}, 128}, {{2, 50, 60}, 36}};

TEST(TunedFrozenLinear, ValueAndInputGradientAreTheExactSumsWithinTheProductsRoundingOnCpuAndCuda) {
  for (const auto& device : devices()) {
    const auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
    const auto options = torch::TensorOptions().dtype(dtype).device(device);
    for (const auto& shape : kShapes) {
      torch::manual_seed(shape.out);
      const int64_t in = shape.x.back();
      AdaptableLinear layer(in, shape.out, /*bias=*/false, options);
      {
        torch::NoGradGuard no_grad;
        layer->weight.copy_(torch::randn({shape.out, in}) / std::sqrt(double(in)));
      }
      const auto x = torch::randn(shape.x).to(options);
      auto dy_shape = shape.x;
      dy_shape.back() = shape.out;
      const auto dy = torch::randn(dy_shape).to(options);
      const auto ours = run_layer(layer, x, dy);

      const auto d = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble); };
      const auto W = d(layer->weight), x64 = d(x), dy64 = d(dy);
      const std::string label = device.str() + " x " + std::to_string(x.numel() / in) + " rows, " +
                                std::to_string(in) + " -> " + std::to_string(shape.out);
      expect_within_product_rounding(ours.y, x64.matmul(W.t()), x64.abs().matmul(W.abs().t()),
                                     label + " value");
      expect_within_product_rounding(ours.grad_x, dy64.matmul(W), dy64.abs().matmul(W.abs()),
                                     label + " grad x");
    }
  }
}

// forward_onto(residual, x) = residual + x W^T: on CUDA in training the product's epilogue adds the
// residual (rounded once, so within the same bound of the exact sum); the residual's gradient is
// dy itself and x's the exact dy W within the product's rounding.
TEST(TunedFrozenLinear, ResidualAddedByTheProductIsTheExactSumAndTakesDyAsItIsOnCpuAndCuda) {
  for (const auto& device : devices()) {
    const auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
    const auto options = torch::TensorOptions().dtype(dtype).device(device);
    for (const auto& shape : kShapes) {
      torch::manual_seed(shape.out + 1);
      const int64_t in = shape.x.back();
      AdaptableLinear layer(in, shape.out, /*bias=*/false, options);
      {
        torch::NoGradGuard no_grad;
        layer->weight.copy_(torch::randn({shape.out, in}) / std::sqrt(double(in)));
      }
      auto out_shape = shape.x;
      out_shape.back() = shape.out;
      auto x = torch::randn(shape.x).to(options).requires_grad_(true);
      auto residual = torch::randn(out_shape).to(options).requires_grad_(true);
      const auto residual_before = residual.detach().clone();
      const auto dy = torch::randn(out_shape).to(options);
      const auto y = layer->forward_onto(residual, x);
      // On CUDA, rows of whole 16-byte packs take the product's epilogue (60 -> 36 does not).
      const bool epilogue = device.is_cuda() && in % 8 == 0;
      EXPECT_EQ(y.grad_fn()->name().find("TunedLinearOnto") != std::string::npos, epilogue)
          << y.grad_fn()->name();
      y.backward(dy);
      EXPECT_TRUE(torch::equal(residual.detach(), residual_before)) << "the residual is read only";

      const auto d = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble); };
      const auto W = d(layer->weight), x64 = d(x), dy64 = d(dy), r64 = d(residual);
      const std::string label = device.str() + " x " + std::to_string(x.numel() / in) + " rows, " +
                                std::to_string(in) + " -> " + std::to_string(shape.out);
      expect_within_product_rounding(y.detach(), r64 + x64.matmul(W.t()),
                                     x64.abs().matmul(W.abs().t()), label + " value");
      EXPECT_TRUE(torch::equal(residual.grad(), dy)) << label << " residual's gradient";
      expect_within_product_rounding(x.grad(), dy64.matmul(W), dy64.abs().matmul(W.abs()),
                                     label + " grad x");
    }
  }
}

TEST(TunedFrozenLinear, SecondRunOfAShapeGivesTheSameBitsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto options = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  torch::manual_seed(3);
  AdaptableLinear layer(1024, 512, /*bias=*/false, options);
  {
    torch::NoGradGuard no_grad;
    layer->weight.copy_(torch::randn({512, 1024}) / 32);
  }
  const auto x = torch::randn({640, 1024}).to(options);
  const auto dy = torch::randn({640, 512}).to(options);
  const auto first = run_layer(layer, x, dy);
  const auto second = run_layer(layer, x, dy);
  EXPECT_TRUE(torch::equal(first.y, second.y));
  EXPECT_TRUE(torch::equal(first.grad_x, second.grad_x));
}

}  // namespace
}  // namespace llm
