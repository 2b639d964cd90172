// llm::low_rank_update (y + dropout(x) A^T B^T * scaling) against the same sums taken in fp64:
// its value and all four gradients, on the CPU (LibTorch operations) and through the CUDA kernels
// where a device is available, with and without dropout.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "llm/nn/low_rank.hpp"
#include "support/test_support.hpp"

namespace llm {
namespace {

struct Case {
  int64_t rows, in, out, r;
};

struct Inputs {
  torch::Tensor x, y, A, B, dy;  // x, y, dy in the activation dtype; A, B fp32
};

Inputs make_inputs(const Case& c, torch::ScalarType dtype, const torch::Device& device) {
  torch::manual_seed(static_cast<uint64_t>(c.rows * 131 + c.r));
  const auto act = torch::TensorOptions().dtype(dtype).device(device);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
  return {torch::randn({c.rows, c.in}).to(act), torch::randn({c.rows, c.out}).to(act),
          (torch::randn({c.r, c.in}) * 0.3).to(f32), (torch::randn({c.out, c.r}) * 0.3).to(f32),
          torch::randn({c.rows, c.out}).to(act)};
}

struct Outputs {
  torch::Tensor out, grad_x, grad_y, grad_A, grad_B;
};

Outputs run_update(const Inputs& in, double scaling, double dropout) {
  auto x = in.x.clone().requires_grad_(true);
  auto y = in.y.clone().requires_grad_(true);
  auto A = in.A.clone().requires_grad_(true);
  auto B = in.B.clone().requires_grad_(true);
  const auto out = low_rank_update(x, y, A, B, scaling, dropout);
  out.backward(in.dy);
  return {out.detach(), x.grad(), y.grad(), A.grad(), B.grad()};
}

// The exact sums in fp64 from the same stored inputs, with keep [rows, in] (1 kept, 0 dropped)
// and the kept elements scaled by keep_scale.
Outputs exact(const Inputs& in, double scaling, const torch::Tensor& keep, double keep_scale) {
  const auto d = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble); };
  const auto h = d(in.x) * d(keep) * keep_scale;
  const auto u = h.matmul(d(in.A).t());
  const auto out = d(in.y) + u.matmul(d(in.B).t()) * scaling;
  const auto dy = d(in.dy);
  const auto g = dy.matmul(d(in.B)) * scaling;
  return {out, g.matmul(d(in.A)) * d(keep) * keep_scale, dy, g.t().matmul(h),
          dy.t().matmul(u) * scaling};
}

// The relative step of a stored result's type: bf16 2^-8, fp16 2^-11; fp32 results are sums of up
// to a few hundred products, 2^-16.
double unit_of(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 ? std::ldexp(1.0, -8)
         : t.scalar_type() == torch::kHalf   ? std::ldexp(1.0, -11)
                                             : std::ldexp(1.0, -16);
}

// ours within unit |exact| + extra + 2^-16 of the largest exact value (fp32 sums' reordering).
void expect_within(const torch::Tensor& ours, const torch::Tensor& exact_value,
                   const torch::Tensor& extra, const std::string& what) {
  ASSERT_EQ(ours.sizes(), exact_value.sizes()) << what;
  const auto a = ours.to(torch::kCPU, torch::kDouble);
  const double scale = exact_value.abs().max().item<double>();
  const auto bound = exact_value.abs() * unit_of(ours) + extra + std::ldexp(1.0, -16) * scale;
  const auto excess = ((a - exact_value).abs() - bound).max().item<double>();
  EXPECT_LE(excess, 0.0) << what << ": max |ours - exact| "
                         << (a - exact_value).abs().max().item<double>();
}

// A stored result is the exact value rounded once to its type (bf16: within 2^-8 of its
// magnitude), after fp32 sums whose reordering error is far below 2^-16 of the largest value.
void expect_rounded(const torch::Tensor& ours, const torch::Tensor& reference,
                    const std::string& what) {
  expect_within(ours, reference, torch::zeros_like(reference), what);
}

void expect_matches_exact(const Outputs& ours, const Outputs& ref, const std::string& label) {
  expect_rounded(ours.out, ref.out, label + " value");
  expect_rounded(ours.grad_x, ref.grad_x, label + " grad x");
  expect_rounded(ours.grad_y, ref.grad_y, label + " grad y");
  expect_rounded(ours.grad_A, ref.grad_A, label + " grad A");
  expect_rounded(ours.grad_B, ref.grad_B, label + " grad B");
}

std::vector<torch::Device> devices() {
  std::vector<torch::Device> list{torch::kCPU};
  if (torch::cuda::is_available()) list.emplace_back(torch::kCUDA);
  return list;
}

// fp32 on the CPU (LibTorch's operations), bf16 on CUDA (the kernels). Rows 37 (not a whole
// number of any kernel's row blocks); ranks 8, 20 (two passes of 8 ranks in the up and outer
// kernels, the 32-rank down kernel) and 64 (the largest the kernels take). Rank 4 over 520 and
// 264 columns: the outer products' tiles of 256 columns (3 and 2, the last ones partial) and 300
// rows in many row chunks. 4104 input columns: the down kernel's launch for rows wider than 4096.
// 129 rows of 8200 output columns: the up kernel's threads take 2 rows each (an odd last one).
TEST(LowRankUpdate, ValueAndGradientsAreTheExactSumsRoundedOnceOnCpuAndCuda) {
  const double scaling = 2.0;
  for (const auto& device : devices()) {
    const auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
    for (const Case c : {Case{37, 64, 48, 8}, Case{37, 64, 48, 20}, Case{5, 128, 16, 64},
                         Case{300, 520, 264, 4}, Case{9, 4104, 24, 8}, Case{129, 64, 8200, 8}}) {
      const auto in = make_inputs(c, dtype, device);
      const auto ours = run_update(in, scaling, 0.0);
      const auto ref = exact(in, scaling, torch::ones({c.rows, c.in}), 1.0);
      expect_matches_exact(ours, ref, device.str() + " rank " + std::to_string(c.r));
    }
  }
}

