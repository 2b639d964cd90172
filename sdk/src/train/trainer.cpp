#include "llm/train/trainer.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>

#include <torch/torch.h>

#include "llm/atomic_file.hpp"
#include "llm/error.hpp"
#include "llm/model.hpp"
#include "llm/nn/low_rank.hpp"
#include "llm/safetensors.hpp"
#include "llm/train/batching.hpp"
#include "llm/train/lr_schedule.hpp"
#include "llm/train/metrics.hpp"
#include "llm/train/stop_request.hpp"

namespace llm {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kStateFormatVersion = 1;
constexpr const char* kStateJson = "trainer_state.json";
constexpr const char* kStateTensors = "trainer_state.safetensors";

// Crash-safety test hook: LLMHOST_TEST_KILL_AT=<point>:<step> makes the process SIGKILL itself at
// that point, as an OOM killer or a pre-empted node would (tests/host/crash_safety_test.cpp).
void kill_point(const char* point, int64_t step) {
  static const char* const spec = std::getenv("LLMHOST_TEST_KILL_AT");
  if (spec != nullptr && std::string(point) + ":" + std::to_string(step) == spec) {
    std::raise(SIGKILL);
  }
}

void require_positive(int64_t value, const char* flag) {
  if (value <= 0) throw UserError(std::string("--") + flag + " must be a positive integer");
}

// NaN passes every comparison, so each bound is written as the condition that must hold.
void require_finite(double value, const char* flag, const char* expected) {
  if (!std::isfinite(value)) {
    throw UserError(std::string("--") + flag + " must be " + expected + ", got " +
                    std::to_string(value));
  }
}

// Sample indices ((step - 1) * batch_size + i) must fit in int64_t with room to spare.
constexpr double kMaxSamplesPerRun = 4.0e18;

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(std::max(0.0, seconds));
  std::ostringstream s;
  if (total >= 3600) s << total / 3600 << "h";
  s << (total % 3600) / 60 << "m" << std::setw(2) << std::setfill('0') << total % 60 << "s";
  return s.str();
}

// The settings that shape the trajectory: a resume with different ones would not continue the run.
Json trajectory_settings(const TrainingSettings& s, int64_t total_steps, int64_t max_seq_length) {
  Json settings{{"learning_rate", s.learning_rate},
                {"batch_size", s.batch_size},
                {"micro_batch_size", s.micro_batch_size},
                {"total_steps", total_steps},
                {"weight_decay", s.weight_decay},
                {"warmup_steps", s.warmup_steps},
                {"min_lr", s.min_lr},
                {"grad_clip", s.grad_clip},
                {"seed", s.seed},
                {"max_seq_length", max_seq_length}};
  // Only when on, so runs without it resume from checkpoints written before the option existed.
  if (s.packing) settings["packing"] = true;
  return settings;
}

}  // namespace

