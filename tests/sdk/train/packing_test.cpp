// Padding-free packing (issue 13): samples laid end to end in one row, each attending only to
// itself from position 0, give the padded batch's loss and LoRA gradients. fp32 on the CPU, LoRA
// dropout off (a mask is drawn per tensor shape, so packed and padded runs would draw different
// ones). The two runs sum the same per-token terms in a different order and run their matrix
// products over different row counts: equal within a few fp32 ulps of the sums, 1e-5 relative.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <optional>

#include "llm/model.hpp"
#include "llm/train/batching.hpp"
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

INSTANTIATE_TEST_SUITE_P(TinyModels, Packing, ::testing::Values("tiny-pythia", "tiny-llama"),
                         [](const auto& info) {
                           return info.param == "tiny-pythia" ? std::string("TinyPythia")
                                                              : std::string("TinyLlama");
                         });

}  // namespace
}  // namespace llm
