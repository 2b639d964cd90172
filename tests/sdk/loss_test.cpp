#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>

#include "llm/loss.hpp"

namespace llm {
namespace {

TEST(MaskedCrossEntropy, AveragesNextTokenLossOverUnmaskedTargetsOnly) {
  // Batch 1, T = 3, V = 2. Targets are labels[1:] = {-100, 1}: only logits[1] -> 1 counts.
  const auto logits = torch::tensor({{{0.0f, 0.0f}, {1.0f, 3.0f}, {9.0f, 9.0f}}});
  const auto labels = torch::tensor({{0, -100, 1}}, torch::kLong);
  const auto loss = masked_cross_entropy(logits, labels);
  const double expected = -std::log(std::exp(3.0) / (std::exp(1.0) + std::exp(3.0)));
  EXPECT_EQ(loss.target_tokens.item<int64_t>(), 1);
  EXPECT_NEAR(loss.mean.item<double>(), expected, 1e-6);
  EXPECT_NEAR(loss.sum.item<double>(), expected, 1e-6);
}

TEST(MaskedCrossEntropy, Bf16LogitsAreScoredInFp32) {
  const auto logits = torch::randn({2, 5, 7});
  const auto labels = torch::randint(0, 7, {2, 5}, torch::kLong);
  const auto loss16 = masked_cross_entropy(logits.to(torch::kBFloat16), labels);
  const auto loss32 = masked_cross_entropy(logits.to(torch::kBFloat16).to(torch::kFloat), labels);
  EXPECT_EQ(loss16.mean.scalar_type(), torch::kFloat);
  EXPECT_EQ(loss16.mean.item<double>(), loss32.mean.item<double>());
  EXPECT_EQ(loss16.target_tokens.item<int64_t>(), 8);
}

TEST(MaskedCrossEntropy, AllMaskedGivesZeroLossAndNoTargets) {
  const auto logits = torch::randn({1, 4, 3}).requires_grad_(true);
  const auto labels = torch::full({1, 4}, -100, torch::kLong);
  const auto loss = masked_cross_entropy(logits, labels);
  EXPECT_EQ(loss.target_tokens.item<int64_t>(), 0);
  EXPECT_EQ(loss.mean.item<double>(), 0.0);
  loss.mean.backward();  // still part of the graph
  EXPECT_EQ(logits.grad().abs().sum().item<double>(), 0.0);
}

// The blocked fp32 computation against log_softmax + nll_loss over an fp32 copy, value and
// gradient, with ignored rows and a last block shorter than the others.
TEST(SummedCrossEntropy, MatchesTorchCrossEntropyInValueAndGradientAcrossBlocks) {
  torch::manual_seed(3);
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const auto base = (torch::randn({23, 37}) * 4).to(dtype);
    auto targets = torch::randint(0, 37, {23}, torch::kLong);
    targets[4] = -100;
    targets[17] = -100;
    const auto ours_in = base.clone().requires_grad_(true);
    const auto torch_in = base.clone().requires_grad_(true);
    const auto ours = summed_cross_entropy(ours_in, targets, -100, /*rows_per_block=*/5);
    const auto expected = torch::nn::functional::cross_entropy(
        torch_in.to(torch::kFloat), targets,
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
    EXPECT_EQ(ours.scalar_type(), torch::kFloat);
    EXPECT_NEAR(ours.item<double>(), expected.item<double>(), 1e-4);
    (ours * 0.5).backward();
    (expected * 0.5).backward();
    EXPECT_EQ(ours_in.grad().scalar_type(), dtype);
    const double tolerance = dtype == torch::kFloat ? 1e-6 : 1e-2;
    EXPECT_LT((ours_in.grad().to(torch::kFloat) - torch_in.grad().to(torch::kFloat))
                  .abs()
                  .max()
                  .item<double>(),
              tolerance);
    EXPECT_EQ(ours_in.grad()[4].abs().sum().item<double>(), 0.0);  // ignored rows get nothing
  }
}

// The fused head against the unfused product + summed_cross_entropy: value and hidden-state
// gradient in fp32 (the same fp32 operations in a different grouping: within a few fp32 ulps of
// the sums involved), ignored rows, several blocks with a short last one.
TEST(SummedLinearCrossEntropy, EqualsTheUnfusedHeadAndLossInValueAndHiddenGradient) {
  torch::manual_seed(5);
  const auto hidden = torch::randn({23, 16});
  const auto weight = torch::randn({41, 16}) * 0.5;
  auto targets = torch::randint(0, 41, {23}, torch::kLong);
  targets[3] = -100;
  targets[22] = -100;
  const auto fused_in = hidden.clone().requires_grad_(true);
  const auto plain_in = hidden.clone().requires_grad_(true);
  const auto fused = summed_linear_cross_entropy(fused_in, weight, targets, -100, 5);
  const auto plain = summed_cross_entropy(torch::matmul(plain_in, weight.t()), targets, -100, 5);
  EXPECT_EQ(fused.scalar_type(), torch::kFloat);
  EXPECT_NEAR(fused.item<double>(), plain.item<double>(), 1e-5 * plain.item<double>());
  (fused * 0.25).backward();
  (plain * 0.25).backward();
  const double largest = plain_in.grad().abs().max().item<double>();
  EXPECT_LT((fused_in.grad() - plain_in.grad()).abs().max().item<double>(), 1e-5 * largest);
  EXPECT_EQ(fused_in.grad()[3].abs().sum().item<double>(), 0.0);  // ignored rows get nothing
  EXPECT_EQ(fused_in.grad()[22].abs().sum().item<double>(), 0.0);
}

// bf16 hidden states and weight: the logits are the same bf16 products in both paths, so the
// value agrees to fp32 summation order, and the gradient (rounded to bf16 before the product with
// W, as the unfused backward rounds its logits' gradient) to bf16 rounding of the result.
TEST(SummedLinearCrossEntropy, Bf16GradientIsTheUnfusedOneToBf16Rounding) {
  torch::manual_seed(6);
  const auto hidden = torch::randn({19, 32}).to(torch::kBFloat16);
  const auto weight = (torch::randn({50, 32}) * 0.3).to(torch::kBFloat16);
  const auto targets = torch::randint(0, 50, {19}, torch::kLong);
  const auto fused_in = hidden.clone().requires_grad_(true);
  const auto plain_in = hidden.clone().requires_grad_(true);
  const auto fused = summed_linear_cross_entropy(fused_in, weight, targets, -100, 4);
  const auto plain = summed_cross_entropy(torch::matmul(plain_in, weight.t()), targets);
  EXPECT_NEAR(fused.item<double>(), plain.item<double>(), 1e-5 * plain.item<double>());
  fused.backward();
  plain.backward();
  EXPECT_EQ(fused_in.grad().scalar_type(), torch::kBFloat16);
  const auto f = fused_in.grad().to(torch::kFloat);
  const auto p = plain_in.grad().to(torch::kFloat);
  // Both round the same fp32 product once to bf16 (relative 2^-8); allow two roundings.
  EXPECT_LE((f - p).abs().max().item<double>(),
            2 * std::ldexp(1.0, -8) * p.abs().max().item<double>());
}

// On CUDA each block's loss and logits' gradient come from one kernel (fused_ops.hpp,
// cross_entropy_rows) instead of LibTorch's operations: the same fp32 arithmetic in another
// order, so the value agrees to fp32 summation order and the bf16 gradient to two bf16 roundings.
// Vocabularies 64 (the kernel's 16-byte packs) and 50 (element by element); ignored rows.
TEST(SummedLinearCrossEntropy, CudaKernelGivesTheUnfusedValueAndGradient) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const int64_t vocab : {64, 50}) {
    torch::manual_seed(8);
    const auto cuda = torch::TensorOptions().device(torch::kCUDA);
    const auto hidden = torch::randn({37, 32}).to(cuda.dtype(torch::kBFloat16));
    const auto weight = (torch::randn({vocab, 32}) * 0.3).to(cuda.dtype(torch::kBFloat16));
    auto targets = torch::randint(0, vocab, {37}, torch::kLong);
    targets[2] = -100;
    targets = targets.to(torch::kCUDA);
    const auto fused_in = hidden.clone().requires_grad_(true);
    const auto plain_in = hidden.clone().requires_grad_(true);
    const auto fused = summed_linear_cross_entropy(fused_in, weight, targets, -100, 8);
    const auto plain = summed_cross_entropy(torch::matmul(plain_in, weight.t()), targets, -100);
    EXPECT_NEAR(fused.item<double>(), plain.item<double>(), 1e-5 * plain.item<double>());
    fused.backward();
    plain.backward();
    const auto f = fused_in.grad().to(torch::kCPU, torch::kFloat);
    const auto p = plain_in.grad().to(torch::kCPU, torch::kFloat);
    EXPECT_LE((f - p).abs().max().item<double>(),
              2 * std::ldexp(1.0, -8) * p.abs().max().item<double>())
        << "vocabulary " << vocab;
    EXPECT_EQ(f[2].abs().sum().item<double>(), 0.0);  // the ignored row gets nothing
  }
}

