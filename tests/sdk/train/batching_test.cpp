#include "llm/train/batching.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

namespace {

llm::PreparedSplit three_samples() {
  // lengths 5, 3, 4; prompts 2, 1, 3
  return llm::PreparedSplit::from_samples({{10, 11, 12, 13, 14}, {20, 21, 22}, {30, 31, 32, 33}},
                                          {2, 1, 3}, {1, 2, 3});
}

TEST(Batching, RightPadsAndMasksPaddingAndPrompts) {
  const auto split = three_samples();
  const auto batch = llm::make_batch(split, {1, 2}, /*mask_inputs=*/true, 0, /*pad_id=*/0);
  EXPECT_TRUE(torch::equal(batch.input_ids,
                           torch::tensor({20, 21, 22, 0, 30, 31, 32, 33}).reshape({2, 4})));
  EXPECT_TRUE(torch::equal(
      batch.labels, torch::tensor({-100, 21, 22, -100, -100, -100, -100, 33}).reshape({2, 4})));
  EXPECT_EQ(batch.target_tokens, 3);  // 21, 22 and 33 are predicted
  EXPECT_EQ(batch.tokens, 7);
}

TEST(Batching, UnmaskedLabelsCoverPromptAndCutsToMaxSeqLength) {
  const auto split = three_samples();
  const auto batch = llm::make_batch(split, {0}, /*mask_inputs=*/false, 4);
  EXPECT_TRUE(torch::equal(batch.labels, torch::tensor({10, 11, 12, 13}).reshape({1, 4})));
  EXPECT_EQ(batch.target_tokens, 3);
}

TEST(Batching, MaskedPromptPositionsGetNoGradientAndTheCountMatches) {
  const auto split = three_samples();
  const auto batch = llm::make_batch(split, {0, 1, 2}, /*mask_inputs=*/true, 0);
  torch::manual_seed(3);
  auto logits = torch::randn({3, 5, 40}).set_requires_grad(true);
  const auto loss = llm::summed_token_loss(logits, batch.labels);
  loss.backward();
  const auto grad_norm = logits.grad().abs().sum(-1);  // [B, T]
  const auto labels = batch.labels;
  int64_t contributing = 0;
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t t = 0; t < 5; ++t) {
      const bool target = t + 1 < 5 && labels[b][t + 1].item<int64_t>() != llm::kIgnoreIndex;
      if (target) {
        ++contributing;
        EXPECT_GT(grad_norm[b][t].item<float>(), 0.f) << b << "," << t;
      } else {
        EXPECT_EQ(grad_norm[b][t].item<float>(), 0.f) << "masked position " << b << "," << t;
      }
    }
  }
  EXPECT_EQ(contributing, batch.target_tokens);
  EXPECT_EQ(batch.target_tokens, (5 - 2) + (3 - 1) + (4 - 3));
}

TEST(Batching, PackedBatchLaysSamplesEndToEndAndIgnoresEachFirstToken) {
  const auto split = three_samples();
  const auto batch = llm::make_packed_batch(split, {0, 1, 2}, /*mask_inputs=*/false, 4);
  EXPECT_TRUE(torch::equal(
      batch.input_ids, torch::tensor({10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 33}).view({1, 11})));
  EXPECT_TRUE(torch::equal(
      batch.labels,
      torch::tensor({-100, 11, 12, 13, -100, 21, 22, -100, 31, 32, 33}).view({1, 11})));
  EXPECT_EQ(batch.packed_lengths, (std::vector<int64_t>{4, 3, 4}));
  EXPECT_EQ(batch.tokens, 11);
  // The same targets as the padded batch of the same samples.
  EXPECT_EQ(batch.target_tokens, llm::make_batch(split, {0, 1, 2}, false, 4).target_tokens);
}

TEST(Batching, PackedBatchMasksPromptsAsThePaddedOneDoes) {
  const auto split = three_samples();
  const auto batch = llm::make_packed_batch(split, {1, 2}, /*mask_inputs=*/true, 0);
  EXPECT_TRUE(
      torch::equal(batch.labels, torch::tensor({-100, 21, 22, -100, -100, -100, 33}).view({1, 7})));
  EXPECT_EQ(batch.target_tokens, llm::make_batch(split, {1, 2}, true, 0).target_tokens);
}

