// The model plugins on a CUDA device (LibTorch 2.x on the GPU machine: cuBLAS, SDPA kernels)
// against the fp32 Hugging Face goldens. Every test skips where CUDA is unavailable (CI, CPU).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <torch/cuda.h>

#include "llm/generation.hpp"
#include "sdk/nn/model_test_support.hpp"

namespace llm::test {
namespace {

struct Golden {
  torch::Tensor input_ids;
  torch::Tensor logits;
};

Golden golden_for(const std::string& model_name) {
  SafetensorsFile file(data_dir() / "golden" / (model_name + "-logits.safetensors"));
  return {file.tensor("input_ids").clone(), file.tensor("logits").to(torch::kFloat).clone()};
}

llmhost::LoadedModel load_on_cuda(const std::string& model_name, torch::ScalarType dtype) {
  return llmhost::load_model(model_plugins(), data_dir() / model_name, torch::kCUDA, dtype, false);
}

torch::Tensor cuda_logits(const std::string& model_name, torch::ScalarType dtype,
                          const torch::Tensor& ids) {
  auto loaded = load_on_cuda(model_name, dtype);
  EXPECT_TRUE(loaded.model->device().is_cuda());
  EXPECT_EQ(loaded.model->dtype(), dtype);
  torch::NoGradGuard no_grad;
  return loaded.model->forward(ids.to(torch::kCUDA)).to(torch::kFloat).cpu();
}

class CudaParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// cuBLAS runs fp32 products in full fp32 (LibTorch leaves TF32 off for matmul), so only
// summation order differs from the CPU reference: the fixtures' 1e-4 holds.
TEST_P(CudaParity, Fp32LogitsMatchGoldenWithin1e4) {
  const auto golden = golden_for(GetParam());
  const auto logits = cuda_logits(GetParam(), torch::kFloat, golden.input_ids);
  ASSERT_EQ(logits.sizes(), golden.logits.sizes());
  EXPECT_LE(max_abs_diff(logits, golden.logits), 1e-4);
}

// bf16 keeps 8 significant bits (rounding 2^-9 relative per operation); these logits reach ~8,
// so rounding through two layers leaves a few hundredths on average and under half a unit at
// worst, and the top token stays the same almost everywhere. Same bounds as the CPU bf16 test.
TEST_P(CudaParity, Bf16LogitsStayWithinBf16RoundingOfGolden) {
  const auto golden = golden_for(GetParam());
  const auto logits = cuda_logits(GetParam(), torch::kBFloat16, golden.input_ids);
  ASSERT_EQ(logits.sizes(), golden.logits.sizes());
  const auto diff = (logits - golden.logits).abs();
  EXPECT_LE(diff.mean().item<double>(), 0.05);
  EXPECT_LE(diff.max().item<double>(), 0.5);
  const auto agreement =
      logits.argmax(-1).eq(golden.logits.argmax(-1)).to(torch::kFloat).mean().item<double>();
  EXPECT_GE(agreement, 0.9);
}

TEST_P(CudaParity, Fp32GreedyGenerationEqualsGolden) {
  const auto summary = golden_summary()[GetParam()];
  const auto prompt = summary["greedy_prompt"].get<std::vector<int64_t>>();
  const auto expected = summary["greedy_out"].get<std::vector<int64_t>>();
  auto loaded = load_on_cuda(GetParam(), torch::kFloat);
  GenerationOptions options;
  options.max_new_tokens = static_cast<int64_t>(expected.size() - prompt.size());
  options.sampling.temperature = 0;
  options.stop_at_eos = false;
  EXPECT_EQ(generate(*loaded.model, prompt, options).tokens, expected);
}

INSTANTIATE_TEST_SUITE_P(TinyFixtures, CudaParity,
                         ::testing::Values(std::string("tiny-pythia"), std::string("tiny-llama")),
                         [](const auto& info) {
                           return info.param == "tiny-pythia" ? std::string("TinyPythia")
                                                              : std::string("TinyLlama");
                         });

}  // namespace
}  // namespace llm::test
