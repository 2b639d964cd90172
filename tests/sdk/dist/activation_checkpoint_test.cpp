// Activation checkpointing (CausalLM::set_activation_checkpointing): recomputing each block in
// backward gives the loss and LoRA gradients of the ordinary graph, dropout included.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "llm/model.hpp"
#include "llm/train/batching.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace {

struct LossAndGrads {
  double loss = 0;
  std::vector<std::pair<std::string, torch::Tensor>> grads;
};

LossAndGrads loss_and_grads(const std::string& model_name, bool checkpointing, double dropout) {
  llmhost::PluginRegistry registry;
  registry.load_directories({llm::test::plugin_dir()});
  auto loaded = llmhost::load_model(registry, llm::test::data_dir() / model_name, torch::kCPU,
                                    torch::kFloat, false);
  auto& model = *loaded.model;
  torch::manual_seed(11);
  // lora_mlp too, so the recomputed block carries trainable weights on both sublayers.
  registry.adapter("lora")->attach(
      model, llm::Json{{"lora_dropout", dropout}, {"lora_mlp", true}, {"lora_key", true}});
  // Non-zero B matrices: with PEFT's zero init the A gradients would all be zero.
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model.named_parameters()) {
      if (item.value().requires_grad()) item.value().normal_(0, 0.05);
    }
  }
  model.set_activation_checkpointing(checkpointing);
  model.train();
  const auto ids = torch::randint(0, model.config().vocab_size, {2, 12}, torch::kInt64);
  torch::manual_seed(5);  // the same dropout draws in both runs
  const auto loss = llm::summed_token_loss(model.forward(ids), ids) / 22.0;
  loss.backward();
  LossAndGrads result;
  result.loss = loss.item<double>();
  for (auto& item : model.named_parameters()) {
    if (item.value().requires_grad()) result.grads.emplace_back(item.key(), item.value().grad());
  }
  return result;
}

void expect_same(const LossAndGrads& plain, const LossAndGrads& checkpointed) {
  EXPECT_NEAR(plain.loss, checkpointed.loss, 1e-5);
  ASSERT_EQ(plain.grads.size(), checkpointed.grads.size());
  ASSERT_FALSE(plain.grads.empty());
  for (size_t i = 0; i < plain.grads.size(); ++i) {
    ASSERT_TRUE(checkpointed.grads[i].second.defined()) << checkpointed.grads[i].first;
    EXPECT_GT(plain.grads[i].second.abs().max().item<double>(), 0) << plain.grads[i].first;
    EXPECT_LE((plain.grads[i].second - checkpointed.grads[i].second).abs().max().item<double>(),
              1e-5)
        << plain.grads[i].first;
  }
}

TEST(ActivationCheckpointing, PythiaGivesTheSameLossAndLoraGradientsWithDropout) {
  expect_same(loss_and_grads("tiny-pythia", false, 0.1), loss_and_grads("tiny-pythia", true, 0.1));
}

TEST(ActivationCheckpointing, LlamaGivesTheSameLossAndLoraGradients) {
  expect_same(loss_and_grads("tiny-llama", false, 0.0), loss_and_grads("tiny-llama", true, 0.0));
}

TEST(ActivationCheckpointing, IsIgnoredOutsideTrainingAndWithACache) {
  llmhost::PluginRegistry registry;
  registry.load_directories({llm::test::plugin_dir()});
  auto loaded = llmhost::load_model(registry, llm::test::data_dir() / "tiny-pythia", torch::kCPU,
                                    torch::kFloat, false);
  auto& model = *loaded.model;
  const auto ids = torch::tensor({{1, 2, 3, 4}}, torch::kInt64);
  model.eval();
  const auto plain = model.forward(ids);
  model.set_activation_checkpointing(true);
  const auto same = model.forward(ids);
  EXPECT_LE((plain - same).abs().max().item<double>(), 0.0);
}

}  // namespace
