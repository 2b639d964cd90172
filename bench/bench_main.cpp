// llmhost_bench: PROTOCOL.md's workloads (lora-train, score, generate) on random-initialised real
// shapes, one JSON line per workload and a closing table; plus the tiny fixtures' logits on the
// same device and precision against the fp32 goldens. Exit 0 when every check passed, 1 when a
// check failed, 2 on bad input.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "bench_options.hpp"
#include "correctness_check.hpp"
#include "cuda_memory.hpp"
#include "llm/device.hpp"
#include "llm/error.hpp"
#include "llm/json_file.hpp"
#include "llm/train/packed_micro_step.hpp"
#include "plugin_registry.hpp"
#include "quantized_model.hpp"
#include "workloads.hpp"

namespace fs = std::filesystem;

namespace llmhost_bench {
namespace {

fs::path shape_config(const std::string& shape) {
  const fs::path named = fs::path(LLMHOST_TEST_DATA_DIR) / "shapes" / (shape + ".json");
  if (fs::exists(named)) return named;
  if (fs::is_regular_file(shape)) return shape;
  throw llm::UserError("--shape '" + shape + "': neither a name under tests/data/shapes nor a " +
                       "config.json file");
}

std::string shape_label(const std::string& shape) {
  // "pythia-1.4b" has an "extension" (.4b): a named shape is its own label.
  if (fs::exists(fs::path(LLMHOST_TEST_DATA_DIR) / "shapes" / (shape + ".json"))) return shape;
  const fs::path path(shape);
  return path.has_extension()
             ? path.parent_path().filename().string() + "/" + path.filename().string()
             : shape;
}

// lora-train-varlen's sample lengths (bench/make_varlen_lengths.py), the reference's too.
std::vector<int64_t> varlen_lengths() {
  const auto path = fs::path(LLMHOST_BENCH_DIR) / "varlen_lengths.json";
  return llm::read_json_file(path).at("lengths").get<std::vector<int64_t>>();
}

// A checkpoint directory holding only config.json: load_model random-initialises from it.
class ShapeDir {
 public:
  explicit ShapeDir(const std::string& shape)
      : path_(fs::temp_directory_path() /
              ("llmhost_bench_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    fs::create_directories(path_);
    fs::copy_file(shape_config(shape), path_ / "config.json", fs::copy_options::overwrite_existing);
  }
  ~ShapeDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ShapeDir(const ShapeDir&) = delete;
  ShapeDir& operator=(const ShapeDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

class Reporter {
 public:
  explicit Reporter(const std::string& json_out) {
    if (!json_out.empty()) {
      file_.open(json_out, std::ios::app);
      if (!file_) throw llm::UserError("--json_out '" + json_out + "': cannot open for append");
    }
  }
  void add(WorkloadResult result) {
    const auto line = to_json(result).dump();
    std::cout << line << std::endl;
    if (file_.is_open()) file_ << line << std::endl;
    results_.push_back(std::move(result));
  }
  const std::vector<WorkloadResult>& results() const { return results_; }

 private:
  std::ofstream file_;
  std::vector<WorkloadResult> results_;
};

// Runs one workload; a failure (out of memory, a kernel error) becomes a failed row, so the
// remaining workloads and shapes still run.
template <typename Run>
void run_guarded(Reporter& reporter, const std::string& shape, const std::string& workload,
                 Run run) {
  try {
    reporter.add(run());
  } catch (const llm::UserError&) {
    throw;
  } catch (const std::exception& e) {
    WorkloadResult failed;
    failed.shape = shape;
    failed.workload = workload;
    failed.passed = false;
    failed.note = first_line(e.what());
    reporter.add(failed);
  }
}

bool wants(const BenchOptions& o, const std::string& workload) {
  return std::find(o.workloads.begin(), o.workloads.end(), workload) != o.workloads.end();
}

int run(const BenchOptions& o) {
  const auto device = llm::parse_device(o.device);
  const auto dtype = llm::parse_precision(o.precision, device);
  llmhost::PluginRegistry registry;
  std::vector<fs::path> dirs(o.plugin_dirs.begin(), o.plugin_dirs.end());
  registry.load_directories(llmhost::PluginRegistry::default_search_path(dirs));
  const auto lora = registry.adapter("lora");
  Reporter reporter(o.json_out);

  if (o.check_correctness) {
    for (const std::string fixture : {"tiny-pythia", "tiny-llama"}) {
      run_guarded(reporter, fixture, "correctness",
                  [&] { return check_fixture_logits(registry, fixture, device, dtype); });
    }
  }
  for (const auto& shape : o.shapes) {
    const auto label = shape_label(shape);
    const bool plain_workloads =
        std::any_of(o.workloads.begin(), o.workloads.end(),
                    [](const std::string& w) { return w != "lora-train-nf4"; });
    if (plain_workloads) {
      ShapeDir dir(shape);
      auto loaded = llmhost::load_model(registry, dir.path(), device, dtype, true, o.seed);
      Subject subject{label, *loaded.model, flop_model(*loaded.model)};
      for (const std::string workload :
           {"score", "generate", "lora-train", "lora-train-eager", "lora-train-checkpointed",
            "lora-train-varlen", "lora-train-varlen-eager"}) {
        if (!wants(o, workload)) continue;
        run_guarded(reporter, label, workload, [&] {
          if (workload == "score") return run_score(subject, o);
          if (workload == "generate") return run_generate(subject, o);
          if (workload == "lora-train" && llm::PackedMicroStep::can_replay(device)) {
            return run_lora_train_replayed(subject, *lora, o);
          }
          if (workload == "lora-train-varlen" || workload == "lora-train-varlen-eager") {
            const bool replayed =
                workload == "lora-train-varlen" && llm::PackedMicroStep::can_replay(device);
            return run_lora_train_varlen(subject, *lora, o, varlen_lengths(), replayed);
          }
          if (workload == "lora-train-eager") {
            return run_lora_train(subject, *lora, o, false, "lora-train-eager");
          }
          return run_lora_train(subject, *lora, o, workload == "lora-train-checkpointed");
        });
      }
    }
    release_cached_memory(device);
    if (wants(o, "lora-train-nf4")) {
      // QLoRA: NF4 base weights, fp32 LoRA over them, activation checkpointing.
      ShapeDir dir(shape);
      run_guarded(reporter, label, "lora-train-nf4", [&] {
        auto loaded = load_nf4_random(registry, dir.path(), device, dtype, o.seed);
        Subject subject{label, *loaded.model, flop_model(*loaded.model)};
        auto r = run_lora_train(subject, *lora, o, /*checkpointed=*/true, "lora-train-nf4");
        r.extra["quantize"] = "nf4";
        r.extra["nf4_weight_bytes"] = loaded.quantized.compressed_bytes;
        r.extra["full_weight_bytes"] = loaded.quantized.full_bytes;
        return r;
      });
      release_cached_memory(device);
    }
  }
  std::cout << "\n";
  print_table(std::cout, reporter.results());
  for (const auto& r : reporter.results()) {
    if (!r.passed) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace llmhost_bench

int main(int argc, char** argv) {
  try {
    return llmhost_bench::run(llmhost_bench::parse_bench_options(argc, argv));
  } catch (const llm::UserError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << llmhost_bench::first_line(e.what()) << "\n";
    return 1;
  }
}
