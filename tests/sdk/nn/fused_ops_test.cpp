// The training operations with hand-written backward passes (sdk/src/nn/fused_ops.cpp: RMSNorm,
// SwiGLU, rotary) against autograd through the plain LibTorch computation, values and input
// gradients: the LibTorch fallback on the CPU, and the CUDA kernels where a device is available.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "llm/nn/activation.hpp"
#include "llm/nn/attention.hpp"
#include "llm/nn/linear.hpp"
#include "llm/nn/norm.hpp"
#include "llm/nn/parallel_block.hpp"
#include "support/test_support.hpp"

namespace llm {
namespace {

using Op = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

struct Result {
  torch::Tensor out;
  std::vector<torch::Tensor> grads;
};

// out = op(inputs) and the inputs' gradients for the upstream gradient `grad_out`.
Result run(const Op& op, const std::vector<torch::Tensor>& inputs, const torch::Tensor& grad_out) {
  std::vector<torch::Tensor> leaves;
  for (const auto& t : inputs) leaves.push_back(t.detach().clone().requires_grad_(true));
  const auto out = op(leaves);
  out.backward(grad_out);
  Result r{out.detach(), {}};
  for (const auto& leaf : leaves) r.grads.push_back(leaf.grad());
  return r;
}

// The two computations round the same values to the result's type at the same points, but their
// fp32 intermediates may differ in the last place (operation order, exp/rsqrt implementations), so
// a stored value may land one step of its type away: `steps` of the type's relative precision
// (bf16 2^-8, fp16 2^-11; fp32 a reordered sum of a few hundred terms, 2^-16) times the largest
// magnitude of the reference tensor.
void expect_close(const torch::Tensor& ours, const torch::Tensor& reference, double steps,
                  const std::string& what) {
  ASSERT_EQ(ours.sizes(), reference.sizes()) << what;
  ASSERT_EQ(ours.scalar_type(), reference.scalar_type()) << what;
  const double unit = reference.scalar_type() == torch::kBFloat16 ? std::ldexp(1.0, -8)
                      : reference.scalar_type() == torch::kHalf   ? std::ldexp(1.0, -11)
                                                                  : std::ldexp(1.0, -16);
  const auto a = ours.to(torch::kFloat).cpu();
  const auto b = reference.to(torch::kFloat).cpu();
  const double scale = b.abs().max().item<double>();
  EXPECT_LE((a - b).abs().max().item<double>(), steps * unit * scale) << what;
}

std::vector<torch::Device> devices() {
  std::vector<torch::Device> list{torch::kCPU};
  if (torch::cuda::is_available()) list.emplace_back(torch::kCUDA);
  return list;
}

torch::Tensor plain_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const auto x32 = x.to(torch::kFloat);
  return weight * (x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

// An RMSNorm of `width` with weights in [0.5, 1.5).
RMSNorm make_rms_norm(int64_t width, const torch::TensorOptions& options) {
  RMSNorm norm(width, 1e-5, options);
  torch::NoGradGuard no_grad;
  norm->weight.copy_(torch::rand({width}) + 0.5);
  return norm;
}

// Each RMSNorm case: fp32 and bf16 on each device, widths 96 and 100 (in bf16 the CUDA kernel
// holds a row of 96 as 16-byte packs in registers, and takes its element-wise form for 100, not a
// whole number of packs); `check` gets the options, the norm, x [3, 7, width] and a label.
template <typename Check>
void for_each_rms_norm_case(uint64_t seed, const Check& check) {
  for (const auto& device : devices()) {
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (const int64_t width : {96, 100}) {
        torch::manual_seed(seed);
        const auto options = torch::TensorOptions().dtype(dtype).device(device);
        auto norm = make_rms_norm(width, options);
        const auto x = (torch::randn({3, 7, width}) * 3).to(options);
        check(options, norm, x,
              device.str() + " " + std::string(c10::toString(dtype)) + " width " +
                  std::to_string(width));
      }
    }
  }
}

TEST(FusedRmsNorm, ValueAndInputGradientAreAutogradsOfThePlainComputationOnCpuAndCuda) {
  for_each_rms_norm_case(1, [](const torch::TensorOptions& options, RMSNorm& norm,
                               const torch::Tensor& x, const std::string& what) {
    const auto grad = torch::randn(x.sizes()).to(options);
    const auto ours = run([&](const auto& in) { return norm(in[0]); }, {x}, grad);
    const auto plain =
        run([&](const auto& in) { return plain_rms_norm(in[0], norm->weight, 1e-5); }, {x}, grad);
    expect_close(ours.out, plain.out, 2, "value, " + what);
    expect_close(ours.grads[0], plain.grads[0], 4, "gradient, " + what);
  });
}

// RMSNorm passing its input on for the residual sum: the two outputs are the norm and x, and x's
// gradient through both (one upstream gradient over the two concatenated) is autograd's through
// the plain norm plus x's own, which the CUDA kernel adds before its one rounding: a few steps of
// the type apart. Width 96 takes the packed kernel, 100 the element-wise one.
TEST(FusedRmsNorm, PassingTheInputOnAddsItsGradientToTheNormsOnCpuAndCuda) {
  for_each_rms_norm_case(4, [](const torch::TensorOptions& options, RMSNorm& norm,
                               const torch::Tensor& x, const std::string& what) {
    auto sizes = x.sizes().vec();
    sizes.back() *= 2;
    const auto grad = torch::randn(sizes).to(options);
    const auto ours = run(
        [&](const auto& in) {
          const auto [normed, passed] = norm->forward_passing_input(in[0]);
          return torch::cat({normed, passed}, -1);
        },
        {x}, grad);
    const auto plain = run(
        [&](const auto& in) {
          return torch::cat({plain_rms_norm(in[0], norm->weight, 1e-5), in[0]}, -1);
        },
        {x}, grad);
    expect_close(ours.out, plain.out, 2, "value, " + what);
    expect_close(ours.grads[0], plain.grads[0], 4, "gradient, " + what);
  });
}

// A parallel-residual block's inputs (its two LayerNorms of x, and x for the residual sum)
// against LibTorch's layer_norm twice and x, values and x's gradient through all three (the
// outputs concatenated, one upstream gradient). Width 96 takes the CUDA kernel (whole 16-byte
// packs), 100 LibTorch's. The kernel rounds x's gradient once where autograd rounds each norm's
// and each sum: a few steps of the type apart.
TEST(FusedLayerNormPair, ValuesAndInputGradientAreTwoLayerNormsAndTheResidualOnCpuAndCuda) {
  for (const auto& device : devices()) {
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (const int64_t width : {96, 100}) {
        torch::manual_seed(2);
        const auto options = torch::TensorOptions().dtype(dtype).device(device);
        LayerNorm first(width, 1e-5, options), second(width, 1e-5, options);
        {
          torch::NoGradGuard no_grad;
          for (auto* norm : {&first, &second}) {
            (*norm)->weight.copy_(torch::rand({width}) + 0.5);
            (*norm)->bias.copy_(torch::randn({width}) * 0.1);
          }
        }
        // Rows with an offset (the mean matters) and a spread (so does the variance).
        const auto x = (torch::randn({3, 7, width}) * 3 + 1).to(options);
        const auto grad = torch::randn({3, 7, 3 * width}).to(options);
        const auto ours = run(
            [&](const auto& in) {
              const auto block = parallel_block_inputs(in[0], *first, *second);
              return torch::cat({block.first, block.second, block.residual}, -1);
            },
            {x}, grad);
        const auto plain = run(
            [&](const auto& in) {
              const auto norm = [&](const LayerNorm& n) {
                return torch::layer_norm(in[0], {width}, n->weight, n->bias, 1e-5);
              };
              return torch::cat({norm(first), norm(second), in[0]}, -1);
            },
            {x}, grad);
        const std::string what = device.str() + " " + std::string(c10::toString(dtype)) +
                                 " width " + std::to_string(width);
        expect_close(ours.out, plain.out, 2, "value, " + what);
        expect_close(ours.grads[0], plain.grads[0], 4, "gradient, " + what);
      }
    }
  }
}

// The block's three-way sum is LibTorch's a + b + c bit for bit (rounded after each add), and
// passes its gradient to each input. 1,280 elements (whole packs on CUDA) and 105 (element-wise).
TEST(FusedAddThree, SumIsTwoAddsBitForBitAndEachInputGetsTheGradientOnCpuAndCuda) {
  for (const auto& device : devices()) {
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (const auto& shape : {std::vector<int64_t>{4, 5, 64}, std::vector<int64_t>{3, 7, 5}}) {
        torch::manual_seed(4);
        const auto options = torch::TensorOptions().dtype(dtype).device(device);
        const auto a = torch::randn(shape).to(options), b = torch::randn(shape).to(options),
                   c = torch::randn(shape).to(options), grad = torch::randn(shape).to(options);
        const auto ours =
            run([](const auto& in) { return add_three(in[0], in[1], in[2]); }, {a, b, c}, grad);
        const std::string what = device.str() + " " + std::string(c10::toString(dtype)) + " " +
                                 std::to_string(a.numel()) + " elements";
        EXPECT_TRUE(torch::equal(ours.out, a + b + c)) << what;
        for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(ours.grads[i], grad)) << what;
      }
    }
  }
}

