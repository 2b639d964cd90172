// llama3 RoPE scaling: inverse frequencies against transformers' formula evaluated here in double
// precision, in all three bands (kept, blended, divided), and the rotation that uses them.
#include <gtest/gtest.h>

#include <cmath>

#include "llm/error.hpp"
#include "llm/nn/attention.hpp"

namespace llm {
namespace {

RopeScaling llama3(double factor, double low, double high, double original) {
  RopeScaling s;
  s.type = "llama3";
  s.factor = factor;
  s.low_freq_factor = low;
  s.high_freq_factor = high;
  s.original_max_position_embeddings = original;
  return s;
}

// _compute_llama3_parameters, written from its definition.
std::vector<double> expected_inverse_frequencies(int64_t dim, double theta, const RopeScaling& s) {
  std::vector<double> out;
  const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (int64_t i = 0; i < dim / 2; ++i) {
    const double f = 1.0 / std::pow(theta, 2.0 * static_cast<double>(i) / static_cast<double>(dim));
    const double wavelen = 2 * M_PI / f;
    if (wavelen < high_wavelen) {
      out.push_back(f);
    } else if (wavelen > low_wavelen) {
      out.push_back(f / s.factor);
    } else {
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      out.push_back((1 - smooth) * f / s.factor + smooth * f);
    }
  }
  return out;
}

TEST(RopeScaling, Llama3InverseFrequenciesFollowTheFormulaInEveryBand) {
  // head_dim 16, theta 5e5: wavelengths 6.3, 32.5, 168, ...; with original context 64 the bands
  // are < 16 (kept), 16..64 (blended) and > 64 (divided by the factor).
  const auto s = llama3(8.0, 1.0, 4.0, 64.0);
  const auto got = rope_inverse_frequencies(16, 500000.0, s);
  const auto expected = expected_inverse_frequencies(16, 500000.0, s);
  ASSERT_EQ(got.numel(), 8);
  EXPECT_EQ(got.scalar_type(), torch::kFloat);
  const auto plain = rope_inverse_frequencies(16, 500000.0);
  for (int64_t i = 0; i < 8; ++i) {
    // fp32 evaluation: a few ulps of relative error.
    EXPECT_NEAR(got[i].item<double>(), expected[static_cast<size_t>(i)],
                4e-7 * expected[static_cast<size_t>(i)])
        << "i=" << i;
  }
  EXPECT_EQ(got[0].item<float>(), plain[0].item<float>());                 // kept
  EXPECT_LT(got[1].item<float>(), plain[1].item<float>());                 // blended...
  EXPECT_GT(got[1].item<float>(), plain[1].item<float>() / 8);             // ...in between
  EXPECT_NEAR(got[5].item<double>(), plain[5].item<double>() / 8, 1e-12);  // divided
}

TEST(RopeScaling, Llama31ProductionSettingsMatchTheFormula) {
  const auto s = llama3(8.0, 1.0, 4.0, 8192.0);  // Llama 3.1 8B: head_dim 128, theta 5e5
  const auto got = rope_inverse_frequencies(128, 500000.0, s);
  const auto expected = expected_inverse_frequencies(128, 500000.0, s);
  for (int64_t i = 0; i < 64; ++i) {
    EXPECT_NEAR(got[i].item<double>(), expected[static_cast<size_t>(i)],
                1e-6 * expected[static_cast<size_t>(i)])
        << "i=" << i;
  }
}

TEST(RopeScaling, DefaultTypeIsThePlainInverseFrequency) {
  const auto got = rope_inverse_frequencies(8, 10000.0);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(got[i].item<double>(), 1.0 / std::pow(10000.0, 2.0 * i / 8), 1e-7);
  }
}

TEST(RopeScaling, RotaryEmbeddingRotatesByTheScaledFrequencies) {
  const auto s = llama3(8.0, 1.0, 4.0, 64.0);
  RotaryEmbedding rope(16, 500000.0, 32, s);
  RotaryEmbedding plain(16, 500000.0, 32);
  const auto inv = expected_inverse_frequencies(16, 500000.0, s);
  torch::manual_seed(0);
  const auto x = torch::randn({1, 1, 4, 16});
  const auto out = rope.apply(x, 20);
  for (int64_t t = 0; t < 4; ++t) {
    for (int64_t i = 0; i < 8; ++i) {
      const double angle = static_cast<double>(20 + t) * inv[static_cast<size_t>(i)];
      const double a = x[0][0][t][i].item<double>();
      const double b = x[0][0][t][i + 8].item<double>();
      EXPECT_NEAR(out[0][0][t][i].item<double>(), a * std::cos(angle) - b * std::sin(angle), 1e-5);
      EXPECT_NEAR(out[0][0][t][i + 8].item<double>(), b * std::cos(angle) + a * std::sin(angle),
                  1e-5);
    }
  }
  // Scaled and plain embeddings keep separate tables.
  EXPECT_FALSE(torch::allclose(out, plain.apply(x, 20)));
}

TEST(RopeScaling, UnknownTypeIsAUserError) {
  RopeScaling s;
  s.type = "yarn";
  EXPECT_THROW(rope_inverse_frequencies(8, 10000.0, s), UserError);
}

}  // namespace
}  // namespace llm
