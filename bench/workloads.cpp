#include "workloads.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <c10/core/InferenceMode.h>

#include "cuda_memory.hpp"
#include "kineto_trace.hpp"
#include "llm/device.hpp"
#include "llm/error.hpp"
#include "llm/generation.hpp"
#include "llm/loss.hpp"
#include "llm/nn/low_rank.hpp"
#include "llm/train/adamw.hpp"
#include "llm/train/batching.hpp"
#include "llm/train/loss_scaler.hpp"
#include "llm/train/packed_micro_step.hpp"

namespace llmhost_bench {
namespace {

using Clock = std::chrono::steady_clock;

// Seconds for `timed` calls of `step` after `warmup` untimed ones, device work included. With a
// profile directory, a few more untimed calls are traced afterwards.
template <typename Step>
double time_steps(const torch::Device& device, int64_t warmup, int64_t timed, Step step,
                  const std::string& trace_path = "") {
  for (int64_t i = 0; i < warmup; ++i) step();
  synchronize(device);
  const auto start = Clock::now();
  for (int64_t i = 0; i < timed; ++i) step();
  synchronize(device);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!trace_path.empty()) {
    KinetoTrace trace(trace_path);
    for (int64_t i = 0; i < 3; ++i) step();
    synchronize(device);
  }
  return seconds;
}

std::string trace_path(const Subject& s, const BenchOptions& o, const std::string& workload) {
  if (o.profile_dir.empty()) return "";
  return o.profile_dir + "/" + s.shape + "-" + workload + ".json";
}

torch::Tensor random_tokens(const llm::CausalLM& model, int64_t batch, int64_t length,
                            uint64_t seed) {
  torch::manual_seed(seed);
  const auto ids = torch::randint(0, model.config().vocab_size, {batch, length}, torch::kLong);
  return ids.to(model.device());
}

WorkloadResult base_result(const Subject& s, const char* workload) {
  WorkloadResult r;
  r.shape = s.shape;
  r.workload = workload;
  return r;
}

// One optimizer step after backward, then the gradients zeroed; with a loss scaler (fp16) the
// gradients are unscaled first and an overflowing step is skipped (one host read per step, as in
// the trainer).
void step_optimizer(llm::AdamW& optimizer, double lr, const std::vector<torch::Tensor>& trainable,
                    llm::LossScaler* scaler) {
  bool finite = true;
  if (scaler != nullptr) {
    std::vector<torch::Tensor> grads;
    for (const auto& p : trainable) grads.push_back(p.grad());
    finite = scaler->unscale(grads);
    scaler->update(finite);
  }
  if (finite) optimizer.step(lr);
  optimizer.zero_grad();
}

}  // namespace

// PROTOCOL.md's adapter: r 8, alpha 16, dropout 0.05; PEFT's target "query_key_value" adapts every
// row of GPT-NeoX's fused projection.
std::vector<torch::Tensor> attach_protocol_lora(Subject& s, const llm::Adapter& lora) {
  llm::Json settings = {{"lora_r", 8}, {"lora_alpha", 16}, {"lora_dropout", 0.05}};
  if (s.model.config().model_type == "gpt_neox") settings["lora_key"] = true;
  return lora.attach(s.model, settings);
}

std::vector<std::pair<std::string, torch::Tensor>> named(const std::vector<torch::Tensor>& params) {
  std::vector<std::pair<std::string, torch::Tensor>> list;
  for (size_t i = 0; i < params.size(); ++i)
    list.emplace_back("lora." + std::to_string(i), params[i]);
  return list;
}

namespace {

// PROTOCOL.md's optimizer: AdamW, weight decay 0.01, at kProtocolLearningRate.
constexpr double kProtocolLearningRate = 3e-4;

llm::AdamW protocol_adamw(const std::vector<torch::Tensor>& trainable) {
  llm::AdamWSettings adam;
  adam.weight_decay = 0.01;
  return llm::AdamW(named(trainable), adam);
}

}  // namespace

