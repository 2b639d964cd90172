#include "llm/train/packed_micro_step.hpp"

#include <algorithm>
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
#include "llm/nn/low_rank.hpp"
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

// Positions a batch of `used` tokens is filled to: the next multiple of the granule, at most the
// budget. Variable-length data fills a budget sized for its longest steps only partly (the
// varlen workload: ~1,700 of 8,192), and every filler position costs what a sample's does.
int64_t token_bucket(int64_t used, int64_t granule, int64_t budget) {
  return std::min(budget, std::max<int64_t>(1, (used + granule - 1) / granule) * granule);
}

// A layout's key: (positions, slots).
using LayoutKey = std::pair<int64_t, int64_t>;

}  // namespace

struct PackedMicroStep::Impl {
  CausalLM& model;
  std::vector<torch::Tensor> trainable;
  int64_t tokens;
  int64_t longest;
  int64_t eager_runs;
  int64_t granule;
  torch::Device device;
  // The graphs' inputs and outputs: the same tensors for every run.
  torch::Tensor ids, labels, divisor, scale, loss_total;
  // One layout per (token bucket, slot bucket); a graph per layout once recording starts. A
  // bucket's graph reads the first positions of ids and labels.
  std::map<LayoutKey, std::unique_ptr<PackedSequences>> layouts;
  int64_t runs = 0;
#ifdef LLM_WITH_CUDA
  std::map<LayoutKey, std::unique_ptr<at::cuda::CUDAGraph>> graphs;
  decltype(std::declval<at::cuda::CUDAGraph&>().pool()) pool{0, 0};  // shared by every graph
  std::optional<c10::cuda::CUDAStream> stream;                       // where recording happens
#endif

  Impl(CausalLM& m, std::vector<torch::Tensor> t, int64_t tok, int64_t l, int64_t e, int64_t g)
      : model(m),
        trainable(std::move(t)),
        tokens(tok),
        longest(l),
        eager_runs(e),
        granule(g),
        device(m.device()) {
    const auto longs = torch::TensorOptions().dtype(torch::kLong).device(device);
    const auto floats = torch::TensorOptions().dtype(torch::kFloat).device(device);
    ids = torch::zeros({1, tokens}, longs);
    labels = torch::full({1, tokens}, kIgnoreIndex, longs);
    divisor = torch::ones({}, floats);
    scale = torch::ones({}, floats);
    loss_total = torch::zeros({}, floats);
  }

  PackedSequences& layout_for(const LayoutKey& key) {
    auto& layout = layouts[key];
    if (!layout) layout = std::make_unique<PackedSequences>(key.first, key.second, longest, device);
    return *layout;
  }

  // What a graph records: the loss into loss_total, its gradients into the parameters' .grad.
  void forward_backward(PackedSequences& layout, const LayoutKey& key) {
    const auto [positions, slots] = key;
    auto step_ids = ids.narrow(1, 0, positions);
    auto step_labels = labels.narrow(1, 0, positions);
    // A layout of `slots` x `longest` positions holds nothing but `slots` samples of `longest`
    // tokens: it runs as a batch of rows, the same targets and arithmetic, where attention takes
    // the batched kernels (cuDNN's on an H200, faster than the variable-length one: bench/NOTES.md,
    // session 11). Fixed-length data (the bench's lora-train) is all such layouts.
    const bool rows_of_longest = positions == slots * longest;
    // The LoRA factors' gradients added into .grad by the kernels that sum them (opt-in inside).
    const FactorGradientsIntoGrad into_grad;
    const auto loss =
        rows_of_longest
            ? model
                  .next_token_loss(step_ids.view({slots, longest}),
                                   step_labels.view({slots, longest}), kIgnoreIndex, nullptr)
                  .sum
            : model.next_token_loss(step_ids, step_labels, kIgnoreIndex, &layout).sum;
    loss_total.add_(loss.detach());
    ((loss / divisor) * scale).backward();
  }

