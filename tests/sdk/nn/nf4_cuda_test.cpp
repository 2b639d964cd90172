// The NF4 dequantization kernel (sdk/src/nn/nf4_dequantize.cu) against the plain LibTorch
// computation. Runs where CUDA is available; skipped elsewhere.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "llm/nn/nf4.hpp"
#include "llm/nn/quantize.hpp"

namespace {

TEST(Nf4Cuda, KernelDequantizesBitwiseLikeThePlainLibTorchPath) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  EXPECT_TRUE(llm::nf4_cuda_kernel_built()) << "a CUDA LibTorch build should compile the kernel";
  torch::manual_seed(0);
  const torch::Device cuda(torch::kCUDA);
  for (const bool nested : {false, true}) {
    // Real shapes: a llama-2-7b q_proj and down_proj, at initializer_range 0.02.
    for (const auto& shape : {std::vector<int64_t>{4096, 4096}, std::vector<int64_t>{4096, 11008},
                              std::vector<int64_t>{3, 64}}) {
      const auto w = (torch::randn(shape) * 0.02).to(cuda);
      const auto q = llm::nf4_quantize(w, nested);
      for (const auto dtype : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
        const auto kernel = llm::nf4_dequantize(q, dtype);
        const auto reference = llm::nf4_dequantize_reference(q, dtype);
        ASSERT_EQ(kernel.sizes(), reference.sizes());
        ASSERT_EQ(kernel.scalar_type(), dtype);
        EXPECT_TRUE(torch::equal(kernel, reference)) << "nested " << nested << " shape " << shape[0]
                                                     << "x" << shape[1] << " dtype " << dtype;
      }
    }
  }
}

TEST(Nf4Cuda, QuantizingOnTheGpuGivesTheCpuCodes) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(1);
  const auto w = torch::randn({512, 1024}) * 0.02;
  const auto cpu = llm::nf4_quantize(w, true);
  const auto gpu = llm::nf4_quantize(w.to(torch::kCUDA), true);
  EXPECT_TRUE(torch::equal(gpu.packed.cpu(), cpu.packed));
  // The absmax mean (the nested offset) may sum in another order on the GPU: compare the
  // dequantized weights to that rounding.
  EXPECT_TRUE(torch::allclose(llm::nf4_dequantize(gpu, torch::kFloat).cpu(),
                              llm::nf4_dequantize(cpu, torch::kFloat), 1e-5, 1e-7));
}

TEST(Nf4Cuda, LinearBackwardRecomputesTheWeightOnTheGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(2);
  const auto q = llm::nf4_quantize((torch::randn({256, 512}) * 0.02).to(torch::kCUDA), false);
  const auto weight = llm::make_nf4_weight(q);
  const auto x = torch::randn({4, 512}, torch::TensorOptions().device(torch::kCUDA))
                     .to(torch::kBFloat16)
                     .requires_grad_(true);
  const auto y = weight->linear(x);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  y.sum().backward();
  const auto expected = torch::ones({4, 256}, x.options().requires_grad(false))
                            .matmul(llm::nf4_dequantize(q, torch::kBFloat16));
  EXPECT_TRUE(torch::allclose(x.grad().to(torch::kFloat), expected.to(torch::kFloat), 1e-2, 1e-3));
}

}  // namespace