// First and last timed loss (read after the clock stopped); passed when finite and falling.
void judge_losses(WorkloadResult& r, const std::vector<torch::Tensor>& losses, int64_t warmup,
                  int64_t timed) {
  const auto first_timed = losses.begin() + warmup;
  const auto values = torch::stack(std::vector<torch::Tensor>(first_timed, first_timed + timed))
                          .to(torch::kDouble)
                          .cpu();
  const double first = values[0].item<double>();
  const double last = values[-1].item<double>();
  r.passed = std::isfinite(first) && std::isfinite(last) && last < first;
  r.note = r.passed ? "loss falls" : "loss did not fall";
  r.extra["loss_first_timed"] = first;
  r.extra["loss_last_timed"] = last;
}

WorkloadResult run_score(Subject& s, const BenchOptions& o) {
  auto r = base_result(s, "score");
  const auto device = s.model.device();
  const auto ids = random_tokens(s.model, o.score_batch, o.score_seq, o.seed);
  s.model.eval();
  c10::InferenceMode inference;
  reset_peak_memory(device);
  torch::Tensor logits;
  const double seconds = time_steps(
      device, o.score_warmup, o.score_steps, [&] { logits = s.model.forward(ids); },
      trace_path(s, o, "score"));
  const double tokens = static_cast<double>(o.score_steps * o.score_batch * o.score_seq);
  r.tokens_per_second = tokens / seconds;
  r.step_seconds = seconds / static_cast<double>(o.score_steps);
  r.mfu = r.tokens_per_second * s.flops.forward_per_token(o.score_seq) / (o.peak_tflops * 1e12);
  r.peak_memory_bytes = peak_memory_bytes(device);
  r.passed = logits.isfinite().all().item<bool>();
  if (!r.passed) r.note = "non-finite logits";
  return r;
}

WorkloadResult run_generate(Subject& s, const BenchOptions& o) {
  auto r = base_result(s, "generate");
  const auto device = s.model.device();
  const auto prompt_tensor = random_tokens(s.model, 1, o.prompt_tokens, o.seed + 1).cpu();
  const std::vector<int64_t> prompt(prompt_tensor.data_ptr<int64_t>(),
                                    prompt_tensor.data_ptr<int64_t>() + o.prompt_tokens);
  llm::GenerationOptions options;
  options.max_new_tokens = o.new_tokens;
  options.sampling.temperature = 0;  // greedy
  options.stop_at_eos = false;
  options.greedy_sync_every = o.greedy_sync_every;
  s.model.eval();
  reset_peak_memory(device);
  int64_t made = o.new_tokens;
  std::string decode_path;
  const double seconds = time_steps(
      device, o.generate_warmup, o.generate_runs,
      [&] {
        const auto result = llm::generate(s.model, prompt, options);
        made = std::min(made, result.new_tokens);
        decode_path = result.decode_path;
      },
      trace_path(s, o, "generate"));
  r.tokens_per_second = static_cast<double>(o.generate_runs * o.new_tokens) / seconds;
  r.step_seconds = seconds / static_cast<double>(o.generate_runs);
  const int64_t mean_context = o.prompt_tokens + o.new_tokens / 2;
  r.mfu = r.tokens_per_second * s.flops.forward_per_token(mean_context) / (o.peak_tflops * 1e12);
  r.peak_memory_bytes = peak_memory_bytes(device);
  r.passed = made == o.new_tokens;
  if (!r.passed) r.note = "made " + std::to_string(made) + " new tokens";
  r.extra["new_tokens"] = o.new_tokens;
  r.extra["decode_path"] = decode_path;
  r.extra["greedy_sync_every"] = o.greedy_sync_every;
  return r;
}

