// NF4 quantization checked against a reference written here from the QLoRA paper's definition
// (Dettmers et al. 2023, section 3 "4-bit NormalFloat Quantization" and appendix E), and the
// nested 8-bit absmax quantization against bitsandbytes' definition (create_dynamic_map,
// quantize_blockwise with 256-element blocks, offset = mean).
#include "llm/nn/nf4.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "llm/error.hpp"
#include "llm/nn/quantize.hpp"

namespace {

// The inverse normal CDF from erfinv, in fp64.
double normal_quantile(double p) {
  return std::sqrt(2.0) *
         torch::erfinv(torch::tensor(2.0 * p - 1.0, torch::kDouble)).item<double>();
}

// QLoRA's NF4: 8 positive quantiles of N(0, 1) from linspace(offset, 0.5, 9)[:-1] and 7 negative
// ones from linspace(offset, 0.5, 8)[:-1], plus an exact 0, normalised to [-1, 1], with
// offset = (1 - 1/(2*15) + 1 - 1/(2*16)) / 2 = 0.9677083 (appendix E).
std::vector<double> paper_nf4_values() {
  const double offset = 0.9677083;
  std::vector<double> values{0.0};
  for (int i = 0; i < 8; ++i) values.push_back(normal_quantile(offset + (0.5 - offset) * i / 8.0));
  for (int i = 0; i < 7; ++i) values.push_back(-normal_quantile(offset + (0.5 - offset) * i / 7.0));
  std::sort(values.begin(), values.end());
  const double top = values.back();
  for (auto& v : values) v /= top;
  return values;
}

// The paper's quantizer, element by element: block absmax, x / absmax (as bitsandbytes computes
// it: x * (1 / absmax), clamped), the index of the nearest code (fp64 distances; ties to the
// lower index), and the dequantized value code * absmax.
struct Reference {
  std::vector<uint8_t> indices;
  std::vector<float> absmax;
  std::vector<float> values;
};

Reference paper_quantize(const torch::Tensor& weight) {
  const auto flat = weight.to(torch::kFloat).contiguous().view({-1});
  const float* x = flat.data_ptr<float>();
  const auto codebook = llm::nf4_codebook();
  const float* code = codebook.data_ptr<float>();
  Reference r;
  const int64_t n = flat.numel();
  for (int64_t b = 0; b < n / 64; ++b) {
    float absmax = 0;
    for (int64_t i = 0; i < 64; ++i) absmax = std::max(absmax, std::fabs(x[b * 64 + i]));
    r.absmax.push_back(absmax);
    const float inverse = absmax > 0 ? 1.0f / absmax : 0.0f;
    for (int64_t i = 0; i < 64; ++i) {
      const float normed = std::min(1.0f, std::max(-1.0f, x[b * 64 + i] * inverse));
      int best = 0;
      for (int c = 1; c < 16; ++c) {
        if (std::fabs(double(normed) - double(code[c])) <
            std::fabs(double(normed) - double(code[best]))) {
          best = c;
        }
      }
      r.indices.push_back(static_cast<uint8_t>(best));
      r.values.push_back(code[best] * absmax);
    }
  }
  return r;
}

void expect_matches_paper(const torch::Tensor& weight, const std::string& what) {
  const auto q = llm::nf4_quantize(weight, /*nested=*/false);
  const auto ref = paper_quantize(weight);
  const auto indices = llm::nf4_indices(q).contiguous();
  ASSERT_EQ(indices.numel(), static_cast<int64_t>(ref.indices.size())) << what;
  const auto expected_indices =
      torch::from_blob(const_cast<uint8_t*>(ref.indices.data()), {indices.numel()}, torch::kUInt8);
  const int64_t code_mismatches = indices.ne(expected_indices).sum().item<int64_t>();
  EXPECT_EQ(code_mismatches, 0) << what << ": codes differ from the paper's round-to-nearest";
  const auto expected_absmax = torch::from_blob(const_cast<float*>(ref.absmax.data()),
                                                {static_cast<int64_t>(ref.absmax.size())});
  EXPECT_TRUE(torch::equal(q.absmax, expected_absmax)) << what;
  // Dequantized: one fp32 product per element, the same as the reference's, so equal exactly;
  // in bf16/fp16 the same product rounded once more.
  const auto expected = torch::from_blob(const_cast<float*>(ref.values.data()),
                                         {static_cast<int64_t>(ref.values.size())})
                            .view(weight.sizes());
  EXPECT_TRUE(torch::equal(llm::nf4_dequantize(q, torch::kFloat), expected)) << what;
  EXPECT_TRUE(torch::equal(llm::nf4_dequantize(q, torch::kBFloat16), expected.to(torch::kBFloat16)))
      << what;
  EXPECT_TRUE(torch::equal(llm::nf4_dequantize(q, torch::kHalf), expected.to(torch::kHalf)))
      << what;
}

TEST(Nf4, CodebookIsThePapersNormalQuantilesToFloatRounding) {
  const auto codebook = llm::nf4_codebook();
  const auto paper = paper_nf4_values();
  ASSERT_EQ(codebook.numel(), 16);
  for (int i = 0; i < 16; ++i) {
    const double ours = codebook[i].item<double>();
    // The table is bitsandbytes' fp32 literal, made in fp32 at the scale of the largest quantile
    // (the quantiles cast, then divided by the largest, about 1): two roundings of at most one
    // ulp of 1 (2^-23) each, absolute, so within 2^-22 of the fp64 quantile at every entry.
    EXPECT_NEAR(ours, paper[i], std::ldexp(1.0, -22)) << i;
  }
  EXPECT_EQ(codebook[0].item<float>(), -1.0f);
  EXPECT_EQ(codebook[7].item<float>(), 0.0f);  // zero is exactly representable
  EXPECT_EQ(codebook[15].item<float>(), 1.0f);
}

TEST(Nf4, RandomTensorCodesAbsmaxAndValuesMatchThePaper) {
  torch::manual_seed(0);
  expect_matches_paper(torch::randn({96, 128}), "normal");
  // Heavy tails and a zero block: an all-zero block dequantizes to zeros.
  auto heavy = torch::randn({32, 64}).pow(3);
  heavy[3].zero_();
  expect_matches_paper(heavy, "heavy-tailed with a zero block");
  // bf16 input: quantized from its fp32 value.
  expect_matches_paper(torch::randn({16, 256}).to(torch::kBFloat16), "bf16 input");
}

TEST(Nf4, RealShapedWeightsMatchThePaper) {
  torch::manual_seed(1);
  // pythia-160m query_key_value [2304, 768] and a llama-2-7b down_proj slice [512, 11008]
  // at the models' initializer_range (0.02).
  expect_matches_paper(torch::randn({2304, 768}) * 0.02, "pythia-160m query_key_value");
  expect_matches_paper(torch::randn({512, 11008}) * 0.02, "llama-2-7b down_proj rows");
}

TEST(Nf4, CodesAreExactOnTableValuesAndTiesGoToTheLowerCode) {
  const auto codebook = llm::nf4_codebook();
  // A block holding each code value, times a scale: quantizes to exactly those codes and back.
  auto block = torch::cat({codebook, codebook.flip(0), codebook, codebook.flip(0)}) * 0.75;
  const auto q = llm::nf4_quantize(block.view({1, 64}), false);
  EXPECT_TRUE(torch::equal(llm::nf4_dequantize(q, torch::kFloat).view({-1}), block));
  const auto indices = llm::nf4_indices(q);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(indices[i].item<int>(), i);
  // Packing: the even element in the high nibble (bitsandbytes' layout).
  EXPECT_EQ(q.packed[0].item<int>(), (0 << 4) | 1);
  EXPECT_EQ(q.packed[8].item<int>(), (15 << 4) | 14);
  // Exactly halfway between codes 7 (0) and 8: the lower code, as bitsandbytes' x > threshold.
  auto tie = torch::zeros({64});
  tie[0] = 1.0f;  // absmax 1
  const double midpoint = (0.0 + double(codebook[8].item<float>())) / 2;
  ASSERT_EQ(double(float(midpoint)), midpoint);  // representable, so the input is the tie
  tie[1] = float(midpoint);
  EXPECT_EQ(llm::nf4_indices(llm::nf4_quantize(tie.view({1, 64}), false))[1].item<int>(), 7);
}

TEST(Nf4, DequantizationErrorIsWithinHalfTheCodeGapTimesAbsmax) {
  torch::manual_seed(2);
  const auto w = torch::randn({64, 512});
  const auto q = llm::nf4_quantize(w, false);
  const auto error = (llm::nf4_dequantize(q, torch::kFloat) - w).abs().view({-1, 64});
  // Largest gap between neighbouring codes: -0.6961928 - (-1) (the bottom pair; the top pair,
  // 1 - 0.7229568, is narrower); half of it per unit absmax, plus fp32 rounding of the product.
  const auto codebook = llm::nf4_codebook();
  const double half_gap =
      ((codebook.slice(0, 1) - codebook.slice(0, 0, -1)).max().item<double>()) / 2;
  EXPECT_NEAR(half_gap, (1.0 - 0.6961928009986877) / 2, 1e-7);
  const auto bound = q.absmax.unsqueeze(1) * (half_gap + 1e-6);
  EXPECT_TRUE((error <= bound).all().item<bool>());
  // Not vacuous: the largest error is a real fraction of the bound.
  EXPECT_GT((error / bound).max().item<double>(), 0.5);
}

TEST(Nf4, DynamicMapIsBitsandbytesSignedMap) {
  const auto map = llm::dynamic_map_8bit();
  ASSERT_EQ(map.numel(), 256);
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) rebuilt in fp64: for
  // exponent e = 0..6, the midpoints of 2^e + 1 points evenly spread over [0.1, 1], times
  // 10^(e - 6), both signs; then 0 and 1.
  std::vector<double> expected{0.0, 1.0};
  for (int e = 0; e < 7; ++e) {
    const int points = (1 << e) + 1;
    for (int i = 0; i + 1 < points; ++i) {
      const double a = 0.1 + 0.9 * i / (points - 1), b = 0.1 + 0.9 * (i + 1) / (points - 1);
      const double v = (a + b) / 2 * std::pow(10.0, e - 6);
      expected.push_back(v);
      expected.push_back(-v);
    }
  }
  std::sort(expected.begin(), expected.end());
  for (int i = 0; i < 256; ++i) {
    // fp32 linspace, midpoint and product: a few fp32 roundings (2^-24 relative each).
    EXPECT_NEAR(map[i].item<double>(), expected[i], std::fabs(expected[i]) * 1e-6) << i;
  }
  EXPECT_TRUE(torch::equal(std::get<0>(map.sort()), map));
}

