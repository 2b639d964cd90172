#pragma once
#include <memory>
#include <string>

#include <torch/torch.h>

namespace llm {

class CausalLM;
class KVCache;

// One decode step (a single token through the model over a KV cache) recorded once and replayed:
// at batch 1 a step is a few hundred small kernels, and launching them costs more than running
// them.
class DecodeGraph {
 public:
  virtual ~DecodeGraph() = default;
  // Feeds `token` ([1, 1] int64 on the model's device; no host round trip) at the cache's current
  // length; returns its logits [1, vocab], a buffer that the next step overwrites. Advances the
  // cache by one.
  virtual torch::Tensor step_on_device(const torch::Tensor& token) = 0;
};

// A CUDA graph of one decode step over `cache` (which already holds the prompt), or nullptr with
// the reason in *why_not where it cannot be used: not on CUDA, or a LibTorch built without CUDA.
// A failed capture throws. The cache is left at the length it had.
std::unique_ptr<DecodeGraph> capture_decode_graph(CausalLM& model, KVCache& cache,
                                                  std::string* why_not);

}  // namespace llm