// Dropout's mask is unknown to the caller, but it shows in the input gradient: (g A)[n, c] is
// nonzero for random data, so grad x is zero exactly where x was dropped. Value and factor
// gradients with that mask must be the exact sums too: forward and backward dropped the same
// elements, about the requested share of them.
TEST(LowRankUpdate, DropoutDropsTheSameElementsInValueAndGradientsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const double p = 0.3, scaling = 0.5;
  const Case c{256, 512, 64, 8};
  const auto in = make_inputs(c, torch::kBFloat16, torch::kCUDA);
  const auto ours = run_update(in, scaling, p);
  const auto keep = (ours.grad_x.to(torch::kCPU, torch::kDouble) != 0).to(torch::kDouble);
  // Binomial share of kept elements: 5 standard deviations of sqrt(p (1 - p) / n).
  const double n = static_cast<double>(c.rows * c.in);
  EXPECT_NEAR(keep.mean().item<double>(), 1 - p, 5 * std::sqrt(p * (1 - p) / n));
  expect_matches_exact(ours, exact(in, scaling, keep, 1.0 / (1 - p)), "dropout 0.3");
  // A second call draws another mask.
  const auto again = run_update(in, scaling, p);
  EXPECT_FALSE(torch::equal(again.grad_x != 0, ours.grad_x != 0));
}

// Value and all four gradients of bf16 updates on CUDA are the exact sums, for ranks 8, 4 and 3,
// column counts that leave the last 32-column chunk and 128-column tile partial (72, 136, 4104),
// whole 32-column blocks both ways (96 -> 160, 64 -> 32: the tensor-core up product's widths) and
// row counts that leave the last 16-row step partial; with dropout, about the requested share
// dropped, and forward and backward dropping the same elements.
void expect_exact_sums_with_and_without_dropout_cuda(const std::string& label) {
  const double scaling = 2.0;
  for (const Case c :
       {Case{37, 64, 48, 8}, Case{33, 72, 40, 8}, Case{20, 136, 16, 3}, Case{300, 520, 264, 4},
        Case{9, 4104, 24, 8}, Case{129, 64, 8200, 8}, Case{45, 96, 160, 8}, Case{20, 64, 32, 3}}) {
    const auto in = make_inputs(c, torch::kBFloat16, torch::kCUDA);
    const auto ours = run_update(in, scaling, 0.0);
    const auto ref = exact(in, scaling, torch::ones({c.rows, c.in}), 1.0);
    expect_matches_exact(ours, ref, label + ", rank " + std::to_string(c.r));
  }
  const double p = 0.3;
  const Case c{256, 512, 64, 8};
  const auto in = make_inputs(c, torch::kBFloat16, torch::kCUDA);
  const auto ours = run_update(in, 0.5, p);
  const auto keep = (ours.grad_x.to(torch::kCPU, torch::kDouble) != 0).to(torch::kDouble);
  const double n = static_cast<double>(c.rows * c.in);
  EXPECT_NEAR(keep.mean().item<double>(), 1 - p, 5 * std::sqrt(p * (1 - p) / n)) << label;
  expect_matches_exact(ours, exact(in, 0.5, keep, 1.0 / (1 - p)), label + ", dropout 0.3");
}

// On CUDA in bf16 with r <= 8 LoRA's down product (forward's dropout(x) A^T, backward's dy B) runs
// on tensor cores: bf16 products of x and the fp32 factor's three bf16 parts. The tests above take
// that path; fp16 and pre-Ampere GPUs take the CUDA-core kernel, which LLMHOST_LOW_RANK_MMA=0
// selects here. Either way the sums are exact within the same bounds.
// The shared cases with a kernel switch on ("1") and off ("0").
void expect_exact_sums_either_way_cuda(const char* variable) {
  for (const char* value : {"1", "0"}) {
    const test::ScopedEnvironmentVariable setting(variable, value);
    expect_exact_sums_with_and_without_dropout_cuda(std::string(variable) + "=" + value);
  }
}

TEST(LowRankUpdate, DownOnTensorCoresAndOnCudaCoresGivesTheExactSumsWithAndWithoutDropoutCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  expect_exact_sums_either_way_cuda("LLMHOST_LOW_RANK_MMA");
}

// The factors' gradients on tensor cores (u^T dropout(x) and u^T dy as bf16 products with u's fp32
// values in three bf16 parts, x staged through shared memory) and on CUDA cores
// (LLMHOST_LOW_RANK_OUTER_MMA=0): the sums are exact within the same bounds.
TEST(LowRankUpdate, OuterProductsOnTensorCoresAndOnCudaCoresGiveTheExactSumsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  expect_exact_sums_either_way_cuda("LLMHOST_LOW_RANK_OUTER_MMA");
}