// Shapes of 1,280 elements (whole 16-byte packs on CUDA) and 105 (the element-wise form).
TEST(FusedSwiGlu, ValueAndGradientsAreAutogradsOfSiluTimesUpOnCpuAndCuda) {
  for (const auto& device : devices()) {
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (const auto& shape : {std::vector<int64_t>{4, 5, 64}, std::vector<int64_t>{3, 7, 5}}) {
        torch::manual_seed(2);
        const auto options = torch::TensorOptions().dtype(dtype).device(device);
        const auto gate = (torch::randn(shape) * 4).to(options);
        const auto up = torch::randn(shape).to(options);
        const auto grad = torch::randn(shape).to(options);
        const auto ours =
            run([](const auto& in) { return gated_activation(Activation::kSilu, in[0], in[1]); },
                {gate, up}, grad);
        const auto plain =
            run([](const auto& in) { return torch::silu(in[0]) * in[1]; }, {gate, up}, grad);
        const std::string what = device.str() + " " + std::string(c10::toString(dtype)) + " " +
                                 std::to_string(gate.numel()) + " elements";
        expect_close(ours.out, plain.out, 2, "value, " + what);
        expect_close(ours.grads[0], plain.grads[0], 2, "gate gradient, " + what);
        expect_close(ours.grads[1], plain.grads[1], 2, "up gradient, " + what);
      }
    }
  }
}

