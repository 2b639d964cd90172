// lora-train-graph: the lora-train workload with the whole step (zero_grad, forward, loss,
// backward, fused AdamW) captured once as a CUDA graph and replayed. It measures how much of a
// small model's step is host overhead (kernel launches, autograd bookkeeping): the lever for
// the small shapes, not yet what `--task finetune` runs (its batches change shape).
#include <chrono>
#include <cmath>

#include "cuda_memory.hpp"
#include "llm/loss.hpp"
#include "llm/train/adamw.hpp"
#include "workloads.hpp"

#ifdef LLMHOST_BENCH_CUDA_GRAPH
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace llmhost_bench {

#ifdef LLMHOST_BENCH_CUDA_GRAPH
WorkloadResult run_lora_train_graph(Subject& s, const llm::Adapter& lora, const BenchOptions& o) {
  WorkloadResult r;
  r.shape = s.shape;
  r.workload = "lora-train-graph";
  const auto device = s.model.device();
  if (!device.is_cuda()) {
    r.passed = false;
    r.note = "needs CUDA";
    return r;
  }
  const auto trainable = attach_protocol_lora(s, lora);
  llm::AdamWSettings adam;
  adam.weight_decay = 0.01;
  llm::AdamW optimizer(named(trainable), adam);
  const double lr = 3e-4;
  torch::manual_seed(o.seed + 2);
  const auto ids =
      torch::randint(0, s.model.config().vocab_size, {o.train_batch, o.train_seq}, torch::kLong)
          .to(device);
  s.model.train();

  torch::Tensor loss;
  const auto step = [&] {
    optimizer.zero_grad();
    loss = s.model.next_token_loss(ids, ids).mean;
    loss.backward();
    optimizer.step(lr);
  };
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAGuard device_guard(device);
  release_cached_memory(device);  // what earlier workloads left cached
  reset_peak_memory(device);      // as lora-train: warm-up and capture count
  auto stream = c10::cuda::getStreamFromPool(false, device.index());
  {
    c10::cuda::CUDAStreamGuard stream_guard(stream);
    // Eager warm-up on the capture stream: gradients, optimizer state, kernel choices exist before
    // capture (capture may not allocate what outlives it outside its pool).
    for (int64_t i = 0; i < std::max<int64_t>(o.train_warmup, 3); ++i) step();
    // The graph's private pool cannot reuse blocks the eager steps left cached: hand them back.
    release_cached_memory(device);
    graph.capture_begin();
    step();
    graph.capture_end();
  }
  synchronize(device);
  std::vector<torch::Tensor> losses;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.train_steps; ++i) {
    graph.replay();
    losses.push_back(loss.detach().clone());
  }
  synchronize(device);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.peak_memory_bytes = peak_memory_bytes(device);
  const double tokens = static_cast<double>(o.train_steps * o.train_batch * o.train_seq);
  r.tokens_per_second = tokens / seconds;
  r.step_seconds = seconds / static_cast<double>(o.train_steps);
  r.mfu = r.tokens_per_second * s.flops.lora_train_per_token(o.train_seq) / (o.peak_tflops * 1e12);
  judge_losses(r, losses, 0, o.train_steps);
  return r;
}
#else
WorkloadResult run_lora_train_graph(Subject& s, const llm::Adapter&, const BenchOptions&) {
  WorkloadResult r;
  r.shape = s.shape;
  r.workload = "lora-train-graph";
  r.passed = false;
  r.note = "this LibTorch has no CUDA graphs";
  return r;
}
#endif

}  // namespace llmhost_bench