// Where one more (untimed) step's memory goes, in GiB (bench/NOTES.md, issue 13 item 5):
// frozen weights, what stays between steps besides them (LoRA parameters, gradients, optimizer
// state), what the forward pass keeps for backward (saved activations and the loss's blocks), and
// what backward needs beyond that at its peak (gradients in flight, workspace).
void record_memory_categories(WorkloadResult& r, Subject& s, const torch::Device& device,
                              const std::function<torch::Tensor()>& forward,
                              const std::function<void(const torch::Tensor&)>& backward) {
  const auto before = allocated_memory_bytes(device);
  if (!before) return;
  int64_t frozen = 0;
  for (const auto& p : s.model.parameters()) {
    if (!p.requires_grad()) frozen += p.numel() * p.element_size();
  }
  const auto loss = forward();
  const int64_t after_forward = *allocated_memory_bytes(device);
  reset_peak_memory(device);
  backward(loss);
  const int64_t backward_peak = *peak_memory_bytes(device);
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  r.extra["memory_GiB"] = {
      {"weights", static_cast<double>(frozen) / kGiB},
      {"trainable_and_optimizer", static_cast<double>(*before - frozen) / kGiB},
      {"saved_by_forward", static_cast<double>(after_forward - *before) / kGiB},
      {"backward_beyond_saved", static_cast<double>(backward_peak - after_forward) / kGiB}};
}

WorkloadResult run_lora_train(Subject& s, const llm::Adapter& lora, const BenchOptions& o,
                              bool checkpointed, const char* name) {
  const char* workload = name ? name : checkpointed ? "lora-train-checkpointed" : "lora-train";
  auto r = base_result(s, workload);
  s.model.set_activation_checkpointing(checkpointed);
  const auto device = s.model.device();
  const auto trainable = attach_protocol_lora(s, lora);
  int64_t trainable_count = 0;
  for (const auto& p : trainable) trainable_count += p.numel();
  auto optimizer = protocol_adamw(trainable);
  const double lr = kProtocolLearningRate;

  const auto ids = random_tokens(s.model, o.train_batch, o.train_seq, o.seed + 2);
  s.model.train();
  std::vector<torch::Tensor> losses;  // read after the clock stops: no sync inside the loop
  // fp16: scaled loss, unscaled fp32 LoRA gradients, overflowing steps skipped (one host read
  // per step for the finiteness check, as in the trainer).
  const bool scaled = s.model.dtype() == torch::kHalf;
  llm::LossScaler scaler;
  reset_peak_memory(device);
  const double seconds = time_steps(
      device, o.train_warmup, o.train_steps,
      [&] {
        // As the trainer runs its step: the LoRA factors' gradients into .grad (opt-in inside).
        const llm::FactorGradientsIntoGrad into_grad;
        const auto loss = s.model.next_token_loss(ids, ids).mean;
        (scaled ? loss * scaler.scale() : loss).backward();
        step_optimizer(optimizer, lr, trainable, scaled ? &scaler : nullptr);
        losses.push_back(loss.detach());
      },
      trace_path(s, o, workload));
  r.peak_memory_bytes = peak_memory_bytes(device);
  s.model.set_activation_checkpointing(false);
  const double tokens = static_cast<double>(o.train_steps * o.train_batch * o.train_seq);
  r.tokens_per_second = tokens / seconds;
  r.step_seconds = seconds / static_cast<double>(o.train_steps);
  r.mfu = r.tokens_per_second * s.flops.lora_train_per_token(o.train_seq) / (o.peak_tflops * 1e12);

  judge_losses(r, losses, o.train_warmup, o.train_steps);
  if (!scaled)
    record_memory_categories(
        r, s, device, [&] { return s.model.next_token_loss(ids, ids).mean; },
        [&](const torch::Tensor& loss) {
          loss.backward();
          optimizer.step(lr);
          optimizer.zero_grad();
        });
  r.extra["trainable_params"] = trainable_count;
  r.extra["micro_batch"] = o.train_batch;
  r.extra["seq"] = o.train_seq;
  r.extra["activation_checkpointing"] = checkpointed;
  r.extra["precision"] = llm::precision_name(s.model.dtype());
  if (scaled) {
    r.extra["loss_scale"] = scaler.scale();
    r.extra["skipped_steps"] = scaler.skipped_steps();
  }
  return r;
}

