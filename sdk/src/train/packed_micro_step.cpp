#include "llm/train/packed_micro_step.hpp"

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "../host_staging.hpp"
#include "llm/error.hpp"
#include "llm/model.hpp"
#include "llm/nn/attention.hpp"
#include "llm/train/batching.hpp"

#ifdef LLM_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>
#endif

namespace llm {

namespace {

// Slots for a batch of `samples` samples (filler pieces included): the next power of two, so a
// run sees few distinct layouts. Flash attention launches blocks for every slot, empty or not.
int64_t slot_bucket(int64_t samples) {
  int64_t slots = 1;
  while (slots < samples) slots *= 2;
  return slots;
}

}  // namespace

struct PackedMicroStep::Impl {
  CausalLM& model;
  std::vector<torch::Tensor> trainable;
  int64_t tokens;
  int64_t longest;
  int64_t eager_runs;
  torch::Device device;
  // The graphs' inputs and outputs: the same tensors for every run.
  torch::Tensor ids, labels, divisor, scale, loss_total;
  // One layout per slot bucket; a graph per layout once recording starts.
  std::map<int64_t, std::unique_ptr<PackedSequences>> layouts;
  int64_t runs = 0;
#ifdef LLM_WITH_CUDA
  std::map<int64_t, std::unique_ptr<at::cuda::CUDAGraph>> graphs;
  decltype(std::declval<at::cuda::CUDAGraph&>().pool()) pool{0, 0};  // shared by every graph
  std::optional<c10::cuda::CUDAStream> stream;                       // where recording happens
#endif

  Impl(CausalLM& m, std::vector<torch::Tensor> t, int64_t tok, int64_t l, int64_t e)
      : model(m),
        trainable(std::move(t)),
        tokens(tok),
        longest(l),
        eager_runs(e),
        device(m.device()) {
    const auto longs = torch::TensorOptions().dtype(torch::kLong).device(device);
    const auto floats = torch::TensorOptions().dtype(torch::kFloat).device(device);
    ids = torch::zeros({1, tokens}, longs);
    labels = torch::full({1, tokens}, kIgnoreIndex, longs);
    divisor = torch::ones({}, floats);
    scale = torch::ones({}, floats);
    loss_total = torch::zeros({}, floats);
  }

  PackedSequences& layout_for(int64_t slots) {
    auto& layout = layouts[slots];
    if (!layout) layout = std::make_unique<PackedSequences>(tokens, slots, longest, device);
    return *layout;
  }

  // What a graph records: the loss into loss_total, its gradients into the parameters' .grad.
  void forward_backward(PackedSequences& layout) {
    const auto loss = model.next_token_loss(ids, labels, kIgnoreIndex, &layout).sum;
    loss_total.add_(loss.detach());
    ((loss / divisor) * scale).backward();
  }

  void run(int64_t slots, uint64_t dropout_seed) {
    auto& layout = layout_for(slots);
    torch::manual_seed(dropout_seed);
#ifdef LLM_WITH_CUDA
    if (device.is_cuda()) {
      auto& graph = graphs[slots];
      if (!graph && runs >= eager_runs) record(graph, layout, dropout_seed);
      if (graph) {
        graph->replay();
        return;
      }
      // Eager runs on the recording stream, as the recording will: cuBLAS keeps a workspace per
      // stream, and the recording must not be the first to create one.
      torch::cuda::synchronize(device.index());
      {
        c10::cuda::CUDAStreamGuard on_stream(recording_stream());
        forward_backward(layout);
      }
      torch::cuda::synchronize(device.index());
      ++runs;
      return;
    }
#endif
    forward_backward(layout);
    ++runs;
  }

#ifdef LLM_WITH_CUDA
  c10::cuda::CUDAStream recording_stream() {
    if (!stream) stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    return *stream;
  }

  void record(std::unique_ptr<at::cuda::CUDAGraph>& graph, PackedSequences& layout,
              uint64_t dropout_seed) {
    // Replays add into the gradients recorded here: they must exist, not be created inside.
    for (auto& p : trainable) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    }
    const c10::cuda::CUDAGuard device_guard(device);
    torch::cuda::synchronize(device.index());
    // The graphs' pool cannot reuse blocks the eager runs left cached: hand those back first.
    c10::cuda::CUDACachingAllocator::emptyCache();
    auto recorded = std::make_unique<at::cuda::CUDAGraph>();
    {
      c10::cuda::CUDAStreamGuard on_stream(recording_stream());
      // Every graph in one pool: their work never overlaps (one stream), and what each keeps
      // alive after recording (nothing but its inputs and outputs, allocated before) is not
      // reused by the others.
      if (pool.first == 0 && pool.second == 0) {
        recorded->capture_begin();
      } else {
        recorded->capture_begin(pool);
      }
      try {
        forward_backward(layout);
      } catch (...) {
        // A stream left recording cannot run anything else: end it, then report.
        try {
          recorded->capture_end();
        } catch (...) {
        }
        throw;
      }
      recorded->capture_end();
      if (pool.first == 0 && pool.second == 0) pool = recorded->pool();
    }
    torch::cuda::synchronize(device.index());
    graph = std::move(recorded);
    torch::manual_seed(dropout_seed);  // the replay that follows draws from the batch's seed
  }
#endif
};

bool PackedMicroStep::can_replay(const torch::Device& device) {
#ifdef LLM_WITH_CUDA
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

PackedMicroStep::PackedMicroStep(CausalLM& model, std::vector<torch::Tensor> trainable,
                                 int64_t tokens, int64_t longest, int64_t eager_runs) {
  if (tokens <= 0 || longest <= 0) {
    throw UserError("packed micro-step: tokens and longest must be positive, got " +
                    std::to_string(tokens) + " and " + std::to_string(longest));
  }
  impl_ = std::make_unique<Impl>(model, std::move(trainable), tokens, longest, eager_runs);
}

PackedMicroStep::~PackedMicroStep() = default;

void PackedMicroStep::begin_step(double divisor, double loss_scale) {
  torch::NoGradGuard no_grad;
  impl_->loss_total.zero_();
  impl_->divisor.fill_(divisor);
  impl_->scale.fill_(loss_scale);
}

void PackedMicroStep::run(const Batch& batch, uint64_t dropout_seed) {
  const Batch filled = fill_packed_batch(batch, impl_->tokens, impl_->longest);
  const auto slots = slot_bucket(static_cast<int64_t>(filled.packed_lengths.size()));
  impl_->layout_for(slots).assign(filled.packed_lengths);
  copy_from_host(impl_->ids, filled.input_ids);
  copy_from_host(impl_->labels, filled.labels);
  impl_->run(slots, dropout_seed);
}

const torch::Tensor& PackedMicroStep::loss_sum() const { return impl_->loss_total; }

int64_t PackedMicroStep::graphs() const {
#ifdef LLM_WITH_CUDA
  int64_t count = 0;
  for (const auto& [slots, graph] : impl_->graphs) count += graph ? 1 : 0;
  return count;
#else
  return 0;
#endif
}

}  // namespace llm
