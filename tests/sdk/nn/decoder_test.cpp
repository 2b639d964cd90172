// The shared decoder layout's MLP: silu(x W_gate^T) * (x W_up^T) through down_proj, its value and
// input gradient on the CPU and on CUDA within bounds that follow the roundings.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>

#include "llm/nn/decoder.hpp"

namespace llm {
namespace {

DecoderSpec mlp_spec(int64_t hidden, int64_t inner) {
  DecoderSpec spec;
  spec.common.hidden_size = hidden;
  spec.intermediate_size = inner;
  spec.hidden_act = "silu";
  spec.common.source = "test config.json";
  return spec;
}

DecoderMlp make_mlp(int64_t hidden, int64_t inner, const torch::TensorOptions& options) {
  DecoderMlp mlp(mlp_spec(hidden, inner), options);
  torch::NoGradGuard no_grad;
  for (auto& p : mlp->parameters()) p.copy_(torch::randn(p.sizes()) / std::sqrt(hidden));
  return mlp;
}

TEST(DecoderMlp, ComputesSiluOfGateTimesUpThroughDown) {
  torch::manual_seed(3);
  const int64_t hidden = 16, inner = 24;
  auto mlp = make_mlp(hidden, inner, torch::TensorOptions().dtype(torch::kFloat));
  const auto& gate = mlp->gate_proj->weight;
  const auto& up = mlp->up_proj->weight;
  ASSERT_EQ(gate.sizes(), torch::IntArrayRef({inner, hidden}));
  ASSERT_EQ(up.sizes(), torch::IntArrayRef({inner, hidden}));
  const auto x = torch::randn({2, 3, hidden});
  const auto expected = torch::linear(torch::silu(torch::linear(x, gate)) * torch::linear(x, up),
                                      mlp->down_proj->weight);
  EXPECT_TRUE(torch::allclose(mlp->forward(x), expected, 1e-5, 1e-6));
}

// On CUDA in bf16: the value and x's gradient against the same computation in fp64, each element
// within a bound that follows its roundings. Every bf16 result (gate, up, silu, their product, the
// output; dy W_down, the two SwiGLU gradients, x's gradient) is its operands' exact function
// within a 2^-8 step, and those steps reach the element through the products as the operands'
// magnitudes do: |silu(g)| + |g| for silu's (its slope is at most 1.1), |u| (1 + |g|) for silu's
// gradient. Eight steps of those magnitudes bound them all.
TEST(DecoderMlp, ValueAndInputGradientAreWithinTheirRoundingsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(5);
  const int64_t hidden = 64, inner = 96;
  const auto options = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  auto mlp = make_mlp(hidden, inner, options);
  const auto x = torch::randn({2, 24, hidden}).to(options);
  const auto dy = torch::randn({2, 24, hidden}).to(options);
  const auto d = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble); };
  const auto wg = d(mlp->gate_proj->weight), wu = d(mlp->up_proj->weight);
  const auto wd = d(mlp->down_proj->weight);
  auto x64 = d(x).requires_grad_(true);
  const auto g64 = torch::linear(x64, wg), u64 = torch::linear(x64, wu);
  const auto y64 = torch::linear(torch::silu(g64) * u64, wd);
  y64.backward(d(dy));
  const auto g = g64.detach().abs(), u = u64.detach().abs();
  const auto silu = torch::silu(g64.detach()).abs();
  const auto value_magnitude = torch::linear((silu + g) * u, wd.abs()) + y64.detach().abs();
  const auto dh = torch::linear(d(dy).abs(), wd.abs().t());
  const auto grad_magnitude = torch::linear(dh * u * (1 + g), wg.abs().t()) +
                              torch::linear(dh * (silu + g), wu.abs().t()) + x64.grad().abs();
  const double steps = 8 * std::ldexp(1.0, -8);
  auto xg = x.clone().requires_grad_(true);
  const auto y = mlp->forward(xg);
  y.backward(dy);
  const auto value_excess =
      ((d(y) - y64.detach()).abs() - steps * value_magnitude).max().item<double>();
  EXPECT_LE(value_excess, 0.0) << "value";
  const auto grad_excess =
      ((d(xg.grad()) - x64.grad()).abs() - steps * grad_magnitude).max().item<double>();
  EXPECT_LE(grad_excess, 0.0) << "x's gradient";
}

}  // namespace
}  // namespace llm
