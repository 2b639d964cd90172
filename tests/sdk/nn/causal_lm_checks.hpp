#pragma once
// Parity checks every model family must pass against the Hugging Face goldens; each plugin's test
// file runs them on its own tiny checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
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

// labels: undefined when the golden file has none (the masked-loss check needs them).
inline GoldenLogits golden_logits(const std::string& model_name) {
  SafetensorsFile file(data_dir() / "golden" / (model_name + "-logits.safetensors"));
  return {file.tensor("input_ids").clone(),
          file.contains("labels") ? file.tensor("labels").clone() : torch::Tensor(),
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
  // The training path: the output head fused with the loss, no [B, T, V] logits.
  torch::NoGradGuard no_grad;
  const auto fused = loaded.model->next_token_loss(golden.input_ids, golden.labels);
  EXPECT_NEAR(fused.mean.item<double>(), expected, 1e-4);
}

inline std::vector<int64_t> greedy(CausalLM& model, const std::vector<int64_t>& prompt,
                                   int64_t new_tokens) {
  GenerationOptions options;
  options.max_new_tokens = new_tokens;
  options.sampling.temperature = 0;
  options.stop_at_eos = false;
  return generate(model, prompt, options).tokens;
}

// The fp32 parity bound: our logits are within this of the reference's
// (expect_logits_match_golden).
constexpr double kFp32LogitTolerance = 1e-4;

// Greedy tokens equal the reference's wherever the choice is not a tie at fp32 rounding. Both
// logit vectors are within kFp32LogitTolerance of the exact ones, so where the sequences first
// differ the reference's token must score within twice that of ours under our own model (a near
// tie, which another CPU's kernels may break the other way); after it the continuations diverge
// legitimately and are not compared.
inline void expect_greedy_tokens_match(CausalLM& model, const std::vector<int64_t>& got,
                                       const std::vector<int64_t>& expected,
                                       const std::string& what = "") {
  ASSERT_EQ(got.size(), expected.size()) << what;
  std::size_t first_difference = 0;
  while (first_difference < got.size() && got[first_difference] == expected[first_difference]) {
    ++first_difference;
  }
  if (first_difference == got.size()) return;
  ASSERT_GT(first_difference, 0u) << what << ": the prompts differ";
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> prefix(
      expected.begin(), expected.begin() + static_cast<std::ptrdiff_t>(first_difference));
  const auto logits =
      model.forward(ids_tensor(prefix).to(model.device()))[0][-1].to(torch::kDouble);
  const double ours = logits[got[first_difference]].item<double>();
  const double theirs = logits[expected[first_difference]].item<double>();
  EXPECT_LE(ours - theirs, 2 * kFp32LogitTolerance)
      << what << ": token " << first_difference << " is " << got[first_difference]
      << ", the reference chose " << expected[first_difference] << ", which scores "
      << ours - theirs << " lower: more than a tie at fp32 rounding";
}

inline void expect_greedy_matches_golden(const std::string& model_name) {
  const auto summary = golden_model_summary(model_name);
  const auto prompt = summary["greedy_prompt"].get<std::vector<int64_t>>();
  const auto expected = summary["greedy_out"].get<std::vector<int64_t>>();
  auto loaded = load_test_model(data_dir() / model_name);
  expect_greedy_tokens_match(*loaded.model, greedy(*loaded.model, prompt, 12), expected);
}

// Prefill 7 tokens, then a 3-token chunk (queries behind cached keys), then single tokens: every
// step's hidden states equal the full forward's at the same positions up to fp32 summation order
// (the products and attention run over other shapes, so BLAS sums in another order): reordered
// fp32 sums of a few hundred terms, through the layers, agree to 2^-16 of the largest magnitude.
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
  const double tolerance = std::ldexp(1.0, -16) * full.abs().max().item<double>();
  int64_t start = 0;
  for (const auto chunk : chunks) {
    const auto step = model.forward(ids.narrow(1, start, chunk), &cache);
    EXPECT_LE(max_abs_diff(step, full.narrow(1, start, chunk)), tolerance)
        << "at position " << start;
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
  EXPECT_EQ(v5.family->settings(v5.config), published.family->settings(published.config));
  EXPECT_EQ(max_abs_diff(forward_no_grad(*v5.model, golden.input_ids),
                         forward_no_grad(*published.model, golden.input_ids)),
            0.0);
}

// bf16 keeps 8 significant bits: each rounding moves a value by at most 2^-8 of its magnitude.
// A logit of the tiny models (|logit| <= ~8) passes through about 16 roundings on its way (per
// layer: norm, q/k/v, scores, softmax, weighted sum, output projection, two MLP products, residual
// adds; then the final norm and the head), so its error is bounded by 16 * 2^-8 * 8 = 0.5 and,
// the roundings being independent, typically a tenth of that. Those are the bounds. The top token
// is checked only where the reference's lead over the runner-up exceeds twice the bound: there
// no rounding within the bound can swap them, while a near tie may go either way on another CPU.
constexpr double kBf16LogitBound = 0.5;
constexpr double kBf16MeanLogitBound = 0.05;

inline void expect_within_bf16_rounding_of_golden(const torch::Tensor& logits,
                                                  const torch::Tensor& golden) {
  const auto ours = logits.to(torch::kFloat).reshape({-1, golden.size(-1)});
  const auto reference = golden.to(torch::kFloat).reshape({-1, golden.size(-1)});
  const auto diff = (ours - reference).abs();
  EXPECT_LE(diff.mean().item<double>(), kBf16MeanLogitBound);
  EXPECT_LE(diff.max().item<double>(), kBf16LogitBound);
  const auto top2 = reference.topk(2, -1);
  const auto lead = std::get<0>(top2).select(1, 0) - std::get<0>(top2).select(1, 1);
  const auto decided = lead.gt(2 * kBf16LogitBound);
  const auto agree = ours.argmax(-1).eq(std::get<1>(top2).select(1, 0));
  EXPECT_GT(decided.sum().item<int64_t>(), 0) << "no position is decided: the check is empty";
  EXPECT_TRUE(agree.masked_select(decided).all().item<bool>())
      << "a decided top token changed under bf16";
}

inline void expect_bf16_forward_near_fp32(const std::string& model_name) {
  const auto golden = golden_logits(model_name);
  auto bf16 = load_test_model(data_dir() / model_name, torch::kBFloat16);
  EXPECT_EQ(bf16.model->dtype(), torch::kBFloat16);
  const auto logits = forward_no_grad(*bf16.model, golden.input_ids);
  EXPECT_EQ(logits.scalar_type(), torch::kBFloat16);
  expect_within_bf16_rounding_of_golden(logits, golden.logits);
}

// Every adaptable linear is named as Hugging Face names the module, owning "<name>.weight", and
// declares the roles of all its rows (no row in two parts, none left out); the family declares
// every role a decoder has (query, key, value, attention output, an MLP up and down, the head).
inline void expect_adaptable_linears_cover_every_matrix(const std::string& model_name) {
  auto loaded = load_test_model(data_dir() / model_name);
  const auto parameters = loaded.model->named_parameters();
  int64_t matrices = 0;
  for (const auto& item : parameters) matrices += item.value().dim() == 2 ? 1 : 0;
  const auto linears = loaded.model->adaptable_linears();
  std::set<LinearRole> roles;
  for (const auto& layer : linears) {
    const auto* weight = parameters.find(layer.name + ".weight");
    ASSERT_NE(weight, nullptr) << layer.name;
    EXPECT_TRUE(weight->is_same(layer.linear->weight)) << layer.name;
    auto covered = torch::zeros({layer.linear->out_features()}, torch::kFloat);
    for (const auto& part : layer.parts) {
      roles.insert(part.role);
      covered += layer.row_mask([&](LinearRole r) { return r == part.role; });
    }
    EXPECT_TRUE(covered.eq(1).all().item<bool>()) << layer.name << ": parts overlap or miss rows";
  }
  EXPECT_EQ(static_cast<int64_t>(linears.size()), matrices - 1);  // all but the embedding
  for (const auto role :
       {LinearRole::kQuery, LinearRole::kKey, LinearRole::kValue, LinearRole::kAttentionOutput,
        LinearRole::kMlpUp, LinearRole::kMlpDown, LinearRole::kLmHead}) {
    EXPECT_TRUE(roles.count(role)) << linear_role_name(role) << " is declared by no layer";
  }
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
  const auto summary = golden_model_summary(model_name);
  expect_greedy_tokens_match(
      model, greedy(model, summary["greedy_prompt"].get<std::vector<int64_t>>(), 12),
      summary["greedy_out"].get<std::vector<int64_t>>());
}

}  // namespace llm::test
