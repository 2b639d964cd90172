#pragma once
// Command line of llmhost_bench. Defaults are PROTOCOL.md's workloads exactly; the overrides exist
// so the program can be tried end to end on a CPU with a tiny shape.
#include <cstdint>
#include <string>
#include <vector>

namespace llmhost_bench {

struct BenchOptions {
  std::vector<std::string> shapes;     // names under tests/data/shapes or paths to a config.json
  std::vector<std::string> workloads;  // lora-train, score, generate
  std::string device = "cuda";
  std::string precision = "bf16";
  std::vector<std::string> plugin_dirs;
  std::string json_out;     // also append the JSON lines here
  std::string profile_dir;  // a Kineto trace per workload here (LibTorch 2.x)
  bool check_correctness = true;
  uint64_t seed = 0;
  double peak_tflops = 790;  // bf16 dense, measured on an H100 (PROTOCOL.md)

  int64_t train_batch = 8;
  int64_t train_seq = 512;
  int64_t train_warmup = 5;
  int64_t train_steps = 20;
  int64_t score_batch = 16;
  int64_t score_seq = 512;
  int64_t score_warmup = 3;
  int64_t score_steps = 10;
  int64_t prompt_tokens = 16;
  int64_t new_tokens = 128;
  int64_t generate_warmup = 1;
  int64_t generate_runs = 3;
  int64_t greedy_sync_every = 0;
  int64_t token_granule = 0;  // lora-train-varlen's PackedMicroStep; 0: its default
};

// Parses argv; prints --help and exits 0 on request; UserError naming the flag on bad input.
BenchOptions parse_bench_options(int argc, char** argv);

}  // namespace llmhost_bench
