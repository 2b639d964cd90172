// --quantize nf4 on the shipped tiny models: the model with compressed Linear weights computes
// what the fp32 model computes over the dequantized weights, each layer's output stays within the
// bound its weight error allows, the KV-cache path agrees with the full forward, and greedy
// generation runs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "llm/error.hpp"
#include "llm/generation.hpp"
#include "llm/nn/quantize.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace {

struct Models {
  llmhost::PluginRegistry registry;
  llmhost::LoadedModel quantized, reference;
};

// `reference`: the fp32 model with each quantizable weight replaced by its dequantized NF4 value.
std::unique_ptr<Models> load(const std::string& name, llm::QuantizeScheme scheme) {
  auto m = std::make_unique<Models>();
  m->registry.load_directories({llm::test::plugin_dir()});
  const auto dir = llm::test::data_dir() / name;
  m->quantized =
      llmhost::load_model(m->registry, dir, torch::kCPU, torch::kFloat, false, 0, scheme);
  m->reference = llmhost::load_model(m->registry, dir, torch::kCPU, torch::kFloat, false);
  torch::NoGradGuard no_grad;
  for (auto& [module, linear] : llm::quantizable_linears(*m->reference.model)) {
    const auto q = llm::nf4_quantize(linear->weight, scheme == llm::QuantizeScheme::kNf4Nested);
    linear->weight.copy_(llm::nf4_dequantize(q, torch::kFloat));
  }
  return m;
}

torch::Tensor prompt() {
  return torch::arange(3, 3 + 2 * 24, torch::kLong).remainder(1000).view({2, 24});
}

class QuantizedTinyModel : public ::testing::TestWithParam<const char*> {};

TEST_P(QuantizedTinyModel, LogitsEqualTheFp32ModelOverDequantizedWeightsToRounding) {
  for (const auto scheme : {llm::QuantizeScheme::kNf4, llm::QuantizeScheme::kNf4Nested}) {
    auto m = load(GetParam(), scheme);
    EXPECT_EQ(m->quantized.quantized.layers,
              static_cast<int64_t>(llm::quantizable_linears(*m->quantized.model).size()));
    EXPECT_GT(m->quantized.quantized.layers, 0);
    // 4.5 bits (nf4) or ~4.13 bits (nf4-dq) per weight instead of 32.
    EXPECT_LT(m->quantized.quantized.compressed_bytes * 7, m->quantized.quantized.full_bytes);
    torch::NoGradGuard no_grad;
    const auto ours = m->quantized.model->forward(prompt());
    const auto reference = m->reference.model->forward(prompt());
    // Same weights, same fp32 arithmetic; only the matmul kernel (mm + bias vs addmm) may sum in
    // another order: per layer k <= 256 terms, k * 2^-24 relative ~ 1.5e-5 of the magnitudes.
    const double scale = reference.abs().max().item<double>();
    EXPECT_LE((ours - reference).abs().max().item<double>(), 1e-4 * scale);
  }
}

TEST_P(QuantizedTinyModel, EachLayerOutputIsWithinItsWeightErrorBound) {
  auto m = load(GetParam(), llm::QuantizeScheme::kNf4);
  llmhost::PluginRegistry registry;
  registry.load_directories({llm::test::plugin_dir()});
  auto original = llmhost::load_model(registry, llm::test::data_dir() / GetParam(), torch::kCPU,
                                      torch::kFloat, false);
  torch::manual_seed(9);
  torch::NoGradGuard no_grad;
  const auto quantized_layers = llm::quantizable_linears(*m->quantized.model);
  const auto original_layers = llm::quantizable_linears(*original.model);
  ASSERT_EQ(quantized_layers.size(), original_layers.size());
  double worst_fraction = 0;
  for (size_t i = 0; i < quantized_layers.size(); ++i) {
    auto q = quantized_layers[i].second;
    auto w = original_layers[i].second;
    const auto x = torch::randn({8, w->in_features()});
    const auto error = (q->forward(x) - w->forward(x)).abs();
    // |x (W - Wq)^T|_i <= sum_j |x_j| |dW_ij|, and |dW_ij| <= absmax(block of ij) * g/2, g the
    // widest gap of the codebook (nf4_test.cpp); plus fp32 rounding of the two matmuls.
    const auto nf4 = llm::nf4_quantize(w->weight, false);
    const auto codebook = llm::nf4_codebook();
    const double half_gap =
        (codebook.slice(0, 1) - codebook.slice(0, 0, -1)).max().item<double>() / 2;
    const auto per_weight =
        nf4.absmax.repeat_interleave(llm::kNf4BlockSize).view(w->weight.sizes()) * half_gap;
    const auto bound =
        torch::matmul(x.abs(), per_weight.t()) + 1e-5 * torch::matmul(x.abs(), w->weight.abs().t());
    EXPECT_TRUE((error <= bound).all().item<bool>()) << quantized_layers[i].first;
    worst_fraction = std::max(worst_fraction, (error / bound).max().item<double>());
  }
  EXPECT_GT(worst_fraction, 0.05) << "the bound should not be vacuous";
}

TEST_P(QuantizedTinyModel, KvCacheDecodingMatchesTheFullForwardAndGreedyGenerationRuns) {
  auto m = load(GetParam(), llm::QuantizeScheme::kNf4Nested);
  auto& model = *m->quantized.model;
  torch::NoGradGuard no_grad;
  const auto ids = prompt().slice(0, 0, 1);
  const auto full = model.forward(ids);
  auto cache = model.make_cache(1, 32);
  model.forward(ids.slice(1, 0, 20), &cache);
  const auto stepped = model.forward(ids.slice(1, 20, 24), &cache);
  const double scale = full.abs().max().item<double>();
  EXPECT_LE((stepped - full.slice(1, 20, 24)).abs().max().item<double>(), 1e-4 * scale);

  llm::GenerationOptions options;
  options.max_new_tokens = 8;
  options.sampling.temperature = 0;
  options.stop_at_eos = false;
  const std::vector<int64_t> tokens(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + 24);
  const auto result = llm::generate(model, tokens, options);
  EXPECT_EQ(result.new_tokens, 8);
  EXPECT_EQ(result.tokens.size(), 32u);
}

INSTANTIATE_TEST_SUITE_P(Models, QuantizedTinyModel,
                         ::testing::Values("tiny-pythia", "tiny-pythia-trained"));

TEST(QuantizeModel, TinyLlamaIntermediate172IsRefusedNamingTheLayer) {
  llmhost::PluginRegistry registry;
  registry.load_directories({llm::test::plugin_dir()});
  const auto message = llm::test::user_error_of([&] {
    llmhost::load_model(registry, llm::test::data_dir() / "tiny-llama", torch::kCPU, torch::kFloat,
                        false, 0, llm::QuantizeScheme::kNf4);
  });
  EXPECT_NE(message.find("down_proj"), std::string::npos) << message;
  EXPECT_NE(message.find("in_features 172"), std::string::npos) << message;
  EXPECT_NE(message.find("64"), std::string::npos) << message;
}

}  // namespace