Trainer::Trainer(CausalLM& model, std::vector<std::pair<std::string, torch::Tensor>> trainable,
                 const PreparedDataset& data, TrainingSettings settings, fs::path out_dir,
                 SaveAdapterFn save_adapter, std::ostream& log)
    : model_(model),
      trainable_(std::move(trainable)),
      data_(data),
      settings_(settings),
      out_dir_(std::move(out_dir)),
      save_adapter_(std::move(save_adapter)),
      log_(log),
      scaler_(settings.loss_scaler) {
  require_positive(settings_.batch_size, "batch_size");
  require_positive(settings_.micro_batch_size, "micro_batch_size");
  if (settings_.batch_size % settings_.micro_batch_size != 0) {
    throw UserError("--batch_size (" + std::to_string(settings_.batch_size) +
                    ") must be a multiple of --micro_batch_size (" +
                    std::to_string(settings_.micro_batch_size) + ")");
  }
  if (settings_.max_steps < 0) throw UserError("--max_steps must not be negative");
  if (settings_.max_steps == 0 && !(settings_.epochs > 0)) {
    throw UserError("--epochs must be positive when --max_steps is not given");
  }
  require_finite(settings_.epochs, "epochs", "a finite number of passes");
  require_finite(settings_.learning_rate, "learning_rate", "a finite positive number");
  if (!(settings_.learning_rate > 0)) {
    throw UserError("--learning_rate must be positive, got " +
                    std::to_string(settings_.learning_rate) + " (the run would not train)");
  }
  require_finite(settings_.min_lr, "min_lr", "a finite number in [0, --learning_rate]");
  if (!(settings_.min_lr >= 0 && settings_.min_lr <= settings_.learning_rate)) {
    throw UserError("--min_lr must be in [0, --learning_rate], got " +
                    std::to_string(settings_.min_lr));
  }
  require_finite(settings_.weight_decay, "weight_decay", "a finite number >= 0");
  if (!(settings_.weight_decay >= 0)) throw UserError("--weight_decay must not be negative");
  require_finite(settings_.grad_clip, "grad_clip", "a finite number (0: off)");
  if (settings_.max_seq_length < 0 || settings_.max_seq_length == 1) {
    throw UserError(
        "--max_seq_length must be 0 (as prepared) or at least 2 (a token and its "
        "successor), got " +
        std::to_string(settings_.max_seq_length));
  }
  if (settings_.eval_iters < 0 || settings_.eval_interval < 0 || settings_.save_interval < 0) {
    throw UserError("--eval_iters, --eval_interval and --save_interval must not be negative");
  }
  if (settings_.warmup_steps < 0) throw UserError("--warmup_steps must not be negative");
  if (trainable_.empty()) throw UserError("nothing to train: the adapter has no parameters");
  const double steps =
      settings_.max_steps > 0
          ? static_cast<double>(settings_.max_steps)
          : std::max(1.0, std::ceil(settings_.epochs * static_cast<double>(data_.train.size()) /
                                    static_cast<double>(settings_.batch_size)));
  if (!(steps * static_cast<double>(settings_.batch_size) <= kMaxSamplesPerRun)) {
    std::ostringstream count;
    count << steps;
    throw UserError(std::string(settings_.max_steps > 0 ? "--max_steps" : "--epochs") +
                    " is too large: the run would take " + count.str() + " steps of " +
                    std::to_string(settings_.batch_size) + " samples, more than a run can count");
  }
  total_steps_ = static_cast<int64_t>(steps);
  mask_inputs_ = data_.mask_inputs();
  max_seq_length_ =
      settings_.max_seq_length > 0 ? settings_.max_seq_length : data_.max_seq_length();
  AdamWSettings adamw;
  adamw.weight_decay = settings_.weight_decay;
  optimizer_ = std::make_unique<AdamW>(trainable_, adamw);
}

double Trainer::validation_loss() {
  const int64_t available = data_.test.size();
  const int64_t wanted = std::min(available, settings_.eval_iters * settings_.micro_batch_size);
  if (wanted == 0) return std::nan("");
  torch::NoGradGuard no_grad;
  model_.eval();
  double loss_sum = 0;
  int64_t tokens = 0;
  // Micro-batch k runs on rank k % world; the sums are reduced, so every rank gets the same value.
  const int64_t world = reducer_->world_size();
  for (int64_t first = settings_.micro_batch_size * reducer_->rank(); first < wanted;
       first += settings_.micro_batch_size * world) {
    std::vector<int64_t> samples;
    for (int64_t i = first; i < std::min(wanted, first + settings_.micro_batch_size); ++i) {
      samples.push_back(i);
    }
    const Batch batch = make_batch(data_.test, samples, mask_inputs_, max_seq_length_, pad_id_);
    loss_sum += model_
                    .next_token_loss(batch.input_ids.to(model_.device()),
                                     batch.labels.to(model_.device()), kIgnoreIndex)
                    .sum.item<double>();
    tokens += batch.target_tokens;
  }
  std::vector<double> sums{loss_sum, static_cast<double>(tokens)};
  reducer_->sum_values(sums);
  return sums[1] > 0 ? sums[0] / sums[1] : std::nan("");
}