// The CUDA rotary kernel against the CPU's plain computation on the same values: full and partial
// (GPT-NeoX) rotary, an offset, and an input laid out as the projections produce it ([B, T, H, D]
// memory seen as [B, H, T, D]); 3 heads (one a thread) and 8 (four a thread, the tables shared).
TEST(FusedRotary, CudaKernelGivesTheCpuValuesAndGradients) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const int64_t heads : {3, 8}) {
    for (const int64_t rotary_dim : {16, 4}) {
      for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
        torch::manual_seed(3);
        RotaryEmbedding rope(rotary_dim, 10000.0, 32);
        const auto memory = torch::randn({2, 9, heads, 16}).to(dtype);  // [B, T, H, D]
        const auto grad = torch::randn({2, heads, 9, 16}).to(dtype);    // [B, H, T, D]
        const auto op = [&](const auto& in) { return rope.apply(in[0].transpose(1, 2), 5); };
        const auto cpu = run(op, {memory}, grad);
        const auto cuda = run(op, {memory.to(torch::kCUDA)}, grad.to(torch::kCUDA));
        const std::string what = std::to_string(heads) + " heads, rotary_dim " +
                                 std::to_string(rotary_dim) + " " +
                                 std::string(c10::toString(dtype));
        expect_close(cuda.out, cpu.out, 1, "value, " + what);
        expect_close(cuda.grads[0], cpu.grads[0], 1, "gradient, " + what);
      }
    }
  }
}