  void run(const LayoutKey& key, uint64_t dropout_seed) {
    auto& layout = layout_for(key);
    torch::manual_seed(dropout_seed);
#ifdef LLM_WITH_CUDA
    if (device.is_cuda()) {
      auto& graph = graphs[key];
      if (!graph && runs >= eager_runs) record(graph, layout, key, dropout_seed);
      if (graph) {
        graph->replay();
        return;
      }
      // Eager runs on the recording stream, as the recording will: cuBLAS keeps a workspace per
      // stream, and the recording must not be the first to create one.
      torch::cuda::synchronize(device.index());
      {
        c10::cuda::CUDAStreamGuard on_stream(recording_stream());
        forward_backward(layout, key);
      }
      torch::cuda::synchronize(device.index());
      ++runs;
      return;
    }
#endif
    forward_backward(layout, key);
    ++runs;
  }

#ifdef LLM_WITH_CUDA
  c10::cuda::CUDAStream recording_stream() {
    if (!stream) stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    return *stream;
  }

  void record(std::unique_ptr<at::cuda::CUDAGraph>& graph, PackedSequences& layout,
              const LayoutKey& key, uint64_t dropout_seed) {
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
        forward_backward(layout, key);
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
                                 int64_t tokens, int64_t longest, int64_t eager_runs,
                                 int64_t token_granule) {
  if (tokens <= 0 || longest <= 0 || token_granule < 0) {
    throw UserError(
        "packed micro-step: tokens and longest must be positive and the token granule "
        "not negative, got " +
        std::to_string(tokens) + ", " + std::to_string(longest) + " and " +
        std::to_string(token_granule));
  }
  const int64_t granule = token_granule > 0 ? token_granule : default_token_granule(tokens);
  impl_ = std::make_unique<Impl>(model, std::move(trainable), tokens, longest, eager_runs, granule);
}

int64_t PackedMicroStep::default_token_granule(int64_t tokens) {
  // A sixty-fourth of the budget in multiples of 64 (at most 64 sizes, each recorded once); a small
  // budget is one size. A sixteenth left ~13 % of the positions as filler at the varlen workload's
  // ~1,700-token batches; a sixty-fourth ran 9 % more tokens a second at 1.4b and 7b, in less
  // memory (bench/NOTES.md, session 10).
  const int64_t granule = (tokens / 64 + 63) / 64 * 64;
  return std::max<int64_t>(granule, 64);
}

PackedMicroStep::~PackedMicroStep() = default;

void PackedMicroStep::begin_step(double divisor, double loss_scale) {
  torch::NoGradGuard no_grad;
  impl_->loss_total.zero_();
  impl_->divisor.fill_(divisor);
  impl_->scale.fill_(loss_scale);
}

void PackedMicroStep::run(const Batch& batch, uint64_t dropout_seed) {
  const int64_t positions = token_bucket(batch.input_ids.numel(), impl_->granule, impl_->tokens);
  const Batch filled = fill_packed_batch(batch, positions, impl_->longest);
  const LayoutKey key{positions, slot_bucket(static_cast<int64_t>(filled.packed_lengths.size()))};
  impl_->layout_for(key).assign(filled.packed_lengths);
  auto ids = impl_->ids.narrow(1, 0, positions);
  auto labels = impl_->labels.narrow(1, 0, positions);
  copy_from_host(ids, filled.input_ids);
  copy_from_host(labels, filled.labels);
  impl_->run(key, dropout_seed);
}

const torch::Tensor& PackedMicroStep::loss_sum() const { return impl_->loss_total; }

int64_t PackedMicroStep::token_granule() const { return impl_->granule; }

int64_t PackedMicroStep::graphs() const {
#ifdef LLM_WITH_CUDA
  int64_t count = 0;
  for (const auto& [key, graph] : impl_->graphs) count += graph ? 1 : 0;
  return count;
#else
  return 0;
#endif
}

}  // namespace llm
