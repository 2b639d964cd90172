#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/nn/activation.hpp"
#include "llm/nn/linear.hpp"
#include "llm/nn/norm.hpp"

namespace llm {
namespace {

TEST(RMSNorm, ScalesByInverseRootMeanSquare) {
  RMSNorm norm(4, 1e-6, torch::TensorOptions().dtype(torch::kFloat));
  norm->weight.copy_(torch::tensor({1.0, 2.0, 1.0, 0.5}));
  const auto x = torch::tensor({{1.0f, -3.0f, 2.0f, 0.0f}});
  const double rms = std::sqrt((1.0 + 9.0 + 4.0) / 4.0);
  const auto expected = torch::tensor({{1.0 / rms, -6.0 / rms, 2.0 / rms, 0.0}}, torch::kFloat);
  EXPECT_TRUE(torch::allclose(norm(x), expected, 1e-5, 1e-6));
}

TEST(RMSNorm, Bf16InputIsNormalisedInFp32AndReturnedInBf16) {
  RMSNorm norm(64, 1e-5, torch::TensorOptions().dtype(torch::kBFloat16));
  norm->weight.fill_(1);
  const auto x = torch::randn({2, 64}) * 100;
  const auto out = norm(x.to(torch::kBFloat16));
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  const auto expected =
      x.to(torch::kBFloat16).to(torch::kFloat) *
      torch::rsqrt(x.to(torch::kBFloat16).to(torch::kFloat).pow(2).mean(-1, true) + 1e-5);
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat), expected, 1e-2, 1e-2));
}

TEST(LayerNorm, MatchesTorchLayerNormWithItsAffineParameters) {
  LayerNorm norm(8, 1e-5, torch::TensorOptions().dtype(torch::kFloat));
  norm->weight.copy_(torch::randn({8}));
  norm->bias.copy_(torch::randn({8}));
  const auto x = torch::randn({3, 8});
  const auto mean = x.mean(-1, true);
  const auto var = (x - mean).pow(2).mean(-1, true);
  const auto expected = (x - mean) / torch::sqrt(var + 1e-5) * norm->weight + norm->bias;
  EXPECT_TRUE(torch::allclose(norm(x), expected, 1e-5, 1e-5));
}

class ScaleAdapter : public LinearAdapter {
 public:
  ScaleAdapter() { scale = register_parameter("scale", torch::full({1}, 2.0)); }
  torch::Tensor delta(const torch::Tensor& x) override { return x.narrow(-1, 0, 3) * scale; }
  torch::Tensor scale;
};

TEST(AdaptableLinear, AddsTheAdapterDeltaAndRegistersItUnderTheLayerName) {
  AdaptableLinear linear(3, 3, true, torch::TensorOptions().dtype(torch::kFloat));
  linear->weight.copy_(torch::eye(3));
  linear->bias.fill_(1);
  EXPECT_FALSE(linear->weight.requires_grad());
  const auto x = torch::tensor({{1.0f, 2.0f, 3.0f}});
  EXPECT_TRUE(linear(x).equal(x + 1));
  linear->set_adapter(std::make_shared<ScaleAdapter>(), "lora");
  EXPECT_TRUE(linear(x).equal(x * 3 + 1));
  EXPECT_NE(linear->named_parameters().find("lora.scale"), nullptr);
  linear->clear_adapter();
  EXPECT_TRUE(linear(x).equal(x + 1));
  EXPECT_EQ(linear->named_parameters().find("lora.scale"), nullptr);
}

TEST(Embedding, LooksUpRowsOfItsWeight) {
  Embedding embedding(5, 2, torch::TensorOptions().dtype(torch::kFloat));
  embedding->weight.copy_(torch::arange(10, torch::kFloat).view({5, 2}));
  const auto out = embedding(torch::tensor({{4, 0}}, torch::kLong));
  EXPECT_TRUE(out.equal(torch::tensor({{{8.0f, 9.0f}, {0.0f, 1.0f}}})));
}

TEST(Activation, NamesMapToExactAndTanhGelu) {
  const auto x = torch::linspace(-3, 3, 13);
  EXPECT_TRUE(apply_activation(parse_activation("gelu", "config.json"), x).equal(torch::gelu(x)));
  EXPECT_TRUE(apply_activation(parse_activation("gelu_new", "config.json"), x)
                  .equal(torch::gelu(x, "tanh")));
  EXPECT_TRUE(apply_activation(parse_activation("silu", "config.json"), x).equal(torch::silu(x)));
}

TEST(Activation, UnknownOrDisallowedNameIsAUserErrorNamingTheSource) {
  try {
    parse_activation("relu", "ckpt/config.json", {"silu"});
    FAIL() << "no UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt/config.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("silu"), std::string::npos);
  }
  EXPECT_THROW(parse_activation("mish2", "config.json"), UserError);
}

}  // namespace
}  // namespace llm