// The kernels `variable` = `value` selects give the exact sums within the same bounds: the shared
// cases, from masks recorded and drawn again, and 600 rows of 8200 columns each way, where the
// copy rings wrap: the outer products' 8 chunks of 75 rows take
// 5 steps of 16 rows, the last partial; the dy pass's chunks of 80 rows take 10 tiles, and its
// last chunk of 40 ends in half a step.
void expect_exact_sums_with_setting_cuda(const char* variable, const char* value = "1") {
  const test::ScopedEnvironmentVariable setting_under_test(variable, value);
  expect_exact_sums_either_way_cuda("LLMHOST_LOW_RANK_KEEP_BITS");
  const Case c{600, 8200, 8200, 8};
  const auto in = make_inputs(c, torch::kBFloat16, torch::kCUDA);
  const std::string label = std::string(variable) + "=" + value + ", 600 rows";
  expect_matches_exact(run_update(in, 2.0, 0.0), exact(in, 2.0, torch::ones({c.rows, c.in}), 1.0),
                       label);
  for (const char* bits : {"1", "0"}) {
    const test::ScopedEnvironmentVariable setting("LLMHOST_LOW_RANK_KEEP_BITS", bits);
    const auto ours = run_update(in, 0.5, 0.3);
    const auto keep = (ours.grad_x.to(torch::kCPU, torch::kDouble) != 0).to(torch::kDouble);
    expect_matches_exact(ours, exact(in, 0.5, keep, 1.0 / 0.7),
                         label + ", dropout 0.3, KEEP_BITS=" + bits);
  }
}

// Backward's dy B and B's gradient from one pass over dy (the default since session 19): dy B's
// sums over column ranges added afterwards, B's gradient's over row chunks; exact within the same
// bounds. With LLMHOST_LOW_RANK_DY_PASS=0, the two kernels before it: the same.
TEST(LowRankUpdate, DownAndOuterProductInOnePassOverDyOrTwoGiveTheExactSumsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  expect_exact_sums_with_setting_cuda("LLMHOST_LOW_RANK_DY_PASS", "1");
  expect_exact_sums_with_setting_cuda("LLMHOST_LOW_RANK_DY_PASS", "0");
}

// The factor gradients' partial sums added by a kernel of ours (the default since session 19),
// B's straight into its [out, r] layout, or by LibTorch's sum (LLMHOST_LOW_RANK_CHUNK_SUM=0):
// exact within the same bounds, with the dy pass (whose dy B sums go through it too) and without.
TEST(LowRankUpdate, PartialSumsAddedByOurKernelOrLibTorchGiveTheExactSumsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* dy_pass : {"1", "0"}) {
    const test::ScopedEnvironmentVariable dy_pass_setting("LLMHOST_LOW_RANK_DY_PASS", dy_pass);
    expect_exact_sums_with_setting_cuda("LLMHOST_LOW_RANK_CHUNK_SUM", "1");
    expect_exact_sums_with_setting_cuda("LLMHOST_LOW_RANK_CHUNK_SUM", "0");
  }
}

// Backward reads the dropout mask forward's down kernel recorded (a byte per 8-element pack), or
// draws it again from the seed (LLMHOST_LOW_RANK_KEEP_BITS=0): either way the mask x's gradient
// shows is the one the value and the factors' gradients were formed with.
TEST(LowRankUpdate, RecordedAndRedrawnDropoutMasksGiveTheExactSumsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  expect_exact_sums_either_way_cuda("LLMHOST_LOW_RANK_KEEP_BITS");
}

// LoRA's up product (forward's u B^T added to y, backward's g A dropped into x's gradient) on
// tensor cores (LLMHOST_LOW_RANK_UP_MMA=1: u and the factor in three bf16 parts each, for widths
// of whole 32-column blocks): the sums are exact within the same bounds, with and without dropout.
TEST(LowRankUpdate, UpProductOnTensorCoresGivesTheExactSumsWithAndWithoutDropoutCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const test::ScopedEnvironmentVariable setting("LLMHOST_LOW_RANK_UP_MMA", "1");
  expect_exact_sums_with_and_without_dropout_cuda("LLMHOST_LOW_RANK_UP_MMA=1");
}

// Backward computes only the gradients asked for: x's without A's (A frozen) and the factors'
// without x's (x from a frozen embedding), each still the exact sum.
TEST(LowRankUpdate, GradientsNotNeededAreLeftOutAndTheOthersStayExactCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const double p = 0.2, scaling = 2.0;
  const auto in = make_inputs(Case{64, 272, 40, 8}, torch::kBFloat16, torch::kCUDA);
  {
    auto x = in.x.clone().requires_grad_(true);
    auto B = in.B.clone().requires_grad_(true);
    low_rank_update(x, in.y, in.A, B, scaling, p).backward(in.dy);
    const auto keep = (x.grad().to(torch::kCPU, torch::kDouble) != 0).to(torch::kDouble);
    const auto ref = exact(in, scaling, keep, 1.0 / (1 - p));
    expect_rounded(x.grad(), ref.grad_x, "A frozen: grad x");
    expect_rounded(B.grad(), ref.grad_B, "A frozen: grad B");
  }
  {
    auto A = in.A.clone().requires_grad_(true);
    auto B = in.B.clone().requires_grad_(true);
    low_rank_update(in.x, in.y, A, B, scaling, 0.0).backward(in.dy);
    const auto ref = exact(in, scaling, torch::ones({64, 272}), 1.0);
    expect_rounded(A.grad(), ref.grad_A, "x without gradient: grad A");
    expect_rounded(B.grad(), ref.grad_B, "x without gradient: grad B");
  }
}

