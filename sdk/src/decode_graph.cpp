#include "decode_graph.hpp"

#include "llm/model.hpp"

#ifdef LLM_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>
#endif

namespace llm {

#ifdef LLM_WITH_CUDA
namespace {

class CudaDecodeGraph final : public DecodeGraph {
 public:
  CudaDecodeGraph(CausalLM& model, KVCache& cache) : cache_(cache) {
    const auto device = model.device();
    const int64_t start = cache.length();
    ids_ = torch::zeros({1, 1}, torch::TensorOptions().dtype(torch::kLong).device(device));
    cache.enable_static_decode();
    c10::cuda::CUDAGuard device_guard(device);
    // Capture needs a side stream; everything the prompt left must be finished first.
    torch::cuda::synchronize(device.index());
    auto stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    {
      c10::cuda::CUDAStreamGuard stream_guard(stream);
      // A warm-up step creates what is made lazily (cuBLAS workspaces, rotary tables in the
      // activations' dtype, the attention kernel's choice) outside the capture. It writes the
      // cache at `start`, which the first real step overwrites.
      model.forward(ids_, &cache);
      cache.rewind(start);
      graph_.capture_begin();
      logits_ = model.forward(ids_, &cache).select(1, 0);
      graph_.capture_end();
      cache.rewind(start);
    }
    torch::cuda::synchronize(device.index());
  }

  torch::Tensor step_on_device(const torch::Tensor& token) override {
    cache_.mirror_replayed_step();  // checks the capacity before the graph writes the cache
    ids_.copy_(token, /*non_blocking=*/true);
    graph_.replay();
    return logits_;
  }

 private:
  KVCache& cache_;
  at::cuda::CUDAGraph graph_;
  torch::Tensor ids_;     // [1, 1] int64: the graph's input
  torch::Tensor logits_;  // [1, vocab]: the graph's output
};

}  // namespace

std::unique_ptr<DecodeGraph> capture_decode_graph(CausalLM& model, KVCache& cache,
                                                  std::string* why_not) {
  if (!model.device().is_cuda()) {
    if (why_not) *why_not = "not on a CUDA device";
    return nullptr;
  }
  // No fallback on a failed capture: a stream left capturing cannot safely run eager steps.
  return std::make_unique<CudaDecodeGraph>(model, cache);
}

#else

std::unique_ptr<DecodeGraph> capture_decode_graph(CausalLM&, KVCache&, std::string* why_not) {
  if (why_not) *why_not = "this LibTorch was built without CUDA";
  return nullptr;
}

#endif

}  // namespace llm
