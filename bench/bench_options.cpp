#include "bench_options.hpp"

#include <cstdlib>
#include <iostream>

#include <boost/program_options.hpp>

#include "llm/error.hpp"

namespace llmhost_bench {
namespace po = boost::program_options;

namespace {

void require_positive(const po::variables_map& vm, const char* flag, int64_t value) {
  if (vm.count(flag) && value <= 0) {
    throw llm::UserError(std::string("--") + flag + " must be > 0, got " + std::to_string(value));
  }
}

}  // namespace

BenchOptions parse_bench_options(int argc, char** argv) {
  BenchOptions o;
  po::options_description d("llmhost_bench: PROTOCOL.md workloads on random-init real shapes");
  // clang-format off
  d.add_options()
    ("help", "this text")
    ("shape", po::value(&o.shapes)->multitoken(),
     "shape names (pythia-160m, pythia-410m, pythia-1.4b, llama-2-7b) or config.json paths; "
     "default: all four")
    ("workload", po::value(&o.workloads)->multitoken(),
     "lora-train (on CUDA: packed, each micro-batch a replayed CUDA graph, as --task finetune "
     "--packing runs it), score, generate, lora-train-eager (the [8, 512] batch through autograd "
     "every step), lora-train-checkpointed (activation checkpointing on), lora-train-varlen "
     "(variable-length samples packed without padding; on CUDA replayed as lora-train is), "
     "lora-train-varlen-eager (the same through autograd every step); default: the first three")
    ("device", po::value(&o.device), "cuda (default) or cpu")
    ("precision", po::value(&o.precision), "bf16 (default), fp32, fp16")
    ("plugin_dir", po::value(&o.plugin_dirs)->multitoken(), "extra plugin directories")
    ("json_out", po::value(&o.json_out), "append the JSON lines to this file too")
    ("profile", po::value(&o.profile_dir),
     "write a Kineto trace of a few extra steps per workload into this directory")
    ("no_correctness", po::bool_switch(), "skip the tiny-fixture logit checks")
    ("seed", po::value(&o.seed), "weights and data seed (0)")
    ("peak_tflops", po::value(&o.peak_tflops), "device peak for MFU (790, H100 bf16 measured)")
    ("train_batch", po::value(&o.train_batch), "lora-train micro-batch (8)")
    ("train_seq", po::value(&o.train_seq), "lora-train sequence length (512)")
    ("train_warmup", po::value(&o.train_warmup), "lora-train warm-up steps (5)")
    ("train_steps", po::value(&o.train_steps), "lora-train timed steps (20)")
    ("score_batch", po::value(&o.score_batch), "score batch (16)")
    ("score_seq", po::value(&o.score_seq), "score sequence length (512)")
    ("score_steps", po::value(&o.score_steps), "score timed forwards (10)")
    ("new_tokens", po::value(&o.new_tokens), "generate: new tokens (128)")
    ("generate_runs", po::value(&o.generate_runs), "generate: timed runs (3)")
    ("token_granule", po::value(&o.token_granule),
     "lora-train-varlen: fill each packed batch to a multiple of N positions (0: the trainer's "
     "default, a sixty-fourth of the budget)")
    ("greedy_sync_every", po::value(&o.greedy_sync_every),
     "generate: read greedy tokens back every N steps (0: the library's default, 16 on CUDA)");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, d), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw llm::UserError(std::string("llmhost_bench: ") + e.what());
  }
  if (vm.count("help")) {
    std::cout << d << "\n";
    std::exit(0);
  }
  o.check_correctness = !vm["no_correctness"].as<bool>();
  if (o.shapes.empty()) o.shapes = {"pythia-160m", "pythia-410m", "pythia-1.4b", "llama-2-7b"};
  if (o.workloads.empty()) o.workloads = {"score", "generate", "lora-train"};
  for (const auto& w : o.workloads) {
    if (w != "lora-train" && w != "score" && w != "generate" && w != "lora-train-checkpointed" &&
        w != "lora-train-eager" && w != "lora-train-nf4" && w != "lora-train-varlen" &&
        w != "lora-train-varlen-eager") {
      throw llm::UserError("--workload: '" + w +
                           "' is not one of lora-train, score, generate, "
                           "lora-train-checkpointed, lora-train-eager, lora-train-nf4, "
                           "lora-train-varlen, lora-train-varlen-eager");
    }
  }
  for (const auto& [flag, value] : {std::pair{"train_batch", o.train_batch},
                                    {"train_seq", o.train_seq},
                                    {"train_steps", o.train_steps},
                                    {"score_batch", o.score_batch},
                                    {"score_seq", o.score_seq},
                                    {"score_steps", o.score_steps},
                                    {"new_tokens", o.new_tokens},
                                    {"generate_runs", o.generate_runs}}) {
    require_positive(vm, flag, value);
  }
  if (o.train_warmup < 0) throw llm::UserError("--train_warmup must be >= 0");
  if (o.greedy_sync_every < 0) throw llm::UserError("--greedy_sync_every must be >= 0");
  if (o.token_granule < 0) throw llm::UserError("--token_granule must be >= 0");
  if (o.train_seq < 2) throw llm::UserError("--train_seq must be >= 2 (next-token loss)");
  if (!(o.peak_tflops > 0)) throw llm::UserError("--peak_tflops must be > 0");
  return o;
}

}  // namespace llmhost_bench
