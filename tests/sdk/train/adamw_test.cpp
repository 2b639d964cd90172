#include "llm/train/adamw.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

TEST(AdamW, MatchesLibTorchAdamWStepForStep) {
  torch::manual_seed(0);
  const auto start = torch::randn({5, 3});
  auto ours = start.clone().set_requires_grad(true);
  auto reference = start.clone().set_requires_grad(true);
  llm::AdamWSettings settings;
  settings.weight_decay = 0.1;
  llm::AdamW optimizer({{"w", ours}}, settings);
  torch::optim::AdamW torch_optimizer(
      std::vector<torch::Tensor>{reference},
      torch::optim::AdamWOptions(1e-2).betas({0.9, 0.999}).eps(1e-8).weight_decay(0.1));
  for (int step = 0; step < 5; ++step) {
    const auto target = torch::randn({5, 3});
    optimizer.zero_grad();
    (ours - target).pow(2).sum().backward();
    optimizer.step(1e-2);
    torch_optimizer.zero_grad();
    (reference - target).pow(2).sum().backward();
    torch_optimizer.step();
  }
  EXPECT_TRUE(torch::allclose(ours, reference, 1e-6, 1e-7));
}

TEST(AdamW, RestoredStateContinuesIdentically) {
  auto make = [] { return torch::ones({4}).set_requires_grad(true); };
  auto a = make();
  llm::AdamW first({{"p", a}}, {});
  for (int i = 0; i < 3; ++i) {
    first.zero_grad();
    (a * torch::arange(4.0)).sum().backward();
    first.step(0.1);
  }
  auto b = a.detach().clone().set_requires_grad(true);
  llm::AdamW second({{"p", b}}, {});
  second.load_state(first.state(), first.steps_taken(), "test");
  for (auto* pair : {&first, &second}) {
    auto& p = pair->parameters()[0].second;
    pair->zero_grad();
    (p * p).sum().backward();
    pair->step(0.1);
  }
  EXPECT_TRUE(torch::equal(a, b));
}

// On CUDA the update runs in the fused kernel; it must follow the written-out update (CPU), from
// the first step and after a restore (the step count lives on the device there).
TEST(AdamWCuda, FusedKernelFollowsTheWrittenOutUpdate) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(0);
  const auto start = torch::randn({64, 8});
  auto cpu = start.clone().set_requires_grad(true);
  auto gpu = start.to(torch::kCUDA).set_requires_grad(true);
  llm::AdamWSettings settings;
  settings.weight_decay = 0.01;
  llm::AdamW cpu_optimizer({{"w", cpu}}, settings);
  llm::AdamW gpu_optimizer({{"w", gpu}}, settings);
  for (int step = 0; step < 6; ++step) {
    const auto target = torch::randn({64, 8});
    for (auto* pair : {&cpu_optimizer, &gpu_optimizer}) {
      auto& p = pair->parameters()[0].second;
      pair->zero_grad();
      (p - target.to(p.device())).pow(2).sum().backward();
      pair->step(3e-3);
    }
  }
  EXPECT_TRUE(torch::allclose(gpu.cpu(), cpu, 1e-5, 1e-6));
  auto resumed = gpu.detach().clone().set_requires_grad(true);
  llm::AdamW resumed_optimizer({{"w", resumed}}, settings);
  resumed_optimizer.load_state(gpu_optimizer.state(), gpu_optimizer.steps_taken(), "test");
  for (auto* pair : {&gpu_optimizer, &resumed_optimizer}) {
    auto& p = pair->parameters()[0].second;
    pair->zero_grad();
    (p * p).sum().backward();
    pair->step(3e-3);
  }
  EXPECT_TRUE(torch::equal(gpu, resumed));
}

}  // namespace