double Trainer::train_step(int64_t step) {
  SampleOrder order(data_.train.size(), settings_.seed);
  // This rank's contiguous shard of the step's samples, cut into micro-batches.
  const int64_t shard = settings_.batch_size / reducer_->world_size();
  const int64_t first_sample = (step - 1) * settings_.batch_size + reducer_->rank() * shard;
  std::vector<Batch> batches;
  std::vector<uint64_t> dropout_seeds;
  int64_t local_tokens = 0;
  // Dropout masks are a pure function of (seed, step, position of the micro-batch in the step): a
  // resumed run, and a run on more ranks with aligned micro-batches, draw the same ones.
  const auto add_batch = [&](Batch batch, int64_t offset) {
    local_tokens += batch.target_tokens;
    batches.push_back(std::move(batch));
    const auto position = static_cast<uint64_t>(reducer_->rank() * shard + offset);
    dropout_seeds.push_back(settings_.seed * 1000003ULL + static_cast<uint64_t>(step) * 65599ULL +
                            position);
  };
  const int64_t token_budget = settings_.micro_batch_size * max_seq_length_;
  if (settings_.packing && settings_.cuda_graphs && !micro_step_ &&
      PackedMicroStep::can_replay(model_.device()) && !model_.activation_checkpointing()) {
    std::vector<torch::Tensor> parameters;
    for (const auto& [name, p] : trainable_) parameters.push_back(p);
    micro_step_ =
        std::make_unique<PackedMicroStep>(model_, parameters, token_budget, max_seq_length_);
  }
  if (settings_.packing) {
    // Padding-free: the shard's samples laid end to end, micro_batch_size x max_seq_length tokens
    // per forward at most.
    std::vector<int64_t> samples;
    for (int64_t i = 0; i < shard; ++i) samples.push_back(order.sample_at(first_sample + i));
    int64_t offset = 0;
    for (const auto& group : pack_samples(data_.train, samples, max_seq_length_, token_budget)) {
      add_batch(make_packed_batch(data_.train, group, mask_inputs_, max_seq_length_), offset);
      offset += static_cast<int64_t>(group.size());
    }
  } else {
    for (int64_t offset = 0; offset < shard; offset += settings_.micro_batch_size) {
      std::vector<int64_t> samples;
      for (int64_t i = offset; i < std::min(shard, offset + settings_.micro_batch_size); ++i) {
        samples.push_back(order.sample_at(first_sample + i));
      }
      add_batch(make_batch(data_.train, samples, mask_inputs_, max_seq_length_, pad_id_), offset);
    }
  }
  // The loss is the mean over every target token of the effective batch, so each micro-batch's
  // summed loss is divided by the step's total, not by its own count.
  const int64_t step_tokens = reducer_->sum_tokens(local_tokens);
  const double divisor = static_cast<double>(std::max<int64_t>(step_tokens, 1));

  model_.train();
  optimizer_->zero_grad();
  const double loss_scale = settings_.dynamic_loss_scaling ? scaler_.scale() : 1.0;
  // Summed on the device and read once per step: a read per micro-batch stalls the host while
  // the GPU drains.
  torch::Tensor step_loss_sum;
  if (micro_step_) {
    micro_step_->begin_step(divisor, loss_scale);
    for (size_t b = 0; b < batches.size(); ++b) {
      if (batches[b].input_ids.numel() > 0) micro_step_->run(batches[b], dropout_seeds[b]);
    }
    step_loss_sum = micro_step_->loss_sum();
  } else {
    for (size_t b = 0; b < batches.size(); ++b) {
      const auto& batch = batches[b];
      if (batch.input_ids.numel() == 0) continue;  // a packed batch of empty samples
      torch::manual_seed(dropout_seeds[b]);
      // The LoRA factors' gradients added into .grad by the kernels that sum them (opt-in inside).
      const FactorGradientsIntoGrad into_grad;
      std::optional<PackedSequences> packing;
      if (!batch.packed_lengths.empty()) packing.emplace(batch.packed_lengths, model_.device());
      const auto loss = model_
                            .next_token_loss(batch.input_ids.to(model_.device()),
                                             batch.labels.to(model_.device()), kIgnoreIndex,
                                             packing ? &*packing : nullptr)
                            .sum;
      step_loss_sum = step_loss_sum.defined() ? step_loss_sum + loss.detach() : loss.detach();
      // Times a power of two after the division: the scaled gradients are exactly 2^k times the
      // unscaled ones (tests/sdk/train/loss_scaler_test.cpp).
      if (batch.target_tokens > 0) ((loss / divisor) * loss_scale).backward();
    }
  }
  double loss_sum = step_loss_sum.defined() ? step_loss_sum.item<double>() : 0.0;
  kill_point("step", step);  // gradients computed, optimizer not yet stepped
  std::vector<torch::Tensor> grads;
  for (auto& [name, p] : trainable_) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  reducer_->sum_gradients(grads);
  std::vector<double> loss_total{loss_sum};
  reducer_->sum_values(loss_total);
  loss_sum = loss_total[0];
  if (gradient_hook_) gradient_hook_(step, grads);
  if (settings_.dynamic_loss_scaling) {
    // Every rank holds the same summed gradients, so every rank takes the same decision.
    const bool finite = scaler_.unscale(grads);
    scaler_.update(finite);
    if (!finite) return loss_sum / divisor;  // skipped: parameters and AdamW moments untouched
  }
  if (settings_.grad_clip > 0) clip_gradients(grads);
  LrSchedule schedule{settings_.learning_rate, settings_.warmup_steps, total_steps_,
                      settings_.min_lr};
  optimizer_->step(schedule.at(step));
  return loss_sum / divisor;
}