// lora-train as `llmhost --task finetune --packing true` runs it on a CUDA device: the samples laid
// end to end in one row (each attending only to itself: the same targets and arithmetic as the
// [8, 512] batch), forward, loss and backward replayed as a recorded CUDA graph
// (llm::PackedMicroStep), then the fused AdamW step.
WorkloadResult run_lora_train_replayed(Subject& s, const llm::Adapter& lora,
                                       const BenchOptions& o) {
  auto r = base_result(s, "lora-train");
  const auto device = s.model.device();
  const auto trainable = attach_protocol_lora(s, lora);
  auto optimizer = protocol_adamw(trainable);
  const double lr = kProtocolLearningRate;

  // The lora-train batch (same seed), packed: labels = inputs, each sample's first token not a
  // target (the [8, 512] batch has no target there either).
  torch::manual_seed(o.seed + 2);
  const auto ids =
      torch::randint(0, s.model.config().vocab_size, {o.train_batch, o.train_seq}, torch::kLong);
  llm::Batch batch;
  batch.input_ids = ids.reshape({1, o.train_batch * o.train_seq});
  batch.labels = batch.input_ids.clone();
  for (int64_t i = 0; i < o.train_batch; ++i) {
    batch.labels[0][i * o.train_seq] = llm::kIgnoreIndex;
    batch.packed_lengths.push_back(o.train_seq);
  }
  const double targets = static_cast<double>(o.train_batch * (o.train_seq - 1));

  s.model.train();
  const bool scaled = s.model.dtype() == torch::kHalf;
  llm::LossScaler scaler;
  std::vector<torch::Tensor> losses;
  release_cached_memory(device);  // what earlier workloads left cached
  reset_peak_memory(device);      // recording and warm-up count, as in lora-train-eager
  llm::PackedMicroStep micro_step(s.model, trainable, o.train_batch * o.train_seq, o.train_seq);
  uint64_t dropout_seed = o.seed + 100;
  const double seconds = time_steps(
      device, o.train_warmup, o.train_steps,
      [&] {
        micro_step.begin_step(targets, scaled ? scaler.scale() : 1.0);
        micro_step.run(batch, dropout_seed++);
        step_optimizer(optimizer, lr, trainable, scaled ? &scaler : nullptr);
        losses.push_back(micro_step.loss_sum() / targets);
      },
      trace_path(s, o, "lora-train"));
  r.peak_memory_bytes = peak_memory_bytes(device);
  const double tokens = static_cast<double>(o.train_steps * o.train_batch * o.train_seq);
  r.tokens_per_second = tokens / seconds;
  r.step_seconds = seconds / static_cast<double>(o.train_steps);
  r.mfu = r.tokens_per_second * s.flops.lora_train_per_token(o.train_seq) / (o.peak_tflops * 1e12);
  judge_losses(r, losses, o.train_warmup, o.train_steps);
  r.extra["micro_batch"] = o.train_batch;
  r.extra["seq"] = o.train_seq;
  r.extra["packing"] = true;
  r.extra["cuda_graphs"] = micro_step.graphs();
  r.extra["precision"] = llm::precision_name(s.model.dtype());
  return r;
}

