#pragma once
// PROTOCOL.md's three workloads on one loaded model. Each synchronises the device before reading
// the clock and times steady state only (after its warm-up).
#include <string>
#include <vector>

#include "bench_options.hpp"
#include "flop_count.hpp"
#include "llm/adapter.hpp"
#include "llm/model.hpp"
#include "report.hpp"

namespace llmhost_bench {

struct Subject {
  std::string shape;
  llm::CausalLM& model;
  FlopModel flops;
};

// Forward only, no autograd: score_batch x score_seq random tokens.
WorkloadResult run_score(Subject& s, const BenchOptions& o);
// Batch 1, greedy, KV cache, exactly new_tokens after a prompt_tokens prompt, through
// llm::generate (what `llmhost --task generate` runs). tokens/s counts new tokens over the whole
// call, prefill included, as the Hugging Face side does.
WorkloadResult run_generate(Subject& s, const BenchOptions& o);
// Attaches LoRA (r 8, alpha 16, dropout 0.05; GPT-NeoX: the whole fused query_key_value, Llama:
// q_proj + v_proj, as PEFT targets them) and trains on one fixed batch with labels = inputs; the
// loss must fall over the timed steps. Leaves the adapters attached. `checkpointed`: activation
// checkpointing on (workload "lora-train-checkpointed"), to compare peak memory.
// fp16 models train with dynamic loss scaling (llm::LossScaler), as `llmhost --task finetune`
// does. `workload` overrides the row's name (lora-train-nf4: a model loaded with NF4 weights).
WorkloadResult run_lora_train(Subject& s, const llm::Adapter& lora, const BenchOptions& o,
                              bool checkpointed = false, const char* workload = nullptr);
// PROTOCOL.md's adapter (r 8, alpha 16, dropout 0.05; GPT-NeoX: the whole fused
// query_key_value, as PEFT targets it), attached to s.model; returns the trainable tensors.
std::vector<torch::Tensor> attach_protocol_lora(Subject& s, const llm::Adapter& lora);
// The tensors under names "lora.<i>", for llm::AdamW.
std::vector<std::pair<std::string, torch::Tensor>> named(const std::vector<torch::Tensor>& params);

// Records the first and last timed loss (losses[warmup] and losses[warmup + timed - 1], read after
// the clock stopped); passed when both are finite and the loss fell.
void judge_losses(WorkloadResult& r, const std::vector<torch::Tensor>& losses, int64_t warmup,
                  int64_t timed);

// lora-train on variable-length samples (PROTOCOL.md, "Variable-length workload"; lengths from
// bench/varlen_lengths.json): micro-batches of train_batch samples packed end to end in one row,
// each sample attending only to itself. tokens/s counts the samples' tokens (filler is not
// counted). replayed: as the trainer runs it on a CUDA device (llm::PackedMicroStep, row
// "lora-train-varlen"); otherwise each step through autograd (row "lora-train-varlen-eager").
WorkloadResult run_lora_train_varlen(Subject& s, const llm::Adapter& lora, const BenchOptions& o,
                                     const std::vector<int64_t>& lengths, bool replayed);
// lora-train as the trainer runs it with --packing on a CUDA device (llm::PackedMicroStep): the
// batch's samples in one row, each micro-batch a replayed CUDA graph. The row "lora-train" where
// PackedMicroStep::can_replay; run_lora_train (row "lora-train-eager") is the autograd step.
WorkloadResult run_lora_train_replayed(Subject& s, const llm::Adapter& lora, const BenchOptions& o);

}  // namespace llmhost_bench