// [batch, tokens, features] activations are rows like any other; no gradient needed is the same
// value as with one.
TEST(LowRankUpdate, BatchedInputWithoutGradientGivesTheGradientPathsValueCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto in = make_inputs(Case{24, 64, 32, 8}, torch::kBFloat16, torch::kCUDA);
  const auto with_grad = run_update(in, 1.5, 0.0).out;
  torch::NoGradGuard no_grad;
  const auto batched =
      low_rank_update(in.x.view({2, 12, 64}), in.y.view({2, 12, 32}), in.A, in.B, 1.5, 0.0);
  ASSERT_EQ(batched.sizes(), (std::vector<int64_t>{2, 12, 32}));
  EXPECT_TRUE(torch::equal(batched.view({24, 32}), with_grad));
}

// llm::low_rank_linear: x W^T + b + the update, W and b frozen.
struct Frozen {
  torch::Tensor W, b;  // W [out, in], b [out] or undefined; the activation dtype
};

Frozen make_frozen(const Case& c, bool bias, const torch::Tensor& like) {
  torch::manual_seed(static_cast<uint64_t>(c.out * 17 + c.in));
  const auto W =
      (torch::randn({c.out, c.in}) / std::sqrt(static_cast<double>(c.in))).to(like.options());
  return {W, bias ? torch::randn({c.out}).to(like.options()) : torch::Tensor()};
}

Outputs run_linear(const Inputs& in, const Frozen& f, double scaling, double dropout) {
  auto x = in.x.clone().requires_grad_(true);
  auto A = in.A.clone().requires_grad_(true);
  auto B = in.B.clone().requires_grad_(true);
  const auto out = low_rank_linear(x, f.W, f.b, A, B, scaling, dropout);
  out.backward(in.dy);
  return {out.detach(), x.grad(), torch::Tensor(), A.grad(), B.grad()};
}

// ours within u |exact| + 3 u M, M the sum of the product's absolute terms plus the update's
// magnitude: one of the two is rounded to the activation type before they are added in fp32 and
// the sum rounded once more (the frozen product, with a bias; without one on CUDA the update,
// which the product then adds itself to in its epilogue), and cuBLAS may round partial sums as
// well; fp32 sums add a relative 2^-16 of the largest.
void expect_within_product_rounding(const torch::Tensor& ours, const torch::Tensor& exact_value,
                                    const torch::Tensor& magnitude, const std::string& what) {
  expect_within(ours, exact_value, magnitude * (3 * unit_of(ours)), what);
}

void expect_linear_matches_exact(const Outputs& ours, const Inputs& in, const Frozen& f,
                                 double scaling, const torch::Tensor& keep, double keep_scale,
                                 const std::string& label) {
  const auto d = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble); };
  const auto update = exact(in, scaling, keep, keep_scale);
  const auto x = d(in.x), W = d(f.W), dy = d(in.dy);
  const auto bias = f.b.defined() ? d(f.b) : torch::zeros({W.size(0)}, torch::kDouble);
  const auto product = x.matmul(W.t()) + bias;
  const auto delta = update.out - d(in.y);  // exact() adds the update to y
  expect_within_product_rounding(ours.out, product + delta,
                                 x.abs().matmul(W.abs().t()) + bias.abs() + delta.abs(),
                                 label + " value");
  expect_within_product_rounding(ours.grad_x, dy.matmul(W) + update.grad_x,
                                 dy.abs().matmul(W.abs()) + update.grad_x.abs(), label + " grad x");
  expect_rounded(ours.grad_A, update.grad_A, label + " grad A");
  expect_rounded(ours.grad_B, update.grad_B, label + " grad B");
}

// Value and gradients are the exact sums within the product's rounding: on the CPU (the
// composition of LibTorch's linear and low_rank_update) and on CUDA, where the product and the
// update are one autograd node (the product added to the update in its epilogue, or with a bias
// the update added into the product in place; backward likewise into dy W).
TEST(LowRankLinear, ValueAndGradientsAreTheExactSumsWithinTheProductsRoundingOnCpuAndCuda) {
  const double scaling = 2.0;
  for (const auto& device : devices()) {
    const auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
    for (const Case c : {Case{37, 64, 48, 8}, Case{300, 520, 264, 4}, Case{129, 64, 8200, 8}}) {
      for (const bool bias : {true, false}) {
        const auto in = make_inputs(c, dtype, device);
        const auto f = make_frozen(c, bias, in.x);
        const auto ours = run_linear(in, f, scaling, 0.0);
        expect_linear_matches_exact(ours, in, f, scaling, torch::ones({c.rows, c.in}), 1.0,
                                    device.str() + " rank " + std::to_string(c.r) +
                                        (bias ? " with bias" : " without bias"));
      }
    }
  }
}