WorkloadResult run_lora_train_varlen(Subject& s, const llm::Adapter& lora, const BenchOptions& o,
                                     const std::vector<int64_t>& lengths, bool replayed) {
  auto r = base_result(s, replayed ? "lora-train-varlen" : "lora-train-varlen-eager");
  if (lengths.empty()) throw llm::UserError("lora-train-varlen: no sample lengths");
  const auto device = s.model.device();
  const auto trainable = attach_protocol_lora(s, lora);
  auto optimizer = protocol_adamw(trainable);
  const double lr = kProtocolLearningRate;
  // Step i trains samples 8i .. 8i + 7 (of the 512, cyclically), laid end to end in one row; the
  // first token of each sample is not a target (nothing of its own precedes it). Every sample is
  // a prefix of one seeded random text (bench/hf_lora_train_bench.py does the same), so the loss
  // can fall over the timed steps as with the fixed batch; with new random tokens each step it
  // could only stay at ln(vocab).
  const int64_t total_steps = o.train_warmup + o.train_steps;
  torch::manual_seed(o.seed + 3);
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  const auto text = torch::randint(0, s.model.config().vocab_size, {longest}, torch::kLong);
  std::vector<llm::Batch> steps;
  for (int64_t i = 0; i < total_steps; ++i) {
    llm::Batch step;
    std::vector<torch::Tensor> samples;
    for (int64_t j = 0; j < o.train_batch; ++j) {
      const int64_t length = lengths[static_cast<size_t>((i * o.train_batch + j) %
                                                         static_cast<int64_t>(lengths.size()))];
      step.packed_lengths.push_back(length);
      step.tokens += length;
      step.target_tokens += length - 1;
      samples.push_back(text.narrow(0, 0, length));
    }
    step.input_ids = torch::cat(samples).unsqueeze(0);
    step.labels = step.input_ids.clone();
    int64_t start = 0;
    for (const auto length : step.packed_lengths) {
      step.labels[0][start] = llm::kIgnoreIndex;
      start += length;
    }
    steps.push_back(std::move(step));
  }
  s.model.train();
  std::vector<torch::Tensor> losses;
  int64_t next = 0;
  release_cached_memory(device);
  reset_peak_memory(device);
  std::function<void()> step_fn;
  std::unique_ptr<llm::PackedMicroStep> micro_step;
  uint64_t dropout_seed = o.seed + 100;
  if (replayed) {
    // As the trainer with --packing: at most train_batch x longest positions a micro-batch, each
    // filled to the next multiple of the token granule (by default a 64th of that budget: 128
    // here). Every size the timed steps use is recorded before the clock starts, as the reference
    // compiles for every length first.
    micro_step = std::make_unique<llm::PackedMicroStep>(s.model, trainable, o.train_batch * longest,
                                                        longest, 2, o.token_granule);
    for (const auto& step : steps) {
      micro_step->begin_step(1.0, 1.0);
      micro_step->run(step, dropout_seed);
    }
    optimizer.zero_grad();
    step_fn = [&] {
      const auto& step = steps[static_cast<size_t>(next++ % total_steps)];
      const auto targets = static_cast<double>(step.target_tokens);
      micro_step->begin_step(targets, 1.0);
      micro_step->run(step, dropout_seed++);
      optimizer.step(lr);
      optimizer.zero_grad();
      losses.push_back(micro_step->loss_sum() / targets);
    };
  } else {
    // On the device once, before the clock: a copy from pageable memory inside the step would
    // wait for the device's queue to drain.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> on_device;
    for (const auto& step : steps) {
      on_device.emplace_back(step.input_ids.to(device), step.labels.to(device));
    }
    step_fn = [&, on_device = std::move(on_device)] {
      const auto i = static_cast<size_t>(next++ % total_steps);
      const llm::PackedSequences packing(steps[i].packed_lengths, device);
      const auto loss =
          s.model
              .next_token_loss(on_device[i].first, on_device[i].second, llm::kIgnoreIndex, &packing)
              .mean;
      loss.backward();
      optimizer.step(lr);
      optimizer.zero_grad();
      losses.push_back(loss.detach());
    };
  }
  const double seconds =
      time_steps(device, o.train_warmup, o.train_steps, step_fn, trace_path(s, o, r.workload));
  r.peak_memory_bytes = peak_memory_bytes(device);
  int64_t timed_tokens = 0;
  for (int64_t i = o.train_warmup; i < total_steps; ++i) timed_tokens += steps[i].tokens;
  r.tokens_per_second = static_cast<double>(timed_tokens) / seconds;  // no padding to count
  r.step_seconds = seconds / static_cast<double>(o.train_steps);
  r.mfu = r.tokens_per_second * s.flops.lora_train_per_token(o.train_seq) / (o.peak_tflops * 1e12);
  judge_losses(r, losses, o.train_warmup, o.train_steps);
  if (replayed) r.extra["token_granule"] = micro_step->token_granule();
  r.extra["micro_batch"] = o.train_batch;
  r.extra["timed_tokens"] = timed_tokens;
  r.extra["packing"] = true;
  if (micro_step) r.extra["cuda_graphs"] = micro_step->graphs();
  return r;
}

}  // namespace llmhost_bench