// Packed samples: each token rotated at its position within its own sample (the kernel reads the
// positions from the device), against the CPU's gathered tables; 3 heads and 4.
TEST(FusedRotary, PackedPositionsGiveTheCpuValuesAndGradientsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const int64_t heads : {3, 4}) {
    for (const int64_t rotary_dim : {16, 4}) {
      for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
        torch::manual_seed(4);
        RotaryEmbedding rope(rotary_dim, 10000.0, 32);
        const std::vector<int64_t> lengths{4, 7, 2};
        const PackedSequences cpu_packing(lengths, torch::kCPU);
        const PackedSequences cuda_packing(lengths, torch::kCUDA);
        const auto memory = torch::randn({1, 13, heads, 16}).to(dtype);  // [1, T, H, D]
        const auto grad = torch::randn({1, heads, 13, 16}).to(dtype);
        const auto cpu = run(
            [&](const auto& in) { return rope.apply_packed(in[0].transpose(1, 2), cpu_packing); },
            {memory}, grad);
        const auto cuda = run(
            [&](const auto& in) { return rope.apply_packed(in[0].transpose(1, 2), cuda_packing); },
            {memory.to(torch::kCUDA)}, grad.to(torch::kCUDA));
        const std::string what = std::to_string(heads) + " heads, rotary_dim " +
                                 std::to_string(rotary_dim) + " " +
                                 std::string(c10::toString(dtype));
        expect_close(cuda.out, cpu.out, 1, "value, " + what);
        expect_close(cuda.grads[0], cpu.grads[0], 1, "gradient, " + what);
      }
    }
  }
}

// GPT-NeoX rotates q and k stacked as [B, H, 2, T, D] (a permuted view of [B, T, H, 2, D]): the
// kernel takes the two head dimensions as one (6 of them, and 4: the packs past rotary_dim copied
// four heads a thread).
TEST(FusedRotary, StackedQueryAndKeyHeadsGiveTheCpuValuesAndGradientsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const int64_t heads : {3, 2}) {
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      torch::manual_seed(5);
      RotaryEmbedding rope(16, 10000.0, 32);
      const auto memory = torch::randn({2, 9, heads, 2, 32}).to(dtype);  // [B, T, H, 2, D]
      const auto grad = torch::randn({2, heads, 2, 9, 32}).to(dtype);    // [B, H, 2, T, D]
      const auto op = [&](const auto& in) { return rope.apply(in[0].permute({0, 2, 3, 1, 4}), 3); };
      const auto cpu = run(op, {memory}, grad);
      const auto cuda = run(op, {memory.to(torch::kCUDA)}, grad.to(torch::kCUDA));
      const std::string what = std::to_string(heads) + " x 2 heads " + c10::toString(dtype);
      expect_close(cuda.out, cpu.out, 1, "value, " + what);
      expect_close(cuda.grads[0], cpu.grads[0], 1, "gradient, " + what);
    }
  }
}

// GPT-NeoX's query_key_value output ([B, T, H * 3 * D], per head [q | k | v]) split into q, k, v
// with q and k rotated: on CUDA one kernel each way (head_dim 32, rotary_dim 16: whole packs),
// against the CPU's stacked rotation, from position 0 and at packed positions; rotated in the
// projection's memory and (LLMHOST_ROTARY_IN_PLACE=0) copied out.
TEST(FusedRotary, InterleavedQkvSplitGivesTheCpuValuesAndGradientsCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* in_place : {"1", "0"}) {
    const test::ScopedEnvironmentVariable setting("LLMHOST_ROTARY_IN_PLACE", in_place);
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (const bool packed : {false, true}) {
        torch::manual_seed(6);
        RotaryEmbedding rope(16, 10000.0, 32);
        const int64_t batch = packed ? 1 : 2, tokens = 13, heads = 3, dim = 32;
        const std::vector<int64_t> lengths{4, 7, 2};
        const PackedSequences cpu_packing(lengths, torch::kCPU);
        const PackedSequences cuda_packing(lengths, torch::kCUDA);
        const auto qkv = torch::randn({batch, tokens, heads * 3 * dim}).to(dtype);
        const auto grad = torch::randn({3, batch, heads, tokens, dim}).to(dtype);
        const auto op = [&](const PackedSequences& packing) {
          return [&](const std::vector<torch::Tensor>& in) {
            const auto parts =
                rope.split_interleaved_qkv(in[0], heads, nullptr, packed ? &packing : nullptr);
            return torch::stack({parts[0], parts[1], parts[2]});
          };
        };
        const auto cpu = run(op(cpu_packing), {qkv}, grad);
        const auto cuda = run(op(cuda_packing), {qkv.to(torch::kCUDA)}, grad.to(torch::kCUDA));
        const std::string what = std::string(c10::toString(dtype)) +
                                 (packed ? ", packed positions" : ", positions 0..T") +
                                 ", in place " + in_place;
        expect_close(cuda.out, cpu.out, 1, "value, " + what);
        expect_close(cuda.grads[0], cpu.grads[0], 1, "gradient, " + what);
      }
    }
  }
}