TEST(SummedLinearCrossEntropy, WithoutAutogradKeepsNoGradientAndGivesTheSameValue) {
  torch::manual_seed(7);
  const auto hidden = torch::randn({9, 8});
  const auto weight = torch::randn({13, 8});
  const auto targets = torch::randint(0, 13, {9}, torch::kLong);
  torch::NoGradGuard no_grad;
  const auto fused = summed_linear_cross_entropy(hidden, weight, targets);
  const auto plain = summed_cross_entropy(torch::matmul(hidden, weight.t()), targets);
  EXPECT_FALSE(fused.requires_grad());
  EXPECT_NEAR(fused.item<double>(), plain.item<double>(), 1e-5 * plain.item<double>());
}

TEST(SummedLinearCrossEntropy, RefusesATrainableHead) {
  const auto weight = torch::randn({5, 4}).requires_grad_(true);
  EXPECT_THROW(
      summed_linear_cross_entropy(torch::randn({3, 4}), weight, torch::zeros({3}, torch::kLong)),
      c10::Error);
}

TEST(MaskedNextTokenLoss, ShiftsLabelsAndCountsTargetsAsMaskedCrossEntropyDoes) {
  torch::manual_seed(8);
  const auto hidden = torch::randn({2, 6, 8});
  const auto weight = torch::randn({11, 8});
  auto labels = torch::randint(0, 11, {2, 6}, torch::kLong);
  labels[0][2] = -100;
  labels[1][5] = -100;
  const auto fused = masked_next_token_loss(hidden, weight, labels);
  const auto plain = masked_cross_entropy(torch::matmul(hidden, weight.t()), labels);
  EXPECT_EQ(fused.target_tokens.item<int64_t>(), plain.target_tokens.item<int64_t>());
  EXPECT_NEAR(fused.sum.item<double>(), plain.sum.item<double>(), 1e-5 * plain.sum.item<double>());
  EXPECT_NEAR(fused.mean.item<double>(), plain.mean.item<double>(),
              1e-5 * plain.mean.item<double>());
}

}  // namespace
}  // namespace llm