// On CUDA the node is FusedLowRankLinear; LLMHOST_LOW_RANK_WITH_BASE=0 gives the composition
// (cuBLAS's product, then the update's node). The same seed draws the same dropout mask in both,
// so the composition's input gradient of the update alone (the product detached) shows the mask
// the fused node used.
TEST(LowRankLinear, FusedNodeDropsTheMaskTheCompositionDropsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const double p = 0.3, scaling = 0.5;
  const Case c{256, 512, 64, 8};
  const auto in = make_inputs(c, torch::kBFloat16, torch::kCUDA);
  const auto f = make_frozen(c, true, in.x);
  torch::manual_seed(7);
  const auto ours = run_linear(in, f, scaling, p);
  torch::Tensor keep;
  {
    torch::manual_seed(7);
    auto x = in.x.clone().requires_grad_(true);
    const auto product = torch::linear(in.x, f.W, f.b);
    low_rank_update(x, product, in.A, in.B, scaling, p).backward(in.dy);
    keep = (x.grad().to(torch::kCPU, torch::kDouble) != 0).to(torch::kDouble);
  }
  const double n = static_cast<double>(c.rows * c.in);
  EXPECT_NEAR(keep.mean().item<double>(), 1 - p, 5 * std::sqrt(p * (1 - p) / n));
  expect_linear_matches_exact(ours, in, f, scaling, keep, 1.0 / (1 - p), "dropout 0.3");

  auto x = in.x.clone().requires_grad_(true);
  const auto fused = low_rank_linear(x, f.W, f.b, in.A, in.B, scaling, p);
  EXPECT_NE(fused.grad_fn()->name().find("FusedLowRankLinear"), std::string::npos)
      << fused.grad_fn()->name();
  const test::ScopedEnvironmentVariable composed("LLMHOST_LOW_RANK_WITH_BASE", "0");
  const auto composition = low_rank_linear(x, f.W, f.b, in.A, in.B, scaling, p);
  EXPECT_EQ(composition.grad_fn()->name().find("FusedLowRankLinear"), std::string::npos)
      << composition.grad_fn()->name();
}

// Without a gradient anywhere (evaluation with an unmerged adapter) the fused forward gives the
// gradient path's value, for [batch, tokens, features] activations too.
TEST(LowRankLinear, BatchedInputWithoutGradientGivesTheGradientPathsValueCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Case c{24, 64, 32, 8};
  const auto in = make_inputs(c, torch::kBFloat16, torch::kCUDA);
  const auto f = make_frozen(c, true, in.x);
  const auto with_grad = run_linear(in, f, 1.5, 0.0).out;
  torch::NoGradGuard no_grad;
  const auto batched = low_rank_linear(in.x.view({2, 12, 64}), f.W, f.b, in.A, in.B, 1.5, 0.0);
  ASSERT_EQ(batched.sizes(), (std::vector<int64_t>{2, 12, 32}));
  EXPECT_TRUE(torch::equal(batched.view({24, 32}), with_grad));
}

// llm::shared_input_linears: layers 0 and 2 with an update (q and v), layer 1 without (k), over
// one x; each output's gradient dy_p.
struct SharedInput {
  torch::Tensor x;
  std::vector<torch::Tensor> W, dy;
  std::vector<c10::optional<LowRankFactors>> updates;
};

SharedInput make_shared_input(int64_t rows, int64_t in, const std::vector<int64_t>& outs,
                              double dropout) {
  torch::manual_seed(static_cast<uint64_t>(rows * 7 + in));
  const auto act = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(torch::kCUDA);
  SharedInput s{torch::randn({rows, in}).to(act), {}, {}, {}};
  for (size_t p = 0; p < outs.size(); ++p) {
    s.W.push_back((torch::randn({outs[p], in}) / std::sqrt(static_cast<double>(in))).to(act));
    s.dy.push_back(torch::randn({rows, outs[p]}).to(act));
    if (p == 1) {
      s.updates.emplace_back();
    } else {
      s.updates.push_back(LowRankFactors{(torch::randn({8, in}) * 0.3).to(f32),
                                         (torch::randn({outs[p], 8}) * 0.3).to(f32), 2.0, dropout});
    }
  }
  return s;
}

struct SharedOutputs {
  std::vector<torch::Tensor> out, grad_A, grad_B;  // factors' gradients of layers 0 and 2
  torch::Tensor grad_x;
  std::string node;  // layer 0's backward node
};

// s's updates with factors of their own that take gradients.
std::vector<c10::optional<LowRankFactors>> trainable_updates(const SharedInput& s) {
  std::vector<c10::optional<LowRankFactors>> updates;
  for (const auto& u : s.updates) {
    if (!u) {
      updates.emplace_back();
      continue;
    }
    updates.push_back(LowRankFactors{u->A.clone().requires_grad_(true),
                                     u->B.clone().requires_grad_(true), u->scaling, u->dropout});
  }
  return updates;
}

// Through shared_input_linears (`grouped`), or one layer at a time: low_rank_linear and
// torch::linear, the separate nodes whose input gradients autograd adds.
SharedOutputs run_shared_input(const SharedInput& s, bool grouped) {
  auto x = s.x.clone().requires_grad_(true);
  const auto updates = trainable_updates(s);
  std::vector<torch::Tensor> outs;
  if (grouped) {
    outs = shared_input_linears(x, s.W, updates);
  } else {
    for (size_t p = 0; p < s.W.size(); ++p) {
      const auto& u = updates[p];
      outs.push_back(u ? low_rank_linear(x, s.W[p], {}, u->A, u->B, u->scaling, u->dropout)
                       : torch::linear(x, s.W[p]));
    }
  }
  SharedOutputs result;
  if (outs.size() != s.W.size()) return result;
  torch::autograd::backward(outs, s.dy);
  for (const auto& out : outs) result.out.push_back(out.detach());
  for (const auto& u : updates) {
    if (!u) continue;
    result.grad_A.push_back(u->A.grad());
    result.grad_B.push_back(u->B.grad());
  }
  result.grad_x = x.grad();
  result.node = outs[0].grad_fn()->name();
  return result;
}