// In place, q, k and v are the projection's own memory (no copy of v, nor of the unrotated dims),
// and bit for bit what the copying kernel computes.
TEST(FusedRotary, InterleavedQkvSplitInPlaceReturnsViewsOfTheProjectionCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(7);
  RotaryEmbedding rope(16, 10000.0, 32);
  const int64_t heads = 3, dim = 32;
  const auto qkv = torch::randn({2, 13, heads * 3 * dim}, torch::kCUDA).to(torch::kBFloat16);
  std::array<torch::Tensor, 3> copied;
  {
    const test::ScopedEnvironmentVariable setting("LLMHOST_ROTARY_IN_PLACE", "0");
    copied = rope.split_interleaved_qkv(qkv.clone(), heads, nullptr, nullptr);
  }
  const auto projection = qkv.clone();
  const auto views = rope.split_interleaved_qkv(projection, heads, nullptr, nullptr);
  // Addresses as integers: gtest would print a char pointer as a string (of device memory).
  const auto address = [](const torch::Tensor& t) {
    return reinterpret_cast<uintptr_t>(t.data_ptr());
  };
  const uintptr_t base = address(projection);
  for (int p = 0; p < 3; ++p) {
    EXPECT_EQ(address(views[p]), base + static_cast<uintptr_t>(p * dim * 2)) << "part " << p;
    EXPECT_TRUE(torch::equal(views[p], copied[p])) << "part " << p;
  }
  // The unrotated half of each head of q and k is untouched, and so is v.
  const auto parts = projection.view({2, 13, heads, 3, dim});
  const auto original = qkv.view({2, 13, heads, 3, dim});
  EXPECT_TRUE(torch::equal(parts.narrow(4, 16, 16), original.narrow(4, 16, 16)));
  EXPECT_TRUE(torch::equal(parts.select(3, 2), original.select(3, 2)));
}

// Packed attention on CUDA in bf16 takes variable-length flash attention (cumulative sequence
// lengths, no [T, T] bias) where LibTorch has it; values and gradients against the same attention
// with the block-diagonal causal bias, in fp32 from the same bf16 inputs. Both round the
// probabilities and the output to bf16 (2^-8 relative each), the gradients a few more times along
// the chain: 4 and 16 steps of bf16 times the largest reference magnitude.
TEST(FusedVarlenAttention, PackedBf16AttentionIsTheBlockDiagonalComputationCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(6);
  const std::vector<int64_t> lengths{5, 17, 3, 40};
  const PackedSequences packing(lengths, torch::kCUDA);
  const int64_t tokens = packing.tokens();
  for (const int64_t kv_heads : {4, 2}) {
    const auto options = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
    const auto q = torch::randn({1, tokens, 4, 64}, options).transpose(1, 2);
    const auto k = torch::randn({1, tokens, kv_heads, 64}, options).transpose(1, 2);
    const auto v = torch::randn({1, tokens, kv_heads, 64}, options).transpose(1, 2);
    const auto grad = torch::randn({1, 4, tokens, 64}, options);
    const auto ours =
        run([&](const auto& in) { return packed_attention(in[0], in[1], in[2], packing); },
            {q, k, v}, grad);
    const auto bias = packing.attention_bias(torch::kFloat).view({1, 1, tokens, tokens});
    const auto reference = run(
        [&](const auto& in) {
          return masked_attention(in[0].to(torch::kFloat), in[1].to(torch::kFloat),
                                  in[2].to(torch::kFloat), bias)
              .to(torch::kBFloat16);
        },
        {q, k, v}, grad);
    const std::string what = std::to_string(kv_heads) + " KV heads";
    expect_close(ours.out, reference.out, 4, "value, " + what);
    for (int i = 0; i < 3; ++i) {
      expect_close(ours.grads[i], reference.grads[i], 16,
                   "gradient " + std::to_string(i) + ", " + what);
    }
  }
}