TEST(Nf4, NestedAbsmaxFollowsBitsandbytesDoubleQuantization) {
  torch::manual_seed(3);
  // 64 * 600 blocks: 600 absmax values, three 256-blocks (the last one short).
  const auto w = torch::randn({600, 64}) * 0.02;
  const auto plain = llm::nf4_quantize(w, false);
  const auto nested = llm::nf4_quantize(w, true);
  ASSERT_TRUE(nested.nested());
  // The 4-bit codes are those of the plain quantization: nesting only compresses the scales.
  EXPECT_TRUE(torch::equal(nested.packed, plain.packed));
  const auto absmax = plain.absmax;
  const float offset = absmax.mean().item<float>();
  EXPECT_EQ(nested.absmax_offset.item<float>(), offset);
  EXPECT_EQ(nested.absmax_codes.numel(), 600);
  EXPECT_EQ(nested.absmax_scale.numel(), 3);
  // Reference: quantize_blockwise(absmax - offset, code=dynamic map, blocksize=256).
  const auto centred = (absmax - offset).contiguous();
  const auto map = llm::dynamic_map_8bit();
  for (int64_t block = 0; block < 3; ++block) {
    const auto part = centred.slice(0, block * 256, std::min<int64_t>(600, (block + 1) * 256));
    const float scale = part.abs().max().item<float>();
    EXPECT_EQ(nested.absmax_scale[block].item<float>(), scale);
    const auto normed = (part * (1.0f / scale)).clamp(-1, 1);
    const auto distance = (normed.to(torch::kDouble).unsqueeze(1) - map.to(torch::kDouble)).abs();
    const auto expected_codes = std::get<1>(distance.min(1)).to(torch::kUInt8);
    EXPECT_TRUE(torch::equal(
        nested.absmax_codes.slice(0, block * 256, std::min<int64_t>(600, (block + 1) * 256)),
        expected_codes))
        << "block " << block;
  }
  // Dequantized scales: map[code] * scale + offset; within half the widest map gap (near 1:
  // (1 - 0.9296875) / 2 of the block scale) of the true absmax.
  const auto recovered = llm::nf4_block_absmax(nested);
  const double half_gap =
      (map.slice(0, 1) - map.slice(0, 0, -1)).max().item<double>() / 2 * (1 + 1e-6);
  const auto scale_of = nested.absmax_scale.repeat_interleave(256).slice(0, 0, 600);
  EXPECT_TRUE(((recovered - absmax).abs() <= scale_of * half_gap + 1e-7).all().item<bool>());
  EXPECT_LT(nested.storage_bytes(), plain.storage_bytes());
}

