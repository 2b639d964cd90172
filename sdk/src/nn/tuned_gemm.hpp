#pragma once
// The frozen weights' products in training, through the fastest algorithm cuBLAS has for each
// shape rather than the one its heuristic picks first (bench/NOTES.md, session 14: at llama-2-7b
// the MLP's products ran 10-15 % faster with another of cuBLASLt's offered algorithms).
#include <torch/torch.h>

namespace llm::fused {

// Whether tuned_mm tunes a [..., k] and w: w 2-D, both fp16 or bf16 on one CUDA device, w's
// sides whole 16-byte packs, built with cuBLASLt, LLMHOST_TUNED_GEMM not 0.
bool tuned_mm_applies(const torch::Tensor& a, const torch::Tensor& w);

// a w^T (w [n, k], `transposed`) or a w (w [k, n]) for a [..., k], as a contiguous [..., n]
// tensor. The first time a shape is seen outside a CUDA graph capture, at::mm and each algorithm
// cuBLASLt offers are timed on it and the fastest is kept for that shape; a shape seen first
// while capturing, or after 256 shapes, goes through at::mm, and LibTorch's matmul takes what
// tuned_mm_applies refuses. Every algorithm sums in fp32; they differ in summation order only.
torch::Tensor tuned_mm(const torch::Tensor& a, const torch::Tensor& w, bool transposed);

// c += a w^T (or a w) in place, c a contiguous [..., n] with a's rows: the product's epilogue
// reads c (cuBLAS's beta = 1), where a product and a separate add would stream c twice more.
// Tuned per shape as tuned_mm is; LibTorch's addmm_ takes what tuned_mm_applies refuses.
void tuned_mm_accumulate(const torch::Tensor& a, const torch::Tensor& w, bool transposed,
                         torch::Tensor& c);

// x [..., k] w^T for a frozen w [n, k] (no bias), through tuned_mm both ways: x's gradient is
// dy w, also tuned. Falls back to torch::linear where tuned_mm does not apply.
torch::Tensor frozen_linear(const torch::Tensor& x, const torch::Tensor& w);

// residual + x w^T for a frozen w [n, k] (no bias) and residual [..., n] of x's rows: in training
// on CUDA one tuned product whose epilogue adds the residual (no add of its own; backward passes
// dy to the residual as it is). LLMHOST_GEMM_EPILOGUE_ADD=0, or where the product is not tuned:
// residual + frozen_linear(x, w).
torch::Tensor frozen_linear_onto(const torch::Tensor& x, const torch::Tensor& w,
                                 const torch::Tensor& residual);

}  // namespace llm::fused
