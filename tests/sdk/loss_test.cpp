#include <gtest/gtest.h>

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

}  // namespace
}  // namespace llm