// |dy_p| |W_p| and |g_p| |A_p| keep_scale (g_p = s dy_p B_p) summed over the layers: what bounds
// the partial sums of x's gradient, whichever order they are added in and elements dropped.
torch::Tensor grad_x_magnitude(const SharedInput& s, double keep_scale) {
  const auto d = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble); };
  auto m = torch::zeros({s.x.size(0), s.x.size(1)}, torch::kDouble);
  for (size_t p = 0; p < s.W.size(); ++p) {
    m += d(s.dy[p]).abs().matmul(d(s.W[p]).abs());
    if (const auto& u = s.updates[p]) {
      m += (d(s.dy[p]).matmul(d(u->B)) * u->scaling).abs().matmul(d(u->A).abs()) * keep_scale;
    }
  }
  return m;
}

// Each output and the factors' gradients are the exact sums within the products' rounding, as
// one layer's are; x's gradient, one buffer that the updates' parts and then the three products
// add themselves into (at most five roundings of partial sums bounded by the magnitude above),
// too: with the two updates' parts written in one pass and with the second added in place
// (LLMHOST_LOW_RANK_UP_PAIR=0), and with forward's two downs in one pass over x or not
// (LLMHOST_LOW_RANK_DOWN_PAIR). On CUDA the three layers are one node.
TEST(SharedInputLinears, OutputsAndGradientsAreTheExactSumsAndTheLayersOneNodeCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const auto& [pair, shape] :
       {std::make_pair("1", std::make_pair(int64_t{37}, std::vector<int64_t>{48, 32, 48})),
        std::make_pair("1", std::make_pair(int64_t{129}, std::vector<int64_t>{64, 64, 8200})),
        std::make_pair("0", std::make_pair(int64_t{37}, std::vector<int64_t>{48, 32, 48}))})
    for (const char* down_pair : {"0", "1"}) {
      const test::ScopedEnvironmentVariable setting("LLMHOST_LOW_RANK_UP_PAIR", pair);
      const test::ScopedEnvironmentVariable down_setting("LLMHOST_LOW_RANK_DOWN_PAIR", down_pair);
      const auto s = make_shared_input(shape.first, 64, shape.second, 0.0);
      const auto ours = run_shared_input(s, true);
      ASSERT_EQ(ours.out.size(), 3u) << "shared_input_linears did not apply";
      EXPECT_NE(ours.node.find("SharedInputLinears"), std::string::npos) << ours.node;
      const auto d = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kDouble); };
      const auto x = d(s.x);
      auto grad_x = torch::zeros_like(x);
      size_t update = 0;
      for (size_t p = 0; p < 3; ++p) {
        const std::string label = std::string("pair ") + pair + ", down pair " + down_pair +
                                  ", rows " + std::to_string(shape.first) + ", layer " +
                                  std::to_string(p);
        const auto W = d(s.W[p]);
        auto value = x.matmul(W.t());
        auto magnitude = x.abs().matmul(W.abs().t());
        grad_x += d(s.dy[p]).matmul(W);
        if (const auto& u = s.updates[p]) {
          const Inputs in{s.x, torch::zeros_like(s.dy[p]), u->A, u->B, s.dy[p]};
          const auto ref = exact(in, u->scaling, torch::ones_like(x), 1.0);
          value += ref.out;
          magnitude += ref.out.abs();
          grad_x += ref.grad_x;
          expect_rounded(ours.grad_A[update], ref.grad_A, label + " grad A");
          expect_rounded(ours.grad_B[update], ref.grad_B, label + " grad B");
          ++update;
        }
        expect_within_product_rounding(ours.out[p], value, magnitude, label + " value");
      }
      expect_within(ours.grad_x, grad_x, grad_x_magnitude(s, 1.0) * (6 * unit_of(ours.grad_x)),
                    std::string("pair ") + pair + ", down pair " + down_pair + ", rows " +
                        std::to_string(shape.first) + " grad x");
    }
}