// Scales the gradients by clip / (norm + 1e-6) where their global norm exceeds the clip, deciding
// on the device: reading the norm would stall the host once per step.
void Trainer::clip_gradients(const std::vector<torch::Tensor>& grads) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  for (const auto& g : grads) flat.push_back(g.reshape({-1}));
  const auto norm = torch::cat(flat).to(torch::kDouble).pow(2).sum().sqrt();
  const auto factor = torch::where(norm > settings_.grad_clip,
                                   torch::full_like(norm, settings_.grad_clip) / (norm + 1e-6),
                                   torch::ones_like(norm));
  for (const auto& g : grads) g.mul_(factor);
}

Json Trainer::state_description(int64_t step) const {
  return Json{{"format_version", kStateFormatVersion},
              {"step", step},
              {"samples_consumed", step * settings_.batch_size},
              {"rng", "dropout seeded per step from seed and step"},
              {"loss_scaler", scaler_.state()},
              {"settings", trajectory_settings(settings_, total_steps_, max_seq_length_)},
              {"run", description_}};
}

void Trainer::save_checkpoint(int64_t step, const std::string& name) {
  const fs::path target = out_dir_ / name;
  const fs::path temp = temp_directory_for(target);
  fs::remove_all(temp);
  try {
    fs::create_directories(temp);
    save_adapter_(temp);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& [param_name, p] : trainable_) tensors.emplace_back("param/" + param_name, p);
    for (auto& entry : optimizer_->state()) tensors.push_back(std::move(entry));
    write_safetensors(temp / kStateTensors, tensors);
    kill_point("checkpoint-data", step);  // adapter and state tensors written, state json not yet
    write_file_atomic(temp / kStateJson, state_description(step).dump(2) + "\n");
    kill_point("checkpoint-rename", step);  // complete under the temporary name
    replace_directory(temp, target);        // atomic swap, parent directory fsynced
  } catch (...) {
    // A failed attempt (disk full, say) must not leave a half checkpoint under a temporary name.
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw;
  }
}

std::optional<fs::path> Trainer::latest_checkpoint(const fs::path& out) {
  std::optional<fs::path> best;
  int64_t best_step = -1;
  if (!fs::is_directory(out)) return best;
  for (const auto& entry : fs::directory_iterator(out)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_directory() || name.empty() || name[0] == '.') continue;
    if (!fs::exists(entry.path() / kStateJson)) continue;
    const Json state = read_json_file(entry.path() / kStateJson);
    const int64_t step = json_int_or(state, "step", -1, (entry.path() / kStateJson).string());
    if (step > best_step) {
      best_step = step;
      best = entry.path();
    }
  }
  return best;
}

