// The training operations with hand-written backward passes (sdk/src/nn/fused_ops.cpp: RMSNorm,
// SwiGLU, rotary) against autograd through the plain LibTorch computation, values and input
// gradients: the LibTorch fallback on the CPU, and the CUDA kernels where a device is available.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <vector>

#include "llm/nn/activation.hpp"
#include "llm/nn/attention.hpp"
#include "llm/nn/norm.hpp"

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

TEST(FusedRmsNorm, ValueAndInputGradientAreAutogradsOfThePlainComputationOnCpuAndCuda) {
  for (const auto& device : devices()) {
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      torch::manual_seed(1);
      const auto options = torch::TensorOptions().dtype(dtype).device(device);
      RMSNorm norm(96, 1e-5, options);
      {
        torch::NoGradGuard no_grad;
        norm->weight.copy_(torch::rand({96}) + 0.5);
      }
      const auto x = (torch::randn({3, 7, 96}) * 3).to(options);
      const auto grad = torch::randn({3, 7, 96}).to(options);
      const auto ours = run([&](const auto& in) { return norm(in[0]); }, {x}, grad);
      const auto plain =
          run([&](const auto& in) { return plain_rms_norm(in[0], norm->weight, 1e-5); }, {x}, grad);
      const std::string what = device.str() + " " + std::string(c10::toString(dtype));
      expect_close(ours.out, plain.out, 2, "value, " + what);
      expect_close(ours.grads[0], plain.grads[0], 4, "gradient, " + what);
    }
  }
}

TEST(FusedSwiGlu, ValueAndGradientsAreAutogradsOfSiluTimesUpOnCpuAndCuda) {
  for (const auto& device : devices()) {
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      torch::manual_seed(2);
      const auto options = torch::TensorOptions().dtype(dtype).device(device);
      const auto gate = (torch::randn({4, 5, 64}) * 4).to(options);
      const auto up = torch::randn({4, 5, 64}).to(options);
      const auto grad = torch::randn({4, 5, 64}).to(options);
      const auto ours =
          run([](const auto& in) { return gated_activation(Activation::kSilu, in[0], in[1]); },
              {gate, up}, grad);
      const auto plain =
          run([](const auto& in) { return torch::silu(in[0]) * in[1]; }, {gate, up}, grad);
      const std::string what = device.str() + " " + std::string(c10::toString(dtype));
      expect_close(ours.out, plain.out, 2, "value, " + what);
      expect_close(ours.grads[0], plain.grads[0], 2, "gate gradient, " + what);
      expect_close(ours.grads[1], plain.grads[1], 2, "up gradient, " + what);
    }
  }
}

// The CUDA rotary kernel against the CPU's plain computation on the same values: full and partial
// (GPT-NeoX) rotary, an offset, and an input laid out as the projections produce it ([B, T, H, D]
// memory seen as [B, H, T, D]).
TEST(FusedRotary, CudaKernelGivesTheCpuValuesAndGradients) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const int64_t rotary_dim : {16, 4}) {
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      torch::manual_seed(3);
      RotaryEmbedding rope(rotary_dim, 10000.0, 32);
      const auto memory = torch::randn({2, 9, 3, 16}).to(dtype);  // [B, T, H, D]
      const auto grad = torch::randn({2, 3, 9, 16}).to(dtype);    // [B, H, T, D]
      const auto op = [&](const auto& in) { return rope.apply(in[0].transpose(1, 2), 5); };
      const auto cpu = run(op, {memory}, grad);
      const auto cuda = run(op, {memory.to(torch::kCUDA)}, grad.to(torch::kCUDA));
      const std::string what =
          "rotary_dim " + std::to_string(rotary_dim) + " " + std::string(c10::toString(dtype));
      expect_close(cuda.out, cpu.out, 1, "value, " + what);
      expect_close(cuda.grads[0], cpu.grads[0], 1, "gradient, " + what);
    }
  }
}

}  // namespace
}  // namespace llm
