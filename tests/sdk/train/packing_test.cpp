// Padding-free packing (issue 13): samples laid end to end in one row, each attending only to
// itself from position 0, give the padded batch's loss and LoRA gradients. fp32 on the CPU, LoRA
// dropout off (a mask is drawn per tensor shape, so packed and padded runs would draw different
// ones). The two runs sum the same per-token terms in a different order and run their matrix
// products over different row counts: equal within a few fp32 ulps of the sums, 1e-5 relative.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "llm/error.hpp"
#include "llm/model.hpp"
#include "llm/train/batching.hpp"
#include "llm/train/packed_micro_step.hpp"
#include "sdk/nn/model_test_support.hpp"

namespace llm {
namespace {

struct Run {
  double loss = 0;
  int64_t target_tokens = 0;
  std::vector<torch::Tensor> grads;
};

class Packing : public ::testing::TestWithParam<std::string> {};

Run train_once(CausalLM& model, const std::vector<torch::Tensor>& trainable, const Batch& batch) {
  for (auto p : trainable) p.mutable_grad() = torch::Tensor();
  std::optional<PackedSequences> packing;
  if (!batch.packed_lengths.empty()) packing.emplace(batch.packed_lengths, torch::kCPU);
  const auto loss = model.next_token_loss(batch.input_ids, batch.labels, kIgnoreIndex,
                                          packing ? &*packing : nullptr);
  loss.sum.backward();
  Run run{loss.sum.item<double>(), loss.target_tokens.item<int64_t>(), {}};
  for (const auto& p : trainable) run.grads.push_back(p.grad().clone());
  return run;
}

TEST_P(Packing, PackedRowGivesThePaddedBatchsLossAndLoraGradients) {
  auto loaded = test::load_test_model(test::data_dir() / GetParam());
  auto& model = *loaded.model;
  torch::manual_seed(0);
  auto trainable = test::model_plugins().adapter("lora")->attach(
      model, Json{{"lora_dropout", 0.0}, {"lora_mlp", true}});
  {
    torch::NoGradGuard no_grad;  // lora_B starts at zero: give every LoRA weight a gradient
    for (auto p : trainable) p.normal_(0, 0.1);
  }
  model.train();
  // Five samples of different lengths, prompts masked.
  std::vector<std::vector<int64_t>> samples;
  std::vector<int64_t> prompts;
  const int64_t vocab = model.config().vocab_size;
  for (const int64_t length : {7, 3, 11, 5, 9}) {
    const auto ids = torch::randint(1, vocab, {length}, torch::kInt64);
    samples.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
    prompts.push_back(length / 3);
  }
  const auto split = PreparedSplit::from_samples(samples, prompts, {0, 1, 2, 3, 4});
  const std::vector<int64_t> order{0, 1, 2, 3, 4};
  const auto padded = train_once(model, trainable, make_batch(split, order, true, 0));
  const auto packed = train_once(model, trainable, make_packed_batch(split, order, true, 0));
  EXPECT_EQ(packed.target_tokens, padded.target_tokens);
  EXPECT_NEAR(packed.loss, padded.loss, 1e-5 * std::abs(padded.loss));
  ASSERT_EQ(packed.grads.size(), padded.grads.size());
  for (size_t i = 0; i < padded.grads.size(); ++i) {
    const double largest = padded.grads[i].abs().max().item<double>();
    EXPECT_LE((packed.grads[i] - padded.grads[i]).abs().max().item<double>(), 1e-5 * largest)
        << "trainable tensor " << i;
  }
}

// Five samples of different lengths (7, 3, 11, 5, 9 tokens), prompts masked, LoRA on every
// linear layer with random weights (lora_B starts at zero: every LoRA weight gets a gradient).
struct PackingCase {
  llmhost::LoadedModel loaded;
  std::vector<torch::Tensor> trainable;
  PreparedSplit split;
};

PackingCase packing_case(const std::string& model_name, double dropout,
                         torch::ScalarType dtype = torch::kFloat,
                         torch::Device device = torch::kCPU) {
  auto loaded = test::load_test_model(test::data_dir() / model_name, dtype, device);
  torch::manual_seed(0);
  auto trainable = test::model_plugins().adapter("lora")->attach(
      *loaded.model, Json{{"lora_dropout", dropout}, {"lora_mlp", true}});
  {
    torch::NoGradGuard no_grad;
    for (auto p : trainable) p.normal_(0, 0.1);
  }
  loaded.model->train();
  std::vector<std::vector<int64_t>> samples;
  std::vector<int64_t> prompts;
  const int64_t vocab = loaded.model->config().vocab_size;
  for (const int64_t length : {7, 3, 11, 5, 9}) {
    const auto ids = torch::randint(1, vocab, {length}, torch::kInt64);
    samples.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
    prompts.push_back(length / 3);
  }
  auto split = PreparedSplit::from_samples(samples, prompts, {0, 1, 2, 3, 4});
  return {std::move(loaded), std::move(trainable), std::move(split)};
}

// The step's summed loss is the packed row's, and the trainable tensors' gradients are the packed
// row's times grad_factor (1e-5 relative, as above).
void expect_packed_run(const PackedMicroStep& step, const std::vector<torch::Tensor>& trainable,
                       const Run& packed, double grad_factor) {
  EXPECT_NEAR(step.loss_sum().item<double>(), packed.loss, 1e-5 * std::abs(packed.loss));
  for (size_t i = 0; i < packed.grads.size(); ++i) {
    const double largest = packed.grads[i].abs().max().item<double>();
    EXPECT_LE((trainable[i].grad() - packed.grads[i] * grad_factor).abs().max().item<double>(),
              1e-5 * largest)
        << "trainable tensor " << i;
  }
}

// The micro-step's fixed layout (the row filled to 48 tokens with ignored filler in pieces of at
// most 16, the samples in power-of-two slots) gives the packed row's loss and gradients: filler
// attends only to itself and adds exact zeros, in other places of the sums (1e-5 relative).
TEST_P(Packing, FilledFixedLayoutGivesThePackedRowsLossAndLoraGradients) {
  auto c = packing_case(GetParam(), 0.0);
  auto& model = *c.loaded.model;
  const auto batch = make_packed_batch(c.split, {0, 1, 2, 3, 4}, true, 0);
  const auto packed = train_once(model, c.trainable, batch);
  for (auto p : c.trainable) p.mutable_grad() = torch::Tensor();
  PackedMicroStep step(model, c.trainable, 48, 16);
  EXPECT_EQ(step.token_granule(), PackedMicroStep::default_token_granule(48));
  step.begin_step(1.0, 1.0);
  step.run(batch, 7);
  expect_packed_run(step, c.trainable, packed, 1.0);
  // A second step: the loss starts again from 0, gradients are those of loss / divisor * scale.
  for (auto p : c.trainable) p.mutable_grad().zero_();
  step.begin_step(4.0, 2.0);
  step.run(batch, 7);
  expect_packed_run(step, c.trainable, packed, 0.5);
  EXPECT_EQ(step.graphs(), 0);  // nothing is recorded on the CPU
}

// With a token granule the row is filled only to the next multiple of it (35 tokens -> 40, 8 -> 8:
// no filler at all), each size its own layout; the loss and gradients stay the packed row's.
TEST_P(Packing, RowsFilledToTheirTokenBucketGiveThePackedRowsLossAndLoraGradients) {
  auto c = packing_case(GetParam(), 0.0);
  auto& model = *c.loaded.model;
  PackedMicroStep step(model, c.trainable, 48, 16, /*eager_runs=*/2, /*token_granule=*/8);
  EXPECT_EQ(step.token_granule(), 8);
  for (const std::vector<int64_t>& samples :
       std::vector<std::vector<int64_t>>{{0, 1, 2, 3, 4}, {1, 3}}) {
    const auto batch = make_packed_batch(c.split, samples, true, 0);
    const auto packed = train_once(model, c.trainable, batch);
    for (auto p : c.trainable) p.mutable_grad() = torch::Tensor();
    step.begin_step(1.0, 1.0);
    step.run(batch, 7);
    SCOPED_TRACE(std::to_string(batch.input_ids.numel()) + " tokens");
    expect_packed_run(step, c.trainable, packed, 1.0);
  }
}

TEST(PackedMicroStepInput, NonPositiveTokensOrLongestOrNegativeGranuleIsAUserError) {
  auto loaded = test::load_test_model(test::data_dir() / "tiny-pythia");
  EXPECT_THROW(PackedMicroStep(*loaded.model, {}, 0, 16), UserError);
  EXPECT_THROW(PackedMicroStep(*loaded.model, {}, 32, 0), UserError);
  EXPECT_THROW(PackedMicroStep(*loaded.model, {}, 32, 16, 2, -1), UserError);
}

TEST(PackedMicroStepInput, DefaultTokenGranuleIsASixtyFourthOfTheBudgetInMultiplesOf64) {
  EXPECT_EQ(PackedMicroStep::default_token_granule(48), 64);
  EXPECT_EQ(PackedMicroStep::default_token_granule(4096), 64);
  EXPECT_EQ(PackedMicroStep::default_token_granule(8192), 128);
  EXPECT_EQ(PackedMicroStep::default_token_granule(7120), 128);
  EXPECT_EQ(PackedMicroStep::default_token_granule(20000), 320);
}

// `count` samples of `length` random tokens each, their first `prompt` tokens masked.
PreparedSplit split_of_equal_samples(int64_t vocab, int64_t count, int64_t length, int64_t prompt) {
  std::vector<std::vector<int64_t>> samples;
  std::vector<int64_t> order;
  for (int64_t i = 0; i < count; ++i) {
    const auto ids = torch::randint(1, vocab, {length}, torch::kInt64);
    samples.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
    order.push_back(i);
  }
  return PreparedSplit::from_samples(samples, std::vector<int64_t>(count, prompt), order);
}

// A layout that only samples of the longest length fill (4 x 16 positions) runs as a batch of
// rows: the padded batch's computation on the same ids and targets, so the same loss and gradients
// bit for bit (the packed row's differ in the last places: its sums run in another order).
TEST_P(Packing, LayoutOfLongestSamplesRunsAsThePaddedBatch) {
  auto c = packing_case(GetParam(), 0.0);
  auto& model = *c.loaded.model;
  const auto split = split_of_equal_samples(model.config().vocab_size, 4, 16, 5);
  const std::vector<int64_t> order{0, 1, 2, 3};
  const auto padded = train_once(model, c.trainable, make_batch(split, order, true, 0));
  for (auto p : c.trainable) p.mutable_grad() = torch::Tensor();
  PackedMicroStep step(model, c.trainable, 64, 16);
  step.begin_step(1.0, 1.0);
  step.run(make_packed_batch(split, order, true, 0), 7);
  EXPECT_EQ(step.loss_sum().item<double>(), padded.loss);
  for (size_t i = 0; i < padded.grads.size(); ++i) {
    EXPECT_TRUE(torch::equal(c.trainable[i].grad(), padded.grads[i])) << "trainable tensor " << i;
  }
}

// Each batch's loss and trainable gradients after one micro-step run (LoRA dropout seeded per run).
std::vector<std::pair<double, std::vector<torch::Tensor>>> micro_step_runs(
    PackedMicroStep& step, const std::vector<torch::Tensor>& trainable,
    const std::vector<Batch>& batches) {
  std::vector<std::pair<double, std::vector<torch::Tensor>>> out;
  for (size_t r = 0; r < batches.size(); ++r) {
    for (auto p : trainable) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
    step.begin_step(10.0, 1.0);
    step.run(batches[r], 100 + r);
    std::vector<torch::Tensor> grads;
    for (const auto& p : trainable) grads.push_back(p.grad().cpu().clone());
    out.emplace_back(step.loss_sum().item<double>(), std::move(grads));
  }
  return out;
}

// The replayed micro-step (recording after one eager run) against one that never records, on the
// same batches: same kernels on the same inputs, so they agree to far below a bf16 step (2^-8 of
// the largest gradient), where stale inputs or masks would differ by O(1).
void expect_replays_match_eager(PackingCase& c, const std::vector<Batch>& batches, int64_t tokens,
                                int64_t longest, int64_t granule, int64_t graphs) {
  const std::string what = "granule " + std::to_string(granule);
  PackedMicroStep eager(*c.loaded.model, c.trainable, tokens, longest, /*eager_runs=*/1000,
                        granule);
  const auto expected = micro_step_runs(eager, c.trainable, batches);
  PackedMicroStep replayed(*c.loaded.model, c.trainable, tokens, longest, /*eager_runs=*/1,
                           granule);
  const auto got = micro_step_runs(replayed, c.trainable, batches);
  EXPECT_EQ(replayed.graphs(), graphs) << what;
  for (size_t r = 0; r < batches.size(); ++r) {
    EXPECT_NEAR(got[r].first, expected[r].first, 1e-3 * std::abs(expected[r].first))
        << what << ", run " << r;
    for (size_t i = 0; i < c.trainable.size(); ++i) {
      const double largest = expected[r].second[i].abs().max().item<double>();
      EXPECT_LE((got[r].second[i] - expected[r].second[i]).abs().max().item<double>(),
                std::ldexp(1.0, -8) * largest)
          << what << ", run " << r << ", trainable tensor " << i;
    }
  }
}

// On a CUDA device the micro-step records its work once and replays it: every run's loss and
// gradients, LoRA dropout on, equal the eager runs' with the same seeds. bf16 weights (the flash
// varlen path).
TEST_P(Packing, ReplayedMicroStepGivesTheEagerLossAndGradientsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  if (!PackedMicroStep::can_replay(torch::kCUDA)) GTEST_SKIP() << "LibTorch without CUDA graphs";
  auto c = packing_case(GetParam(), 0.05, torch::kBFloat16, torch::kCUDA);
  // Filled to 32 positions, slots are 4 for the first four rows and 8 for the last (two recorded
  // graphs, one memory pool).
  std::vector<Batch> batches;
  for (const std::vector<int64_t>& row :
       std::vector<std::vector<int64_t>>{{0, 1, 2}, {3, 4}, {2, 0, 4}, {1, 3}, {0, 1, 3, 4}}) {
    batches.push_back(make_packed_batch(c.split, row, true, 0));
  }
  // Granule 0: every row filled to 32 (2 graphs); granule 8: rows filled to 24, 16, 32, 8 and 24
  // positions (4 graphs, the fifth run replays the first's).
  expect_replays_match_eager(c, batches, 32, 16, 0, 2);
  expect_replays_match_eager(c, batches, 32, 16, 8, 4);
}

// Batches of four 64-token samples in a 256-position budget: the layout runs as a batch of rows
// (on an H200 its attention is cuDNN's, recorded in the graph too), replayed as recorded.
TEST_P(Packing, ReplayedLayoutOfLongestSamplesGivesTheEagerLossAndGradientsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  if (!PackedMicroStep::can_replay(torch::kCUDA)) GTEST_SKIP() << "LibTorch without CUDA graphs";
  auto c = packing_case(GetParam(), 0.05, torch::kBFloat16, torch::kCUDA);
  const auto split = split_of_equal_samples(c.loaded.model->config().vocab_size, 8, 64, 10);
  std::vector<Batch> batches;
  for (const std::vector<int64_t>& row :
       std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {7, 2, 5, 0}}) {
    batches.push_back(make_packed_batch(split, row, true, 0));
  }
  expect_replays_match_eager(c, batches, 256, 64, 0, 1);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, Packing, ::testing::Values("tiny-pythia", "tiny-llama"),
                         [](const auto& info) {
                           return info.param == "tiny-pythia" ? std::string("TinyPythia")
                                                              : std::string("TinyLlama");
                         });

}  // namespace
}  // namespace llm