TEST(Batching, PackingGroupsConsecutiveSamplesWithinTheTokenBudget) {
  const auto split = three_samples();  // lengths 5, 3, 4
  using Groups = std::vector<std::vector<int64_t>>;
  EXPECT_EQ(llm::pack_samples(split, {0, 1, 2}, 0, 8), (Groups{{0, 1}, {2}}));
  EXPECT_EQ(llm::pack_samples(split, {2, 1, 0}, 0, 8), (Groups{{2, 1}, {0}}));
  EXPECT_EQ(llm::pack_samples(split, {0, 1, 2}, 0, 4), (Groups{{0}, {1}, {2}}));  // 5 > 4: alone
  EXPECT_EQ(llm::pack_samples(split, {0, 1, 2}, 4, 8), (Groups{{0, 1}, {2}}));    // cut to 4 first
  EXPECT_EQ(llm::pack_samples(split, {0, 1, 2}, 0, 100), (Groups{{0, 1, 2}}));
}

TEST(Batching, PackingStartsANewGroupAtTheSampleCap) {
  const auto split = three_samples();  // lengths 5, 3, 4
  using Groups = std::vector<std::vector<int64_t>>;
  EXPECT_EQ(llm::pack_samples(split, {0, 1, 2}, 0, 100, 2), (Groups{{0, 1}, {2}}));
  EXPECT_EQ(llm::pack_samples(split, {0, 1, 2}, 0, 100, 1), (Groups{{0}, {1}, {2}}));
}

// A fixed layout: the row filled to the token count with ignored filler, cut into pieces of at
// most `longest` that count as samples of their own; the real counts unchanged.
TEST(Batching, FilledPackedBatchAppendsIgnoredFillerInPiecesOfAtMostLongest) {
  const auto split = three_samples();
  const auto packed = llm::make_packed_batch(split, {1, 2}, /*mask_inputs=*/false, 0);  // 3 + 4
  const auto filled = llm::fill_packed_batch(packed, 16, 4, /*pad_id=*/9);
  EXPECT_TRUE(torch::equal(
      filled.input_ids,
      torch::tensor({20, 21, 22, 30, 31, 32, 33, 9, 9, 9, 9, 9, 9, 9, 9, 9}).view({1, 16})));
  EXPECT_TRUE(torch::equal(filled.labels.narrow(1, 0, 7), packed.labels));
  EXPECT_TRUE(filled.labels.narrow(1, 7, 9).eq(llm::kIgnoreIndex).all().item<bool>());
  EXPECT_EQ(filled.packed_lengths, (std::vector<int64_t>{3, 4, 4, 4, 1}));
  EXPECT_EQ(filled.tokens, packed.tokens);
  EXPECT_EQ(filled.target_tokens, packed.target_tokens);
  EXPECT_EQ(llm::fill_packed_batch(packed, 7, 4).packed_lengths, packed.packed_lengths);
  EXPECT_THROW(llm::fill_packed_batch(packed, 6, 4), c10::Error);  // does not fit
}

TEST(SampleOrder, EachEpochIsASeededPermutation) {
  llm::SampleOrder order(7, 42), again(7, 42), other(7, 43);
  std::set<int64_t> epoch0, epoch1;
  bool differs_between_epochs = false, differs_between_seeds = false;
  for (int64_t k = 0; k < 7; ++k) {
    epoch0.insert(order.sample_at(k));
    differs_between_seeds |= order.sample_at(k) != other.sample_at(k);
  }
  for (int64_t k = 7; k < 14; ++k) {
    epoch1.insert(order.sample_at(k));
    differs_between_epochs |= order.sample_at(k) != order.sample_at(k - 7);
    EXPECT_EQ(order.sample_at(k), again.sample_at(k));
  }
  EXPECT_EQ(epoch0.size(), 7u);
  EXPECT_EQ(epoch1.size(), 7u);
  EXPECT_TRUE(differs_between_epochs);
  EXPECT_TRUE(differs_between_seeds);
}

}  // namespace
