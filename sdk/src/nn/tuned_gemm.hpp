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

// x [..., k] w^T for a frozen w [n, k] (no bias), through tuned_mm both ways: x's gradient is
// dy w, also tuned. Falls back to torch::linear where tuned_mm does not apply.
torch::Tensor frozen_linear(const torch::Tensor& x, const torch::Tensor& w);

}  // namespace llm::fused
