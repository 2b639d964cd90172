#pragma once
// One packed micro-batch's forward, loss and backward, recorded once as a CUDA graph and replayed
// for every later batch. At a small model's size a training step is bound by the host: ~1,000
// kernel launches plus autograd's bookkeeping per micro-batch, where the GPU needs ~10 ms for
// the work (bench/NOTES.md, "Issue 13, session 8"). A graph needs a fixed shape: each batch is
// filled to a multiple of a token granule, and its samples go into a power-of-two number of slots;
// one graph per such layout, all graphs sharing one memory pool.
// A replay reads the tensors the recording saw: between runs nothing may replace the model's
// lazily made state (rotary tables grow for inputs longer than any seen), so other work on the
// model (validation, say) keeps to samples of at most `longest` tokens, as the trainer's do.
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"

namespace llm {

class CausalLM;
struct Batch;

class LLM_API PackedMicroStep {
 public:
  // Whether runs on `device` can be replayed: a CUDA device and a LibTorch built with CUDA.
  static bool can_replay(const torch::Device& device);

  // tokens: the most positions of a micro-batch; longest: the longest sample (and filler piece).
  // A batch is filled to the next multiple of token_granule positions (at most tokens; 0:
  // default_token_granule(tokens)), one layout per size. trainable: the parameters whose .grad
  // the runs accumulate into (defined before recording, so that every replay adds into the same
  // tensors). eager_runs: batches run eagerly before the first recording (they create what is
  // made lazily: gradients, tables, kernel choices).
  PackedMicroStep(CausalLM& model, std::vector<torch::Tensor> trainable, int64_t tokens,
                  int64_t longest, int64_t eager_runs = 2, int64_t token_granule = 0);
  // tokens / 64 rounded up to a multiple of 64 (at least 64).
  static int64_t default_token_granule(int64_t tokens);
  // The granule batches are filled to: the one given, or the default.
  int64_t token_granule() const;
  ~PackedMicroStep();
  PackedMicroStep(const PackedMicroStep&) = delete;
  PackedMicroStep& operator=(const PackedMicroStep&) = delete;

  // Starts an optimizer step: the loss sum goes back to 0, and the gradients of the following
  // runs are those of (loss / divisor) * loss_scale.
  void begin_step(double divisor, double loss_scale);
  // One packed batch (make_packed_batch; at most `tokens` positions, samples of at most `longest`):
  // adds its summed loss to loss_sum() and its gradients to the trainable parameters' .grad,
  // dropout drawn from dropout_seed (the same masks replayed or not).
  void run(const Batch& batch, uint64_t dropout_seed);
  // The summed loss of this step's runs (an fp32 scalar on the device: reading it waits for it).
  const torch::Tensor& loss_sum() const;
  // Recorded graphs so far (0 while eager).
  int64_t graphs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llm
