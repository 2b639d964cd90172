#pragma once
// The finetuning loop: frozen base, trainable (LoRA) parameters in fp32, AdamW, warm-up + cosine,
// gradient accumulation to the effective batch, clipping, validation, checkpoints, exact resume.
//
// Data parallel: each rank takes its contiguous slice of every step's samples (GradientReducer);
// rank 0 alone writes checkpoints, metrics and the progress line.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"
#include "llm/json_file.hpp"
#include "llm/train/adamw.hpp"
#include "llm/train/loss_scaler.hpp"
#include "llm/train/packed_micro_step.hpp"
#include "llm/train/prepared_data.hpp"

namespace llm {

class CausalLM;

struct TrainingSettings {
  double learning_rate = 3e-4;
  int64_t batch_size = 128;      // effective batch (samples per optimizer step)
  int64_t micro_batch_size = 4;  // samples per forward/backward
  double epochs = 1.0;           // used when max_steps == 0
  int64_t max_steps = 0;         // optimizer steps; 0: derived from epochs
  double weight_decay = 0.01;
  int64_t warmup_steps = 100;
  double min_lr = 0.0;
  double grad_clip = 1.0;       // max global grad norm; <= 0 disables
  int64_t eval_interval = 100;  // optimizer steps; 0 disables periodic validation
  int64_t eval_iters = 100;     // validation micro-batches
  int64_t save_interval = 100;  // optimizer steps; 0: final checkpoint only
  int64_t max_seq_length = 0;   // 0: as prepared
  uint64_t seed = 1337;
  int64_t stop_after_step = 0;  // > 0: checkpoint and stop there, as if interrupted
  int64_t log_interval = 1;     // progress line every N steps
  // Padding-free packing: each step's samples laid end to end in rows of at most
  // micro_batch_size x max_seq_length tokens, each attending only to itself.
  bool packing = false;
  // With packing on a CUDA device: each micro-batch filled to micro_batch_size x max_seq_length
  // tokens and replayed as a recorded CUDA graph (llm/train/packed_micro_step.hpp). Off with
  // activation checkpointing, whose recomputation reads and sets the RNG state.
  bool cuda_graphs = true;
  // fp16 training: scale the loss, skip steps with inf/NaN gradients (llm/train/loss_scaler.hpp).
  bool dynamic_loss_scaling = false;
  LossScalerSettings loss_scaler;
};

// The data-parallel hook: each rank trains on its shard of every step's samples, and this sums
// what the ranks computed (token counts, gradients, loss and validation sums). The single-process
// one does nothing; llm/dist/data_parallel.hpp has the c10d one.
struct GradientReducer {
  virtual ~GradientReducer() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  virtual int64_t sum_tokens(int64_t local_tokens) { return local_tokens; }
  // Called once per optimizer step, after every micro-batch's backward.
  virtual void sum_gradients(const std::vector<torch::Tensor>& grads) { (void)grads; }
  virtual void sum_values(std::vector<double>& values) { (void)values; }
  // Every rank reaches this point (rank 0 has finished writing, say).
  virtual void barrier(const char* what) { (void)what; }
};

struct TrainingResult {
  int64_t steps_done = 0;
  int64_t resumed_from_step = 0;
  std::optional<double> initial_val_loss;  // before the first step of this run (not on resume)
  std::optional<double> final_val_loss;
  std::filesystem::path final_checkpoint;  // OUT/final
  int stop_signal = 0;  // stopped early by this signal, after checkpointing OUT/step-<steps_done>
};

using SaveAdapterFn = std::function<void(const std::filesystem::path& dir)>;

// Checkpoint directories: OUT/step-000100/, ..., OUT/final/. Each holds the adapter (written by
// save_adapter, PEFT layout) plus trainer_state.safetensors (parameters and AdamW moments by name)
// and trainer_state.json (step, samples consumed, settings). A directory is assembled under a
// temporary name and renamed into place, so a visible checkpoint is always complete.
class LLM_API Trainer {
 public:
  Trainer(CausalLM& model, std::vector<std::pair<std::string, torch::Tensor>> trainable,
          const PreparedDataset& data, TrainingSettings settings, std::filesystem::path out_dir,
          SaveAdapterFn save_adapter, std::ostream& log);

  void set_gradient_reducer(GradientReducer* reducer) { reducer_ = reducer; }
  // Extra entries recorded in trainer_state.json and compared on resume (e.g. LoRA settings).
  void set_run_description(Json description) { description_ = std::move(description); }

  TrainingResult run(bool resume);

  // Called each step with the summed, still scaled gradients, before the finiteness check (tests
  // inject infs here).
  using GradientHook = std::function<void(int64_t step, const std::vector<torch::Tensor>& grads)>;
  void set_gradient_hook(GradientHook hook) { gradient_hook_ = std::move(hook); }
  const LossScaler& loss_scaler() const { return scaler_; }

  int64_t total_steps() const { return total_steps_; }
  // Token-weighted mean loss over the first eval_iters micro-batches of the test split.
  double validation_loss();

  // The newest complete checkpoint under out_dir, if any.
  static std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& out);

 private:
  double train_step(int64_t step);
  void clip_gradients(const std::vector<torch::Tensor>& grads) const;
  void save_checkpoint(int64_t step, const std::string& name);
  int64_t restore(const std::filesystem::path& checkpoint);
  Json state_description(int64_t step) const;

  CausalLM& model_;
  std::vector<std::pair<std::string, torch::Tensor>> trainable_;
  const PreparedDataset& data_;
  TrainingSettings settings_;
  std::filesystem::path out_dir_;
  SaveAdapterFn save_adapter_;
  std::ostream& log_;
  GradientReducer default_reducer_;
  GradientReducer* reducer_ = &default_reducer_;
  Json description_ = Json::object();
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<PackedMicroStep> micro_step_;  // packing replayed as CUDA graphs
  LossScaler scaler_;
  GradientHook gradient_hook_;
  int64_t total_steps_ = 0;
  bool mask_inputs_ = false;
  int64_t max_seq_length_ = 0;
  int64_t pad_id_ = 0;
};

}  // namespace llm
