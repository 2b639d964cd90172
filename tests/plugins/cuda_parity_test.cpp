// The model plugins on a CUDA device (LibTorch 2.x on the GPU machine: cuBLAS, SDPA kernels)
// against the fp32 Hugging Face goldens. Every test skips where CUDA is unavailable (CI, CPU).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <torch/cuda.h>

#include "llm/generation.hpp"
#include "sdk/nn/causal_lm_checks.hpp"

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

// `training`: with gradients on, as a finetune's forward runs (the frozen products through
// their tuned training path, the residual adds in their epilogues).
torch::Tensor cuda_logits(const std::string& model_name, torch::ScalarType dtype,
                          const torch::Tensor& ids, bool training = false) {
  auto loaded = load_on_cuda(model_name, dtype);
  EXPECT_TRUE(loaded.model->device().is_cuda());
  EXPECT_EQ(loaded.model->dtype(), dtype);
  torch::AutoGradMode grad_mode(training);
  return loaded.model->forward(ids.to(torch::kCUDA)).detach().to(torch::kFloat).cpu();
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

// Same bounds as the CPU bf16 test (causal_lm_checks.hpp derives them from bf16 rounding), in
// inference and with gradients on.
TEST_P(CudaParity, Bf16LogitsStayWithinBf16RoundingOfGolden) {
  for (const bool training : {false, true}) {
    const auto golden = golden_for(GetParam());
    const auto logits = cuda_logits(GetParam(), torch::kBFloat16, golden.input_ids, training);
    ASSERT_EQ(logits.sizes(), golden.logits.sizes());
    SCOPED_TRACE(training ? "gradients on" : "inference");
    expect_within_bf16_rounding_of_golden(logits, golden.logits);
  }
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
  expect_greedy_tokens_match(*loaded.model, generate(*loaded.model, prompt, options).tokens,
                             expected);
}

INSTANTIATE_TEST_SUITE_P(TinyFixtures, CudaParity,
                         ::testing::Values(std::string("tiny-pythia"), std::string("tiny-llama")),
                         [](const auto& info) {
                           return info.param == "tiny-pythia" ? std::string("TinyPythia")
                                                              : std::string("TinyLlama");
                         });

}  // namespace
}  // namespace llm::test