// Self-attention in a training step on CUDA in bf16: lengths of 64s take cuDNN's fused kernel on
// sm90/sm100 (flash elsewhere), others flash; either way the values and gradients of the same
// attention in fp32 from the same bf16 inputs, with the tolerances of the packed test above. The
// backward node's name shows which kernel ran.
TEST(FusedCausalAttention, TrainingStepBf16AttentionIsTheFp32ComputationCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(7);
  const auto options = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  for (const int64_t tokens : {128, 96}) {
    // [B, T, H, D] transposed to [B, H, T, D], as the projections lay them out.
    const auto q = torch::randn({2, tokens, 4, 64}, options).transpose(1, 2);
    const auto k = torch::randn({2, tokens, 4, 64}, options).transpose(1, 2);
    const auto v = torch::randn({2, tokens, 4, 64}, options).transpose(1, 2);
    const auto grad = torch::randn({2, 4, tokens, 64}, options);
    std::string backward_node;
    const auto ours = run(
        [&](const auto& in) {
          auto out = causal_attention(in[0], in[1], in[2]);
          backward_node = out.grad_fn() ? out.grad_fn()->name() : "none";
          return out;
        },
        {q, k, v}, grad);
    const auto reference = run(
        [&](const auto& in) {
          return reference_causal_attention(in[0].to(torch::kFloat), in[1].to(torch::kFloat),
                                            in[2].to(torch::kFloat))
              .to(torch::kBFloat16);
        },
        {q, k, v}, grad);
    const std::string what = std::to_string(tokens) + " tokens through " + backward_node;
    std::cout << "[ attention ] " << what << "\n";
    expect_close(ours.out, reference.out, 4, "value, " + what);
    for (int i = 0; i < 3; ++i) {
      expect_close(ours.grads[i], reference.grads[i], 16,
                   "gradient " + std::to_string(i) + ", " + what);
    }
  }
}

// A batch-1 bf16/fp16 product (decode) takes its own kernel: fp32 accumulation rounded once, so
// within the type's unit roundoff (2^-8 bf16, 2^-11 fp16, relative) of the exact product of the
// stored values (whose pairwise products fp32 holds exactly), plus fp32 accumulation error (K
// 2^-24 of the sum of |w x| and |b|). Widths
// 4096 and 520 (not a multiple of the 32 lanes' packs), with and without bias.
TEST(FusedGemv, BatchOneLinearIsTheExactProductRoundedOnceCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::NoGradGuard no_grad;
  for (const auto dtype : {torch::kBFloat16, torch::kHalf}) {
    for (const int64_t cols : {4096, 520}) {
      for (const bool with_bias : {false, true}) {
        torch::manual_seed(7);
        const auto options = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
        AdaptableLinear linear(cols, 300, with_bias, options);
        linear->weight.copy_(torch::randn({300, cols}) * 0.05);
        if (with_bias) linear->bias.copy_(torch::randn({300}));
        const auto x = torch::randn({1, 1, cols}, options);
        const auto y = linear(x).to(torch::kFloat).cpu();
        const auto w32 = linear->weight.to(torch::kFloat).cpu();
        const auto x32 = x.to(torch::kFloat).cpu().view({cols});
        auto exact = torch::mv(w32.to(torch::kDouble), x32.to(torch::kDouble));
        if (with_bias) exact = exact + linear->bias.to(torch::kDouble).cpu();
        auto magnitude = torch::mv(w32.abs().to(torch::kDouble), x32.abs().to(torch::kDouble));
        if (with_bias) magnitude = magnitude + linear->bias.abs().to(torch::kDouble).cpu();
        const double roundoff =
            dtype == torch::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
        const auto bound =
            exact.abs() * roundoff * 1.01 + magnitude * double(cols + 1) * std::ldexp(1.0, -24);
        const auto error = (y.view({300}).to(torch::kDouble) - exact).abs();
        EXPECT_TRUE((error <= bound).all().item<bool>())
            << c10::toString(dtype) << " width " << cols << (with_bias ? " with bias" : "")
            << ": worst excess " << (error - bound).max().item<double>();
        EXPECT_EQ(linear(x).sizes(), (std::vector<int64_t>{1, 1, 300}));
      }
    }
  }
}

}  // namespace
}  // namespace llm
