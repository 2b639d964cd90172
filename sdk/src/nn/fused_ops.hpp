#pragma once
// Training-path operations with hand-written backward passes that save less than autograd would
// (fused_ops.cpp): CUDA kernels in a CUDA build (fused_kernels.cu), LibTorch operations elsewhere.
#include <array>

#include <torch/torch.h>

namespace llm::fused {

bool cuda_kernels_built();

// weight * (x * rsqrt(mean(x^2) + eps) in fp32, cast back to x's dtype), weight frozen: saves x in
// its own dtype and rstd, not the fp32 copy of x.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// {rms_norm(x), x}: x passed on for the block's residual sum. In training, backward adds the
// second output's gradient to x's inside the norm's kernel (one pass, rounded once), where
// autograd would add the two gradients in a pass of their own. LLMHOST_NORM_PASSES_RESIDUAL=0
// (CUDA builds) leaves the add to autograd.
std::array<torch::Tensor, 2> rms_norm_passing_input(const torch::Tensor& x,
                                                    const torch::Tensor& weight, double eps);

// {LayerNorm(x; w1, b1), LayerNorm(x; w2, b2), x}: a parallel-residual block's two norms of one
// input, and the input for its residual sum. Where CUDA kernels apply (weights frozen, rows of
// whole 16-byte packs up to 1,024 of them) one pass over x each way: backward adds the three
// outputs' gradients into x's, rounded once. LibTorch's layer_norm twice (and x as it is)
// elsewhere. LLMHOST_FUSED_LAYER_NORM=0 keeps LibTorch's.
std::array<torch::Tensor, 3> layer_norm_pair(const torch::Tensor& x, const torch::Tensor& w1,
                                             const torch::Tensor& b1, const torch::Tensor& w2,
                                             const torch::Tensor& b2, double eps);
// (a + b) + c, same shapes, rounded after each add: one pass on CUDA (LLMHOST_FUSED_LAYER_NORM
// switches it with the norms).
torch::Tensor add_three(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c);

// silu(gate) * up, saving gate and up only (not silu(gate) as well).
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);

// The rotary embedding of x [B, H..., T, D] (D contiguous) at positions offset..offset + T - 1, or
// at `positions` [T] (int64, on x's device) when given, from head-wide tables cos, sin [rows, D]
// (rotary.cpp's layout), in one kernel each way. CUDA builds and CUDA tensors only (the caller
// checks rotary_kernel_applies).
bool rotary_kernel_applies(const torch::Tensor& x, const torch::Tensor& cos);
torch::Tensor rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                     int64_t offset, int64_t rotary_dim,
                     const torch::Tensor& positions = torch::Tensor());

// q, k, v [B, H, T, D] out of a projection qkv [B, T, H, 3, D] (per head [q | k | v], D
// contiguous), q and k rotated as rotary() does from position 0 or at `positions` [T]; backward
// writes the three gradients into qkv's layout, q's and k's rotated back. One kernel each way where
// rotary_interleaved_qkv_applies (CUDA, whole 16-byte packs). q and k are rotated in qkv's own
// memory and the three are views of it (LLMHOST_ROTARY_IN_PLACE=0: copies, qkv untouched): qkv
// must be a projection's output that nothing else reads afterwards.
bool rotary_interleaved_qkv_applies(const torch::Tensor& qkv, const torch::Tensor& cos,
                                    int64_t rotary_dim);
std::array<torch::Tensor, 3> rotary_interleaved_qkv(const torch::Tensor& qkv,
                                                    const torch::Tensor& cos,
                                                    const torch::Tensor& sin, int64_t rotary_dim,
                                                    const torch::Tensor& positions);

// x W^T + b for a single fp16/bf16 row x [..., K] (batch-1 decode) and a frozen contiguous W [N,
// K], as one bandwidth-bound kernel (cuBLAS's batch-1 products leave a share of the memory
// bandwidth unused). No gradient: only where autograd does not need one.
bool gemv_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
torch::Tensor gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// Causal attention within each of the samples laid end to end in q [T, H, D], k, v [T, KVH, D]
// (D contiguous), delimited by cumulative_lengths (int32 [samples + 1] on q's device): flash
// attention's variable-length kernel, which never computes across samples. Where it applies: a
// CUDA build on LibTorch >= 2.2, fp16/bf16 on an sm80+ device, head_dim a multiple of 8 up to 256.
bool varlen_attention_applies(const torch::Tensor& q);
torch::Tensor varlen_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& cumulative_lengths,
                               int64_t longest);

// Causal self-attention of q, k, v [B, H, T, D] (the same T, H) through cuDNN's fused kernel, in
// training steps (grad mode, q, k or v needing a gradient) on the GPUs where PyTorch's own SDPA
// prefers it (sm90 and sm100: Hopper and Blackwell data-centre parts), fp16/bf16, D a multiple of 8
// up to 128, T a multiple of 64: cuDNN builds an execution plan per shape (tens of ms), so only
// lengths that recur take it (fixed-shape and replayed steps; of batches padded to their longest
// sample, those whose longest is a multiple of 64); decode and evaluation stay on flash.
// LLMHOST_CUDNN_ATTENTION=0 switches it off; a plan cuDNN refuses switches it off for the process,
// with one warning.
bool cudnn_self_attention_applies(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v);
// The attention, or an undefined tensor where cuDNN refused it (the caller falls back).
torch::Tensor cudnn_self_attention(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v);

// Cross-entropy of each row of logits [rows, V] (contiguous, CUDA, fp32/fp16/bf16) against
// targets [rows] (int64, same device): row_loss [rows] (fp32) gets lse - logits[target], 0 where
// the target is ignore_index; with gradient_in_place the logits become the summed loss's gradient,
// softmax - onehot in fp32 rounded to their dtype (0 on ignored rows). One kernel per call.
bool cross_entropy_kernel_applies(const torch::Tensor& logits);
void cross_entropy_rows(const torch::Tensor& logits, const torch::Tensor& targets,
                        int64_t ignore_index, const torch::Tensor& row_loss,
                        bool gradient_in_place);

}  // namespace llm::fused
