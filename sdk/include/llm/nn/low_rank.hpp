#pragma once
// The low-rank update an adapter (LoRA and its kin) adds to a frozen linear layer's output.
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

// delta = (dropout(x) A^T) B^T * scaling in fp32, returned in x's dtype, for x [..., in], A [r,
// in] and B [out, r] (fp32, trainable). Dropout acts on x (training only: the caller passes 0
// otherwise). Backward saves x in its own dtype, shared by every update on the same input (q and v
// of one layer), and the dropout mask, never an fp32 copy of x.
LLM_API torch::Tensor low_rank_delta(const torch::Tensor& x, const torch::Tensor& A,
                                     const torch::Tensor& B, double scaling, double dropout);

// y + delta, y [..., out] the frozen layer's output in x's dtype. On CUDA with fp16/bf16
// activations, rank <= 64 and in, out multiples of 8 it runs as three streaming kernels each way
// (the sum rounded to y's dtype once; the dropout mask regenerated in backward, not stored);
// elsewhere it is y + low_rank_delta(...) cast to y's dtype.
LLM_API torch::Tensor low_rank_update(const torch::Tensor& x, const torch::Tensor& y,
                                      const torch::Tensor& A, const torch::Tensor& B,
                                      double scaling, double dropout);

// x W^T + b + delta with W [out, in] and b [out] (optional) frozen: the same value as
// low_rank_update(x, linear(x, W, b), ...). Where the kernels apply it is one autograd node: the
// update is added into the product's output in place, and backward adds the update's input
// gradient into dy W in place, where two nodes left autograd a separate tensor and an add.
// Elsewhere (or with LLMHOST_LOW_RANK_WITH_BASE=0) it is exactly that composition.
LLM_API torch::Tensor low_rank_linear(const torch::Tensor& x, const torch::Tensor& weight,
                                      const torch::Tensor& bias, const torch::Tensor& A,
                                      const torch::Tensor& B, double scaling, double dropout);

// An adapter's update in low-rank form: delta = (dropout(x) A^T) B^T * scaling, A [r, in] and
// B [out, r] fp32.
struct LLM_API LowRankFactors {
  torch::Tensor A, B;
  double scaling = 1.0;
  double dropout = 0.0;
};

// While one lives on a thread, the layers that share an input (shared_input_linears) and run their
// forward on that thread add their factors' gradients into the factors' .grad, where it is
// already there (fp32, contiguous), in the kernel that sums them, and give autograd none for
// them: no AccumulateGrad add a factor and step (Megatron's gradient accumulation fusion; 7b: 128
// adds, 0.22 ms). The same bits as AccumulateGrad's grad + new. For a training step's backward
// only, where the gradients go to .grad: torch::autograd::grad would not see them. On CUDA, and
// opt-in (LLMHOST_LOW_RANK_GRAD_IN_PLACE=1) until a device has timed it.
class LLM_API FactorGradientsIntoGrad {
 public:
  FactorGradientsIntoGrad();
  ~FactorGradientsIntoGrad();
  FactorGradientsIntoGrad(const FactorGradientsIntoGrad&) = delete;
  FactorGradientsIntoGrad& operator=(const FactorGradientsIntoGrad&) = delete;
  static bool active();  // on this thread

 private:
  bool previous_;
};

// x W_p^T + delta_p for frozen weights W_p [out_p, in] (no bias) over one x [..., in], delta_p
// where updates[p] holds one: the outputs of several layers that share their input (q, k and v;
// gate and up). In training on CUDA, where the products and updates above apply, they are one
// autograd node, so that backward forms x's gradient in one buffer: the updates' parts written
// first, then every product adding itself in its epilogue, where a node per layer left autograd
// an add for each layer after the first (7b: 96 adds, 2.2 ms a step). Returns no tensors where
// that does not apply (or with LLMHOST_SHARED_INPUT_GRAD=0 or LLMHOST_GEMM_EPILOGUE_ADD=0): the
// caller then runs its layers one by one.
LLM_API std::vector<torch::Tensor> shared_input_linears(
    const torch::Tensor& x, const std::vector<torch::Tensor>& weights,
    const std::vector<c10::optional<LowRankFactors>>& updates);

}  // namespace llm