TEST(Nf4, LinearForwardAndBackwardUseTheDequantizedWeight) {
  torch::manual_seed(4);
  const auto w = torch::randn({48, 128});
  const auto q = llm::nf4_quantize(w, true);
  const auto dq = llm::nf4_dequantize(q, torch::kFloat);
  const auto weight = llm::make_nf4_weight(q);
  const auto x = torch::randn({3, 5, 128}, torch::requires_grad());
  const auto y = weight->linear(x);
  const auto x_plain = x.detach().clone().requires_grad_(true);
  const auto y_plain = torch::matmul(x_plain, dq.t());
  EXPECT_TRUE(torch::equal(y, y_plain));
  const auto grad = torch::randn_like(y);
  y.backward(grad);
  y_plain.backward(grad);
  // fp32 sums of 48 products, possibly in another order: a few ulps.
  EXPECT_TRUE(torch::allclose(x.grad(), x_plain.grad(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::equal(weight->expand(torch::kFloat), dq));
  EXPECT_EQ(weight->scheme(), "nf4-dq");
}

TEST(Nf4, AdaptableLinearSwapsItsWeightForTheCompressedOneAndBack) {
  torch::manual_seed(5);
  llm::AdaptableLinear linear(64, 32, /*bias=*/true, torch::TensorOptions());
  {
    torch::NoGradGuard no_grad;
    linear->weight.normal_();
    linear->bias.normal_();
  }
  const auto original = linear->weight.clone();
  const auto q = llm::nf4_quantize(original, false);
  linear->set_compressed_weight(llm::make_nf4_weight(q), "weight_nf4");
  EXPECT_FALSE(linear->weight.defined());
  EXPECT_EQ(linear->named_parameters().size(), 1u);  // bias; the codes are buffers
  const auto x = torch::randn({4, 64});
  const auto dq = llm::nf4_dequantize(q, torch::kFloat);
  EXPECT_TRUE(torch::allclose(linear->forward(x), torch::linear(x, dq, linear->bias), 1e-5, 1e-5));
  linear->expand_weight(torch::kFloat);
  EXPECT_TRUE(torch::equal(linear->weight, dq));
  EXPECT_FALSE(linear->compressed_weight());
}

TEST(Nf4, ParseQuantizeAcceptsLitGptSpellingsAndNamesTheFlag) {
  EXPECT_EQ(llm::parse_quantize("nf4"), llm::QuantizeScheme::kNf4);
  EXPECT_EQ(llm::parse_quantize("bnb.nf4"), llm::QuantizeScheme::kNf4);
  EXPECT_EQ(llm::parse_quantize("bnb.nf4-dq"), llm::QuantizeScheme::kNf4Nested);
  EXPECT_EQ(llm::parse_quantize("none"), llm::QuantizeScheme::kNone);
  EXPECT_EQ(llm::parse_quantize(""), llm::QuantizeScheme::kNone);
  try {
    llm::parse_quantize("bnb.int8");
    ADD_FAILURE() << "expected a UserError";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--quantize 'bnb.int8'"), std::string::npos) << e.what();
  }
}

}  // namespace
