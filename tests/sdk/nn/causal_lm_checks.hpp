#pragma once
// Parity checks every model family must pass against the Hugging Face goldens; each plugin's test
// file runs them on its own tiny checkpoint.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "llm/generation.hpp"
#include "llm/loss.hpp"
#include "sdk/nn/model_test_support.hpp"

namespace llm::test {

struct GoldenLogits {
  torch::Tensor input_ids;
  torch::Tensor labels;
  torch::Tensor logits;
};

inline GoldenLogits golden_logits(const std::string& model_name) {
  SafetensorsFile file(data_dir() / "golden" / (model_name + "-logits.safetensors"));
  return {file.tensor("input_ids").clone(), file.tensor("labels").clone(),
          file.tensor("logits").clone()};
}

inline torch::Tensor forward_no_grad(CausalLM& model, const torch::Tensor& ids) {
  torch::NoGradGuard no_grad;
  return model.forward(ids);
}

inline void expect_logits_match_golden(const std::string& model_name) {
  const auto golden = golden_logits(model_name);
  auto loaded = load_test_model(data_dir() / model_name);
  const auto logits = forward_no_grad(*loaded.model, golden.input_ids);
  ASSERT_EQ(logits.sizes(), golden.logits.sizes());
  EXPECT_LE(max_abs_diff(logits, golden.logits), 1e-4);
}

inline void expect_masked_loss_matches_golden(const std::string& model_name) {
  const auto golden = golden_logits(model_name);
  auto loaded = load_test_model(data_dir() / model_name);
  const auto loss =
      masked_cross_entropy(forward_no_grad(*loaded.model, golden.input_ids), golden.labels);
  const double expected = golden_summary()[model_name]["loss_masked"].get<double>();
  EXPECT_NEAR(loss.mean.item<double>(), expected, 1e-4);
}

inline std::vector<int64_t> greedy(CausalLM& model, const std::vector<int64_t>& prompt,
                                   int64_t new_tokens) {
  GenerationOptions options;
  options.max_new_tokens = new_tokens;
  options.sampling.temperature = 0;
  options.stop_at_eos = false;
  return generate(model, prompt, options).tokens;
}

inline void expect_greedy_matches_golden(const std::string& model_name) {
  const auto summary = golden_summary()[model_name];
  const auto prompt = summary["greedy_prompt"].get<std::vector<int64_t>>();
  const auto expected = summary["greedy_out"].get<std::vector<int64_t>>();
  auto loaded = load_test_model(data_dir() / model_name);
  EXPECT_EQ(greedy(*loaded.model, prompt, 12), expected);
}

// Prefill 7 tokens, then a 3-token chunk (queries behind cached keys), then single tokens: every
// step's logits equal the full forward's at the same positions.
inline void expect_cached_decode_matches_full_forward(const std::string& model_name) {
  const auto golden = golden_logits(model_name);
  auto loaded = load_test_model(data_dir() / model_name);
  auto& model = *loaded.model;
  torch::NoGradGuard no_grad;
  const auto ids = golden.input_ids;
  const auto full = model.forward(ids);
  const int64_t length = ids.size(1);
  auto cache = model.make_cache(ids.size(0), length);
  std::vector<int64_t> chunks = {7, 3};
  for (int64_t covered = 10; covered < length; ++covered) chunks.push_back(1);
  int64_t start = 0;
  for (const auto chunk : chunks) {
    const auto step = model.forward(ids.narrow(1, start, chunk), &cache);
    EXPECT_LE(max_abs_diff(step, full.narrow(1, start, chunk)), 1e-5) << "at position " << start;
    start += chunk;
  }
  EXPECT_EQ(start, length);
  EXPECT_EQ(cache.length(), length);
}

// The transformers-5 config.json (rope_parameters) next to the same weights.
inline void expect_v5_config_gives_same_logits(const std::string& model_name) {
  const auto golden = golden_logits(model_name);
  TempDir dir;
  copy_checkpoint(data_dir() / model_name, dir.path());
  std::filesystem::copy_file(data_dir() / "golden" / "config-v5-style" / (model_name + ".json"),
                             dir.path() / "config.json",
                             std::filesystem::copy_options::overwrite_existing);
  auto published = load_test_model(data_dir() / model_name);
  auto v5 = load_test_model(dir.path());
  EXPECT_EQ(v5.config.rotary_dim, published.config.rotary_dim);
  EXPECT_EQ(v5.config.rope_theta, published.config.rope_theta);
  EXPECT_EQ(max_abs_diff(forward_no_grad(*v5.model, golden.input_ids),
                         forward_no_grad(*published.model, golden.input_ids)),
            0.0);
}

inline void expect_bf16_forward_near_fp32(const std::string& model_name) {
  const auto golden = golden_logits(model_name);
  auto bf16 = load_test_model(data_dir() / model_name, torch::kBFloat16);
  EXPECT_EQ(bf16.model->dtype(), torch::kBFloat16);
  const auto logits = forward_no_grad(*bf16.model, golden.input_ids);
  EXPECT_EQ(logits.scalar_type(), torch::kBFloat16);
  // bf16 keeps ~3 significant digits and logits here reach ~8: loose bounds, same ranking.
  const auto diff = (logits.to(torch::kFloat) - golden.logits).abs();
  EXPECT_LE(diff.mean().item<double>(), 0.05);
  EXPECT_LE(diff.max().item<double>(), 0.5);
  EXPECT_GE(logits.argmax(-1).eq(golden.logits.argmax(-1)).to(torch::kFloat).mean().item<double>(),
            0.9);
}

// Every adaptable linear is named as Hugging Face names the module, owning "<name>.weight".
inline void expect_adaptable_linears_cover_every_matrix(const std::string& model_name) {
  auto loaded = load_test_model(data_dir() / model_name);
  const auto parameters = loaded.model->named_parameters();
  int64_t matrices = 0;
  for (const auto& item : parameters) matrices += item.value().dim() == 2 ? 1 : 0;
  const auto linears = loaded.model->adaptable_linears();
  for (const auto& [name, linear] : linears) {
    const auto* weight = parameters.find(name + ".weight");
    ASSERT_NE(weight, nullptr) << name;
    EXPECT_TRUE(weight->is_same(linear->weight)) << name;
  }
  EXPECT_EQ(static_cast<int64_t>(linears.size()), matrices - 1);  // all but the embedding
}

// On a GPU (LibTorch 2.x: SDPA kernels, grouped-query mode): fp32 logits, cached decode and greedy
// tokens agree with the goldens as on the CPU.
inline void expect_cuda_matches_golden(const std::string& model_name) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto golden = golden_logits(model_name);
  auto loaded = load_test_model(data_dir() / model_name, torch::kFloat, torch::kCUDA);
  auto& model = *loaded.model;
  torch::NoGradGuard no_grad;
  const auto ids = golden.input_ids.to(torch::kCUDA);
  const auto full = model.forward(ids);
  EXPECT_LE(max_abs_diff(full.cpu(), golden.logits), 1e-4);
  auto cache = model.make_cache(ids.size(0), ids.size(1));
  const auto prefill = model.forward(ids.narrow(1, 0, 5), &cache);
  const auto chunk = model.forward(ids.narrow(1, 5, 3), &cache);
  const auto step = model.forward(ids.narrow(1, 8, 1), &cache);
  EXPECT_LE(max_abs_diff(torch::cat({prefill, chunk, step}, 1), full.narrow(1, 0, 9)), 1e-4);
  const auto summary = golden_summary()[model_name];
  EXPECT_EQ(greedy(model, summary["greedy_prompt"].get<std::vector<int64_t>>(), 12),
            summary["greedy_out"].get<std::vector<int64_t>>());
}

}  // namespace llm::test