int64_t Trainer::restore(const fs::path& checkpoint) {
  const auto json_path = checkpoint / kStateJson;
  const Json state = read_json_file(json_path);
  const std::string source = json_path.string();
  if (json_int_or(state, "format_version", 0, source) != kStateFormatVersion) {
    throw UserError(source + ": unsupported trainer state format_version");
  }
  const Json expected = state_description(0);
  for (const char* part : {"settings", "run"}) {
    const Json saved = state.value(part, Json::object());
    for (const auto& [key, value] : expected[part].items()) {
      if (!saved.contains(key) || saved[key] != value) {
        throw UserError("--resume: " + source + " was written with " + key + "=" +
                        (saved.contains(key) ? saved[key].dump() : "(absent)") +
                        " but this run has " + value.dump() + "; resume with the same settings");
      }
    }
  }
  const int64_t step = json_int(state, "step", source);
  if (step < 0 || step > total_steps_) {
    throw UserError("--resume: " + source + " is at step " + std::to_string(step) +
                    ", outside this run's 0.." + std::to_string(total_steps_) + " steps");
  }
  const SafetensorsFile tensors(checkpoint / kStateTensors);
  std::vector<std::pair<std::string, torch::Tensor>> moments;
  for (const auto& info : tensors.tensors()) {
    moments.emplace_back(info.name, tensors.tensor(info.name));
    // A run resumed from NaN or infinite parameters or moments could only produce NaN.
    if (moments.back().second.is_floating_point() &&
        !torch::isfinite(moments.back().second).all().item<bool>()) {
      throw UserError("--resume: " + (checkpoint / kStateTensors).string() + ": tensor '" +
                      info.name + "' holds NaN or infinite values");
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : trainable_) {
    const std::string key = "param/" + name;
    if (!tensors.contains(key) || tensors.info(key).shape != p.sizes().vec()) {
      throw UserError((checkpoint / kStateTensors).string() + ": tensor '" + key +
                      "' is missing or has the wrong shape");
    }
    p.copy_(tensors.tensor(key));
  }
  if (settings_.dynamic_loss_scaling) {
    scaler_.load_state(state.value("loss_scaler", Json()), source);
  }
  // Skipped steps did not advance AdamW's bias correction.
  optimizer_->load_state(moments, step - scaler_.skipped_steps(),
                         (checkpoint / kStateTensors).string());
  return step;
}

TrainingResult Trainer::run(bool resume) {
  const int world = reducer_->world_size();
  if (settings_.batch_size % world != 0) {
    throw UserError("--batch_size (" + std::to_string(settings_.batch_size) +
                    ") must be divisible by the world size (" + std::to_string(world) +
                    "): every rank trains on an equal share of each step's samples");
  }
  // Only rank 0 writes (checkpoints, metrics, progress); the others train silently.
  const bool root = reducer_->rank() == 0;
  std::ostream discarded(nullptr);
  std::ostream& progress = root ? log_ : discarded;
  if (root) fs::create_directories(out_dir_);
  TrainingResult result;
  int64_t start_step = 0;
  if (resume) {
    const auto checkpoint = latest_checkpoint(out_dir_);
    if (!checkpoint) {
      throw UserError("--resume: no checkpoint (trainer_state.json) under --out_dir '" +
                      out_dir_.string() + "'");
    }
    start_step = restore(*checkpoint);
    result.resumed_from_step = start_step;
    progress << "resuming from " << checkpoint->string() << " at step " << start_step << "\n";
    // Ranks that read different checkpoints (no shared filesystem) would silently diverge.
    std::vector<double> steps{static_cast<double>(start_step)};
    reducer_->sum_values(steps);
    if (steps[0] != static_cast<double>(start_step) * world) {
      throw UserError("--resume: the ranks found different checkpoints under --out_dir '" +
                      out_dir_.string() + "' (it must be one directory all ranks share)");
    }
  }
  std::optional<MetricsWriter> metrics;
  if (root) metrics.emplace(out_dir_, resume ? std::optional<int64_t>(start_step) : std::nullopt);
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  const double train_size = static_cast<double>(data_.train.size());
  const LrSchedule schedule{settings_.learning_rate, settings_.warmup_steps, total_steps_,
                            settings_.min_lr};

  if (!resume && data_.test.size() > 0 && settings_.eval_iters > 0) {
    result.initial_val_loss = validation_loss();
    progress << "step 0/" << total_steps_ << " | val_loss " << std::fixed << std::setprecision(4)
             << *result.initial_val_loss << std::defaultfloat << "\n";
    StepMetrics m;
    m.val_loss = result.initial_val_loss;
    m.lr = schedule.at(1);
    m.max_rss_mb = peak_rss_mb();
    if (metrics) metrics->write(m);
  }

  const int64_t last_step = settings_.stop_after_step > 0
                                ? std::min(settings_.stop_after_step, total_steps_)
                                : total_steps_;
  for (int64_t step = start_step + 1; step <= last_step; ++step) {
    const auto step_started = std::chrono::steady_clock::now();
    const double loss = train_step(step);
    const double step_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - step_started).count();
    int64_t tokens = 0;
    {
      SampleOrder order(data_.train.size(), settings_.seed);
      for (int64_t i = 0; i < settings_.batch_size; ++i) {
        const int64_t s = order.sample_at((step - 1) * settings_.batch_size + i);
        tokens += max_seq_length_ > 0 ? std::min(data_.train.length(s), max_seq_length_)
                                      : data_.train.length(s);
      }
    }
    StepMetrics m;
    m.step = step;
    m.epoch = static_cast<double>(step * settings_.batch_size) / train_size;
    m.loss = loss;
    m.lr = schedule.at(step);
    m.tokens_per_s = static_cast<double>(tokens) / std::max(step_seconds, 1e-9);
    m.elapsed_s = elapsed();
    const bool evaluate = settings_.eval_interval > 0 && step % settings_.eval_interval == 0 &&
                          data_.test.size() > 0 && settings_.eval_iters > 0;
    if (evaluate) m.val_loss = validation_loss();
    m.max_rss_mb = peak_rss_mb();
    if (settings_.dynamic_loss_scaling) {
      m.loss_scale = scaler_.scale();
      m.skipped_steps = scaler_.skipped_steps();
    }
    if (metrics) metrics->write(m);
    if (step % std::max<int64_t>(settings_.log_interval, 1) == 0 || evaluate || step == last_step) {
      const double per_step = m.elapsed_s / static_cast<double>(step - start_step);
      progress << "step " << step << "/" << total_steps_ << " | loss " << std::fixed
               << std::setprecision(4) << loss;
      if (m.val_loss) progress << " | val_loss " << *m.val_loss;
      progress << std::defaultfloat << std::setprecision(3) << " | lr " << m.lr << " | "
               << static_cast<int64_t>(m.tokens_per_s) << " tok/s | ETA "
               << format_duration(per_step * static_cast<double>(total_steps_ - step));
      if (settings_.dynamic_loss_scaling) {
        progress << " | loss scale " << scaler_.scale() << ", " << scaler_.skipped_steps()
                 << " skipped";
      }
      progress << "\n";
    }
    if (root && settings_.save_interval > 0 && step % settings_.save_interval == 0 &&
        step != total_steps_) {
      save_checkpoint(
          step, "step-" + [&] {
            std::ostringstream s;
            s << std::setw(6) << std::setfill('0') << step;
            return s.str();
          }());
    }
    result.steps_done = step;
    // A stop signal (llm/train/stop_request.hpp): every rank stops after this same step.
    if (step < last_step && (result.stop_signal = agreed_stop_signal(*reducer_)) != 0) break;
  }
  result.steps_done = std::max(result.steps_done, start_step);
  if (metrics)
    metrics->finish();  // OUT/loss.svg with every step, not just up to the last validation

  if (result.stop_signal != 0 || last_step < total_steps_) {
    const int64_t stop_step = result.stop_signal != 0 ? result.steps_done : last_step;
    std::ostringstream name;
    name << "step-" << std::setw(6) << std::setfill('0') << stop_step;
    if (root && !fs::exists(out_dir_ / name.str())) save_checkpoint(stop_step, name.str());
    reducer_->barrier("the barrier after the last checkpoint");
    progress << "stopped at step " << stop_step << " of " << total_steps_ << " ("
             << (result.stop_signal != 0 ? stop_signal_name(result.stop_signal)
                                         : "--stop_after_step")
             << "); checkpoint " << (out_dir_ / name.str()).string()
             << "; continue with --resume\n";
    return result;
  }
  if (data_.test.size() > 0 && settings_.eval_iters > 0) result.final_val_loss = validation_loss();
  if (root) save_checkpoint(total_steps_, "final");
  reducer_->barrier("the barrier after the final checkpoint");
  result.final_checkpoint = out_dir_ / "final";
  if (result.final_val_loss) {
    progress << "final val_loss " << std::fixed << std::setprecision(4) << *result.final_val_loss
             << std::defaultfloat << "; adapter in " << result.final_checkpoint.string() << "\n";
  }
  return result;
}

}  // namespace llm