// With dropout the node draws the masks layer by layer as separate nodes do, from the same seed:
// outputs and the factors' gradients are the same kernels' results on the same masks, equal to
// one layer at a time; x's gradient differs only in the order of its sums. So with the two
// updates' parts of x's gradient in one pass or not (LLMHOST_LOW_RANK_UP_PAIR), from recorded
// masks or masks drawn again (LLMHOST_LOW_RANK_KEEP_BITS), in the pass with 4 columns a lane
// (LLMHOST_LOW_RANK_UP_PAIR_NARROW=1: recorded masks only; with masks drawn again the other pass
// runs), with forward's two downs in one pass over x (LLMHOST_LOW_RANK_DOWN_PAIR=1: the same sums
// in the same order, so the same outputs), and with both A gradients from one pass over x
// (LLMHOST_LOW_RANK_OUTER_PAIR=1: each part's sums as the one-update kernel forms them, so the
// same gradients; recorded masks only).
TEST(SharedInputLinears, DropoutMasksAndResultsAreThoseOfTheLayersOneByOneCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const double p = 0.3;
  const auto s = make_shared_input(256, 512, {64, 32, 64}, p);
  struct Setting {
    const char *pair, *bits, *narrow, *down_pair, *outer_pair;
  };
  for (const Setting& setting : {Setting{"1", "1", "0", "0", "0"}, Setting{"1", "0", "0", "0", "0"},
                                 Setting{"0", "1", "0", "0", "0"}, Setting{"1", "1", "1", "0", "0"},
                                 Setting{"1", "0", "1", "0", "0"}, Setting{"1", "1", "0", "1", "0"},
                                 Setting{"1", "0", "0", "1", "0"}, Setting{"1", "1", "0", "0", "1"},
                                 Setting{"1", "0", "0", "0", "1"}}) {
    const auto [pair, bits, narrow, down_pair, outer_pair] = setting;
    const test::ScopedEnvironmentVariable pair_setting("LLMHOST_LOW_RANK_UP_PAIR", pair);
    const test::ScopedEnvironmentVariable bits_setting("LLMHOST_LOW_RANK_KEEP_BITS", bits);
    const test::ScopedEnvironmentVariable narrow_setting("LLMHOST_LOW_RANK_UP_PAIR_NARROW", narrow);
    const test::ScopedEnvironmentVariable down_setting("LLMHOST_LOW_RANK_DOWN_PAIR", down_pair);
    const test::ScopedEnvironmentVariable outer_setting("LLMHOST_LOW_RANK_OUTER_PAIR", outer_pair);
    const std::string label = std::string("pair ") + pair + ", recorded masks " + bits +
                              ", narrow " + narrow + ", down pair " + down_pair + ", outer pair " +
                              outer_pair;
    torch::manual_seed(11);
    const auto grouped = run_shared_input(s, true);
    ASSERT_EQ(grouped.out.size(), 3u) << "shared_input_linears did not apply";
    torch::manual_seed(11);
    const auto separate = run_shared_input(s, false);
    for (const size_t layer : {0, 2}) {
      EXPECT_TRUE(torch::equal(grouped.out[layer], separate.out[layer]))
          << label << ", layer " << layer;
    }
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_TRUE(torch::equal(grouped.grad_A[i], separate.grad_A[i])) << label << ", update " << i;
      EXPECT_TRUE(torch::equal(grouped.grad_B[i], separate.grad_B[i])) << label << ", update " << i;
    }
    const auto bound =
        grad_x_magnitude(s, 1.0 / (1 - p)) * (2 * 6 * unit_of(grouped.grad_x));  // both rounded
    const auto excess = ((grouped.grad_x.to(torch::kCPU, torch::kDouble) -
                          separate.grad_x.to(torch::kCPU, torch::kDouble))
                             .abs() -
                         bound)
                            .max()
                            .item<double>();
    EXPECT_LE(excess, 0.0) << label;
  }
  // The masks were drawn: without dropout the same inputs give another value.
  torch::manual_seed(11);
  const auto dropped = run_shared_input(s, true);
  const auto undropped = run_shared_input(make_shared_input(256, 512, {64, 32, 64}, 0.0), true);
  ASSERT_EQ(dropped.out.size(), 3u);
  ASSERT_EQ(undropped.out.size(), 3u);
  EXPECT_FALSE(torch::equal(dropped.out[0], undropped.out[0]));
}

// The node against the layers one by one with forward's masks recorded and drawn again
// (LLMHOST_LOW_RANK_KEEP_BITS=0): the same factor gradients, bit for bit, and with `outputs` the
// same outputs of the layers with updates.
void expect_the_layers_bits(const SharedInput& s, uint64_t seed, bool outputs) {
  for (const char* bits : {"1", "0"}) {
    const test::ScopedEnvironmentVariable bits_setting("LLMHOST_LOW_RANK_KEEP_BITS", bits);
    torch::manual_seed(seed);
    const auto grouped = run_shared_input(s, true);
    ASSERT_EQ(grouped.out.size(), 3u) << "shared_input_linears did not apply";
    torch::manual_seed(seed);
    const auto separate = run_shared_input(s, false);
    for (const size_t layer : {0, 2}) {
      if (outputs) {
        EXPECT_TRUE(torch::equal(grouped.out[layer], separate.out[layer]))
            << "layer " << layer << ", KEEP_BITS=" << bits;
      }
    }
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_TRUE(torch::equal(grouped.grad_A[i], separate.grad_A[i]))
          << "update " << i << ", KEEP_BITS=" << bits;
      EXPECT_TRUE(torch::equal(grouped.grad_B[i], separate.grad_B[i]))
          << "update " << i << ", KEEP_BITS=" << bits;
    }
  }
}

// Both A gradients from one pass over x (LLMHOST_LOW_RANK_OUTER_PAIR=1) where its copy ring
// wraps: 600 rows of 8224 columns make 8 chunks of 75 rows (5 steps, the last partial) and a last
// 128-column tile with 4 packs of 16. Each part's sums are those of the one-update kernel, so the
// gradients equal the layers' one by one, bit for bit; with the masks recorded by forward and
// drawn again (LLMHOST_LOW_RANK_KEEP_BITS=0).
TEST(SharedInputLinears, BothAGradientsFromOnePassOverXWhereTheRingWrapsAreTheLayersOnesCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const test::ScopedEnvironmentVariable outer_pair("LLMHOST_LOW_RANK_OUTER_PAIR", "1");
  expect_the_layers_bits(make_shared_input(600, 8224, {64, 32, 64}, 0.3), 17, false);
}

// The scope that asks the low-rank nodes to add their factors' gradients into .grad holds on its
// own thread while it lives, nests, and is not seen from another thread (autograd runs CUDA
// backward on its own threads: the nodes read it in forward).
TEST(FactorGradientsIntoGrad, HoldsOnItsThreadWhileAliveAndNests) {
  EXPECT_FALSE(FactorGradientsIntoGrad::active());
  {
    const FactorGradientsIntoGrad outer;
    EXPECT_TRUE(FactorGradientsIntoGrad::active());
    {
      const FactorGradientsIntoGrad inner;
      EXPECT_TRUE(FactorGradientsIntoGrad::active());
    }
    EXPECT_TRUE(FactorGradientsIntoGrad::active());
    bool elsewhere = true;
    std::thread([&] { elsewhere = FactorGradientsIntoGrad::active(); }).join();
    EXPECT_FALSE(elsewhere);
  }
  EXPECT_FALSE(FactorGradientsIntoGrad::active());
}

