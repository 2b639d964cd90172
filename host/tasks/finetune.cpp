// --task finetune --plugin lora: trains an adapter on a prepared dataset (llm/train/trainer.hpp).
#include <chrono>
#include <memory>
#include <optional>
#include <ostream>

#include "llm/device.hpp"
#include "llm/dist/data_parallel.hpp"
#include "llm/dist/launch.hpp"
#include "llm/dist/process_group.hpp"
#include "llm/error.hpp"
#include "llm/model_config.hpp"
#include "llm/train/prepared_data.hpp"
#include "llm/train/stop_request.hpp"
#include "llm/train/trainer.hpp"
#include "output_path.hpp"
#include "slurm_requeue.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::finetune_task {
namespace {

namespace fs = std::filesystem;

void declare(po::options_description& o) {
  add_checkpoint_option(o);
  add_device_options(o);
  add_quantize_option(o);
  auto flag = [](bool fallback) {
    return po::value<bool>()->default_value(fallback)->implicit_value(true);
  };
  o.add_options()                                                                           //
      ("data_dir", po::value<std::string>()->required(), "output of --task prepare")        //
      ("out_dir", po::value<std::string>()->required(), "checkpoints and metrics go here")  //
      ("resume", po::value<std::string>()->default_value("auto")->implicit_value("true"),
       "continue from the newest checkpoint in --out_dir: true, false, or auto (resume when SLURM "
       "requeued the job and a checkpoint exists)")  //
      ("slurm_requeue", flag(true),
       "under SLURM, requeue the job after stopping on SIGUSR1 (the time-limit warning)")         //
      ("learning_rate", po::value<double>()->default_value(3e-4), "peak learning rate")           //
      ("min_lr", po::value<double>()->default_value(0.0), "learning rate at the end of the run")  //
      ("batch_size", po::value<int64_t>()->default_value(128),
       "effective batch (samples per step)")                                                    //
      ("micro_batch_size", po::value<int64_t>()->default_value(4), "samples per forward pass")  //
      ("epochs", po::value<double>()->default_value(1.0),
       "passes over the train split (unless --max_steps)")  //
      ("max_steps", po::value<int64_t>()->default_value(0),
       "optimizer steps (0: from --epochs)")  //
      ("stop_after_step", po::value<int64_t>()->default_value(0),
       "checkpoint and stop after this step, as if interrupted (0: run to the end)")              //
      ("weight_decay", po::value<double>()->default_value(0.01), "AdamW decoupled weight decay")  //
      ("warmup_steps", po::value<int64_t>()->default_value(100), "linear warm-up steps")          //
      ("grad_clip", po::value<double>()->default_value(1.0), "max gradient norm (0: off)")        //
      ("eval_interval", po::value<int64_t>()->default_value(100),
       "validate every N steps (0: never)")                                                 //
      ("eval_iters", po::value<int64_t>()->default_value(100), "validation micro-batches")  //
      ("save_interval", po::value<int64_t>()->default_value(100),
       "checkpoint every N steps (0: final only)")                                             //
      ("log_interval", po::value<int64_t>()->default_value(1), "progress line every N steps")  //
      ("max_seq_length", po::value<int64_t>()->default_value(0),
       "cut samples to N tokens (0: as prepared)")  //
      ("seed", po::value<int64_t>()->default_value(1337),
       "seed of LoRA init, data order, dropout")  //
      ("activation_checkpointing", flag(false),
       "recompute each transformer block in backward (less memory, ~1/3 more compute)")  //
      ("packing", flag(false),
       "lay samples end to end, micro_batch_size x max_seq_length tokens per forward, no "
       "padding (each sample attends only to itself)")  //
      ("cuda_graphs", flag(true),
       "with --packing on a CUDA device: replay each micro-batch as a recorded CUDA graph (rows "
       "filled to micro_batch_size x max_seq_length tokens)");
  // Data parallel: these override SLURM_* / torchrun's RANK, WORLD_SIZE, ... (llm/dist/launch.hpp).
  o.add_options()                                                                                //
      ("rank", po::value<int>(), "this process's rank (default: from SLURM or torchrun)")        //
      ("world_size", po::value<int>(), "number of processes (default: from SLURM or torchrun)")  //
      ("local_rank", po::value<int>(), "rank on this node; drives cuda:LOCAL_RANK")              //
      ("master_addr", po::value<std::string>(), "rendezvous host (rank 0's address)")            //
      ("master_port", po::value<int>(), "rendezvous TCP port")                                   //
      ("dist_timeout", po::value<double>()->default_value(600),
       "seconds to wait for the rendezvous and for any collective before failing");
}

llm::LaunchOverrides launch_overrides(const TaskContext& ctx) {
  llm::LaunchOverrides o;
  if (ctx.has("rank")) o.rank = ctx.get<int>("rank");
  if (ctx.has("world_size")) o.world_size = ctx.get<int>("world_size");
  if (ctx.has("local_rank")) o.local_rank = ctx.get<int>("local_rank");
  if (ctx.has("master_addr")) o.master_addr = ctx.get<std::string>("master_addr");
  if (ctx.has("master_port")) o.master_port = ctx.get<int>("master_port");
  return o;
}

// The adapter's own options (lora_r, ... for LoRA): all of every adapter for --help without
// --plugin, each under its own title; the named adapter's for a run.
void declare_adapter_options(po::options_description& options, const PluginRegistry& registry,
                             const std::string& plugin, bool help) {
  if (!plugin.empty()) {
    po::options_description own("Options of adapter plugin '" + plugin + "'");
    add_adapter_options(own, *registry.adapter(plugin));  // UserError listing the adapters
    options.add(own);
    return;
  }
  if (!help) return;
  for (const auto& adapter : registry.adapters()) {
    po::options_description own("Options of adapter plugin '" + adapter->name() + "' (--plugin " +
                                adapter->name() + ")");
    add_adapter_options(own, *adapter);
    options.add(own);
  }
}

llm::TrainingSettings training_settings(const TaskContext& ctx) {
  llm::TrainingSettings s;
  s.learning_rate = ctx.get<double>("learning_rate");
  s.min_lr = ctx.get<double>("min_lr");
  s.batch_size = ctx.get<int64_t>("batch_size");
  s.micro_batch_size = ctx.get<int64_t>("micro_batch_size");
  s.epochs = ctx.get<double>("epochs");
  s.max_steps = ctx.get<int64_t>("max_steps");
  s.stop_after_step = ctx.get<int64_t>("stop_after_step");
  s.weight_decay = ctx.get<double>("weight_decay");
  s.warmup_steps = ctx.get<int64_t>("warmup_steps");
  s.grad_clip = ctx.get<double>("grad_clip");
  s.eval_interval = ctx.get<int64_t>("eval_interval");
  s.eval_iters = ctx.get<int64_t>("eval_iters");
  s.save_interval = ctx.get<int64_t>("save_interval");
  s.log_interval = ctx.get<int64_t>("log_interval");
  s.max_seq_length = ctx.get<int64_t>("max_seq_length");
  s.seed = static_cast<uint64_t>(ctx.get<int64_t>("seed"));
  s.packing = ctx.get<bool>("packing");
  s.cuda_graphs = ctx.get<bool>("cuda_graphs");
  return s;
}

// --resume true|false|auto. auto: a job SLURM started again (requeued after preemption or after
// our SIGUSR1 stop) continues from the newest checkpoint when there is one; otherwise starts fresh.
bool decide_resume(const TaskContext& ctx, const fs::path& out_dir, llm::GradientReducer& reducer,
                   std::ostream& log) {
  const auto mode = ctx.get<std::string>("resume");
  if (mode == "true" || mode == "1" || mode == "yes") return true;
  if (mode == "false" || mode == "0" || mode == "no") return false;
  if (mode != "auto") {
    throw llm::UserError("--resume must be true, false or auto, got '" + mode.substr(0, 40) + "'");
  }
  if (!slurm_job_restarted(llm::process_environment())) return false;
  const auto checkpoint = llm::Trainer::latest_checkpoint(out_dir);
  // All ranks must take the same path (each reads --out_dir on its own node).
  std::vector<double> found{checkpoint ? 1.0 : 0.0};
  reducer.sum_values(found);
  if (found[0] != 0 && found[0] != reducer.world_size()) {
    throw llm::UserError("--resume auto: only some ranks see a checkpoint under --out_dir '" +
                         out_dir.string() + "' (it must be one directory all ranks share)");
  }
  if (checkpoint && reducer.rank() == 0) {
    log << "finetune: SLURM restarted job " << slurm_job_id(llm::process_environment()).value_or("")
        << " (SLURM_RESTART_COUNT="
        << llm::process_environment()("SLURM_RESTART_COUNT").value_or("")
        << "): resuming from the newest checkpoint (--resume auto)\n";
  }
  return checkpoint.has_value();
}

int run(TaskContext& ctx) {
  // From here on SIGUSR1/SIGTERM/SIGINT stop the run at the next step boundary, with a checkpoint.
  const llm::StopSignalHandlers stop_handlers;
  const auto adapter = ctx.registry().adapter(ctx.plugin(/*required=*/true));
  const fs::path checkpoint_dir = ctx.get<std::string>("checkpoint_dir");
  const fs::path out_dir = ctx.get<std::string>("out_dir");
  // Cheap checks first: a bad data_dir should not cost a model load.
  const auto config = llm::read_model_config(checkpoint_dir);
  const auto data = llm::read_prepared_dataset(ctx.get<std::string>("data_dir"), config.vocab_size);
  auto settings = training_settings(ctx);
  const auto quantize = task_quantize(ctx);
  const FlagPath output{"out_dir", out_dir};
  refuse_aliasing(
      output, {{"checkpoint_dir", checkpoint_dir}, {"data_dir", ctx.get<std::string>("data_dir")}});

  auto device = llm::parse_device(ctx.get<std::string>("device"));
  const auto launch = llm::discover_launch(llm::process_environment(), launch_overrides(ctx));
  if (launch.rank == 0) check_output_directory(output);
  std::unique_ptr<llm::ProcessGroup> group;
  std::unique_ptr<llm::DataParallelReducer> reducer;
  if (launch.distributed) {
    if (device.is_cuda() && !device.has_index()) {
      device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(launch.local_rank));
    }
    // Cheap check before the rendezvous (the trainer checks again for callers of the SDK).
    if (settings.batch_size % launch.world_size != 0) {
      throw llm::UserError("--batch_size (" + std::to_string(settings.batch_size) +
                           ") must be divisible by the world size (" +
                           std::to_string(launch.world_size) +
                           "): every rank trains on an equal share of each step's samples");
    }
    const double timeout_s = ctx.get<double>("dist_timeout");
    if (!(timeout_s > 0) || timeout_s > 86400) {
      throw llm::UserError("--dist_timeout must be in (0, 86400] seconds");
    }
    group = llm::ProcessGroup::connect(
        launch, device, std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    reducer = std::make_unique<llm::DataParallelReducer>(*group);
    if (launch.rank == 0) {
      ctx.err() << "finetune: data parallel, " << launch.world_size << " rank(s) over "
                << group->backend() << " (" << launch.source << "), rendezvous "
                << launch.master_addr << ":" << launch.master_port << "\n";
    }
  }
  const bool root = launch.rank == 0;
  const auto dtype = task_precision(ctx, device);
  // fp16 gradients underflow without it; LoRA weights and AdamW stay fp32 in every precision.
  settings.dynamic_loss_scaling = dtype == torch::kHalf;
  auto loaded =
      load_model(ctx.registry(), checkpoint_dir, device, dtype, /*random_init=*/false, 0, quantize);
  auto& model = *loaded.model;
  if (root && loaded.quantized.layers > 0) {
    ctx.err() << "finetune: --quantize " << llm::quantize_name(quantize) << ": "
              << loaded.quantized.layers << " frozen Linear weights in "
              << loaded.quantized.compressed_bytes / (1024 * 1024) << " MiB instead of "
              << loaded.quantized.full_bytes / (1024 * 1024) << " MiB ("
              << llm::precision_name(dtype) << ")\n";
  }
  model.set_activation_checkpointing(ctx.get<bool>("activation_checkpointing"));

  torch::manual_seed(settings.seed);  // LoRA A initialisation
  const llm::Json adapter_options = adapter_settings(ctx, *adapter);
  adapter->attach(model, adapter_options);
  std::vector<std::pair<std::string, torch::Tensor>> trainable;
  int64_t trainable_count = 0, frozen_count = 0;
  for (const auto& item : model.named_parameters()) {
    if (item.value().requires_grad()) {
      trainable.emplace_back(item.key(), item.value());
      trainable_count += item.value().numel();
    } else {
      frozen_count += item.value().numel();
    }
  }

  llm::Trainer trainer(
      model, trainable, data, settings, out_dir,
      [&](const fs::path& dir) { adapter->save(model, dir); }, ctx.err());
  trainer.set_run_description(llm::Json{{"adapter", adapter->name()},
                                        {adapter->name(), adapter_options},
                                        {"quantize", llm::quantize_name(quantize)},
                                        {"precision", llm::precision_name(dtype)}});
  // Rank 0 writes the run's files: it holds --out_dir until the process ends.
  std::optional<OutputDirectoryLock> held_output;
  if (launch.rank == 0) held_output.emplace(output, ctx.err());
  // After every check: a refused run prints its one error line and nothing else.
  if (root)
    ctx.err() << "finetune: " << trainable_count << " trainable (fp32) / " << frozen_count
              << " frozen (" << llm::precision_name(dtype) << ") parameters on " << device.str()
              << "; " << data.train.size() << " train / " << data.test.size() << " test samples\n";
  if (reducer) trainer.set_gradient_reducer(reducer.get());
  llm::GradientReducer single_process;
  const bool resume = decide_resume(ctx, out_dir, reducer ? *reducer : single_process, ctx.err());
  const auto result = trainer.run(resume);

  auto optional_json = [](const std::optional<double>& v) {
    return v ? llm::Json(*v) : llm::Json(nullptr);
  };
  const llm::Json stopped_by = result.stop_signal != 0
                                   ? llm::Json(llm::stop_signal_name(result.stop_signal))
                                   : llm::Json(nullptr);
  llm::Json summary{{"steps", result.steps_done},
                    {"total_steps", trainer.total_steps()},
                    {"resumed_from_step", result.resumed_from_step},
                    {"initial_val_loss", optional_json(result.initial_val_loss)},
                    {"final_val_loss", optional_json(result.final_val_loss)},
                    {"adapter_dir", result.final_checkpoint.string()},
                    {"metrics", (out_dir / "metrics.csv").string()},
                    {"precision", llm::precision_name(dtype)},
                    {"quantize", llm::quantize_name(quantize)},
                    {"stopped_by", stopped_by}};
  if (settings.dynamic_loss_scaling) {
    summary["loss_scale"] = trainer.loss_scaler().scale();
    summary["skipped_steps"] = trainer.loss_scaler().skipped_steps();
  }
  const int exit_code = result.stop_signal != 0 ? llm::kExitStopped : llm::kExitOk;
  if (!root) return exit_code;  // rank 0 reports for the run
  const auto job = slurm_job_id(llm::process_environment());
  if (result.stop_signal == SIGUSR1 && job && ctx.get<bool>("slurm_requeue")) {
    const auto failure = requeue_slurm_job(*job);
    ctx.err() << "finetune: "
              << (failure.empty()
                      ? "requeued SLURM job " + *job + "; it resumes from the checkpoint"
                      : "could not requeue SLURM job " + *job + ": " + failure)
              << "\n";
  }
  if (ctx.json_output()) {
    ctx.out() << summary.dump() << "\n";
  } else if (!result.final_checkpoint.empty()) {
    ctx.out() << "adapter: " << result.final_checkpoint.string() << "\n";
  }
  return exit_code;
}

const bool registered = register_task({"finetune",
                                       "train an adapter (--plugin lora) on a prepared dataset",
                                       declare,
                                       run,
                                       {"text", "json"},
                                       declare_adapter_options});

}  // namespace
}  // namespace llmhost::finetune_task