// Each fp32 operand split into its bf16 parts once (LLMHOST_LOW_RANK_SPLIT_ONCE=1: the factors
// before forward's down pair, u by it, g by backward's chunk sum): the same kernels' sums from
// parts loaded instead of split again, so the outputs and factor gradients of the layers one by
// one, bit for bit, with masks recorded and drawn again.
TEST(SharedInputLinears, OperandsSplitOnceGiveTheLayersOneByOneBitsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const test::ScopedEnvironmentVariable split("LLMHOST_LOW_RANK_SPLIT_ONCE", "1");
  // Outputs of 512 columns: dy's pass sums two 256-column ranges, so g is formed (in parts) by
  // the chunk sum, as at 7b.
  expect_the_layers_bits(make_shared_input(256, 512, {512, 32, 512}, 0.3), 19, true);
}

// One grouped forward and torch::autograd::grad over its factors, each factor's .grad set to
// `prior` (or none) first, with a FactorGradientsIntoGrad alive through forward or not: what
// autograd returned for each factor, and each factor's .grad after.
struct FactorGradientsAfter {
  std::vector<torch::Tensor> returned, grad;
};

FactorGradientsAfter factor_gradients_after(const SharedInput& s, const torch::Tensor& prior,
                                            bool in_place) {
  const auto updates = trainable_updates(s);
  std::vector<torch::Tensor> factors;
  for (const auto& u : updates) {
    if (u) factors.insert(factors.end(), {u->A, u->B});
  }
  for (auto& f : factors) {
    if (prior.defined()) f.mutable_grad() = prior.narrow(0, 0, f.numel()).view_as(f).clone();
  }
  torch::manual_seed(23);
  std::vector<torch::Tensor> outs;
  {
    c10::optional<FactorGradientsIntoGrad> scope;
    if (in_place) scope.emplace();
    outs = shared_input_linears(s.x.clone().requires_grad_(true), s.W, updates);
  }
  EXPECT_EQ(outs.size(), 3u) << "shared_input_linears did not apply";
  FactorGradientsAfter after;
  after.returned = torch::autograd::grad(outs, factors, s.dy, /*retain_graph=*/false,
                                         /*create_graph=*/false, /*allow_unused=*/true);
  for (const auto& f : factors) after.grad.push_back(f.grad());
  return after;
}

// LLMHOST_LOW_RANK_GRAD_IN_PLACE=1 with a FactorGradientsIntoGrad alive through forward: where a
// factor's .grad is there, the kernel that sums the factor's gradient adds it there, the bits of
// AccumulateGrad's add, and autograd receives none (which torch::autograd::grad shows); where it
// is not, autograd receives the gradient as before. With each operand split once and not, and
// outputs wide enough for g to come from the chunk sum.
TEST(SharedInputLinears, FactorGradientsAddIntoGradAsAutogradWouldCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const test::ScopedEnvironmentVariable in_place("LLMHOST_LOW_RANK_GRAD_IN_PLACE", "1");
  const auto s = make_shared_input(256, 512, {512, 32, 512}, 0.3);
  const auto prior = torch::randn({512 * 8}, s.x.options().dtype(torch::kFloat));
  for (const char* split : {"0", "1"}) {
    const test::ScopedEnvironmentVariable split_setting("LLMHOST_LOW_RANK_SPLIT_ONCE", split);
    const auto reference = factor_gradients_after(s, torch::Tensor(), false);
    const auto added = factor_gradients_after(s, prior, true);
    const auto first = factor_gradients_after(s, torch::Tensor(), true);
    ASSERT_EQ(reference.returned.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      const auto& gradient = reference.returned[i];
      ASSERT_TRUE(gradient.defined()) << "factor " << i;
      const auto expected = prior.narrow(0, 0, gradient.numel()).view_as(gradient) + gradient;
      EXPECT_FALSE(added.returned[i].defined()) << "factor " << i << ": autograd received it";
      EXPECT_TRUE(torch::equal(added.grad[i], expected)) << "factor " << i << ", split " << split;
      ASSERT_TRUE(first.returned[i].defined()) << "factor " << i << " without a .grad";
      EXPECT_TRUE(torch::equal(first.returned[i], gradient)) << "factor " << i;
      EXPECT_FALSE(first.grad[i].defined()) << "factor " << i;
    }
  }
  EXPECT_FALSE(FactorGradientsIntoGrad::active());
}

// Where the layers cannot be one node (no gradient, or LLMHOST_SHARED_INPUT_GRAD=0) it returns
// nothing and the caller runs them one by one.
TEST(SharedInputLinears, ReturnsNothingWithoutGradientOrWhenSwitchedOffCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto s = make_shared_input(16, 64, {32, 32, 32}, 0.0);
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(shared_input_linears(s.x, s.W, s.updates).empty());
  }
  const test::ScopedEnvironmentVariable off("LLMHOST_SHARED_INPUT_GRAD", "0");
  auto x = s.x.clone().requires_grad_(true);
  EXPECT_TRUE(shared_input_linears(x, s.W, s.updates).empty());
}

}  // namespace
}  // namespace llm
