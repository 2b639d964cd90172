// The bad-run corpus: command lines and file-system states a new user hits (issue 16's classes),
// each through the real binary. Every case must exit 2 with one line naming the flag or file and
// the reason, leave every file under its work directory as it was (inputs are never destroyed)
// and leave no temporary behind. bad_input_test.cpp does the same for hostile files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "llm/atomic_file.hpp"
#include "llm/json_file.hpp"
#include "llm/safetensors.hpp"
#include "support/bad_run_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;
using llm::test::run_llmhost;
using namespace llm::test::bad_run;

struct BadRunCase {
  std::string name;
  // Builds the inputs under `work` and returns the arguments of the run.
  std::function<std::vector<std::string>(const fs::path& work)> setup;
  std::vector<std::string> expected;  // parts of the error line: the flag or file, the reason
};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

fs::path regular_file(const fs::path& path) {
  write_text(path, "not a directory\n");
  return path;
}

// The finetune run every "resume" case starts from: stopped after step 1 of 2.
const fs::path& stopped_run() {
  static llm::test::TempDir dir;
  static const fs::path run = [] {
    const auto out = dir.path() / "run";
    const auto r = run_llmhost(finetune_args(out, {"--max_steps", "2", "--stop_after_step", "1"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }();
  return run;
}

fs::path copy_stopped_run(const fs::path& work) {
  fs::copy(stopped_run(), work / "run", fs::copy_options::recursive);
  fs::remove(work / "run" / ".llmhost.lock");
  return work / "run";
}

// A copy of the golden PEFT adapter of tiny-pythia, with `edit` applied to its config.
fs::path copy_adapter(const fs::path& dir, const std::function<void(llm::Json&)>& edit = {}) {
  fs::copy(data_dir() / "golden/tiny-pythia-lora-adapter", dir, fs::copy_options::recursive);
  if (edit) {
    llm::Json config = llm::read_json_file(dir / "adapter_config.json");
    edit(config);
    write_text(dir / "adapter_config.json", config.dump(2));
  }
  return dir;
}

// Rewrites a safetensors file with the first floating tensor (or the one named) set to NaN.
void poison_with_nan(const fs::path& file, const std::string& name_part = "") {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  bool poisoned = false;
  {
    const llm::SafetensorsFile source(file);
    for (const auto& info : source.tensors()) {
      auto t = source.tensor(info.name).clone();
      if (!poisoned && t.is_floating_point() && info.name.find(name_part) != std::string::npos) {
        t.fill_(std::numeric_limits<float>::quiet_NaN());
        poisoned = true;
      }
      tensors.emplace_back(info.name, t);
    }
  }
  ASSERT_TRUE(poisoned) << file;
  llm::write_safetensors(file, tensors);
}

std::vector<std::string> merge_args(const fs::path& checkpoint, const fs::path& lora,
                                    const fs::path& out) {
  return {"--task",      "merge",       "--checkpoint_dir", checkpoint.string(),
          "--lora_path", lora.string(), "--out_dir",        out.string()};
}

std::vector<std::string> evaluate_args(const fs::path& checkpoint,
                                       const std::string& tasks = "arithmetic_1dc") {
  return {"--task",       "evaluate", "--checkpoint_dir", checkpoint.string(),
          "--eval_tasks", tasks,      "--data_dir",       (data_dir() / "eval-data").string(),
          "--limit",      "4",        "--max_length",     "64"};
}

std::vector<std::string> prepare_args(const fs::path& checkpoint, const fs::path& destination) {
  return {"--task",
          "prepare",
          "--plugin",
          "dolly",
          "--data_file",
          (data_dir() / "datasets/dolly-sample.jsonl").string(),
          "--checkpoint_dir",
          checkpoint.string(),
          "--destination_dir",
          destination.string()};
}

fs::path tiny_pythia() { return data_dir() / "tiny-pythia"; }

std::vector<BadRunCase> corpus() {
  std::vector<BadRunCase> c;
  // 1. File-system errors on paths the user gave: flag, path and the OS's reason.
  c.push_back({"finetune_out_dir_below_a_regular_file",
               [](const fs::path& w) { return finetune_args(regular_file(w / "file") / "run"); },
               {"--out_dir '", "file' is not a directory"}});
  c.push_back({"finetune_out_dir_is_a_regular_file",
               [](const fs::path& w) { return finetune_args(regular_file(w / "file")); },
               {"--out_dir '", "is not a directory"}});
  c.push_back({"finetune_out_dir_empty",
               [](const fs::path&) { return finetune_args(""); },
               {"--out_dir is empty"}});
  c.push_back({"prepare_destination_below_a_regular_file",
               [](const fs::path& w) {
                 return prepare_args(tiny_pythia(), regular_file(w / "file") / "data");
               },
               {"--destination_dir '", "is not a directory"}});
  c.push_back({"merge_out_dir_below_a_regular_file",
               [](const fs::path& w) {
                 return merge_args(tiny_pythia(), data_dir() / "golden/tiny-pythia-lora-adapter",
                                   regular_file(w / "file") / "merged");
               },
               {"--out_dir '", "file' is not a directory"}});
  c.push_back({"merge_out_dir_empty",
               [](const fs::path&) {
                 return merge_args(tiny_pythia(), data_dir() / "golden/tiny-pythia-lora-adapter",
                                   "");
               },
               {"--out_dir is empty"}});
  c.push_back({"evaluate_save_filepath_below_a_regular_file",
               [](const fs::path& w) {
                 return with(evaluate_args(tiny_pythia()),
                             {"--save_filepath", (regular_file(w / "file") / "r.json").string()});
               },
               {"--save_filepath '", "Not a directory"}});
  c.push_back({"evaluate_save_filepath_is_a_directory",
               [](const fs::path& w) {
                 return with(evaluate_args(tiny_pythia()), {"--save_filepath", w.string()});
               },
               {"--save_filepath '", "is a directory"}});
  c.push_back({"evaluate_save_filepath_empty",
               [](const fs::path&) {
                 return with(evaluate_args(tiny_pythia()), {"--save_filepath", ""});
               },
               {"--save_filepath is empty"}});
  c.push_back(
      {"plugin_dir_symlink_loop",
       [](const fs::path& w) {
         fs::create_symlink(w / "loop", w / "loop");
         return std::vector<std::string>{"--task", "list", "--plugin_dir", (w / "loop").string()};
       },
       {"--plugin_dir '", "Too many levels of symbolic links"}});
  // 3. Outputs that alias inputs: refused before anything is written.
  c.push_back({"merge_out_dir_is_lora_path",
               [](const fs::path& w) {
                 const auto lora = copy_adapter(w / "adapter");
                 return merge_args(tiny_pythia(), lora, lora);
               },
               {"--out_dir '", "is also --lora_path"}});
  c.push_back({"merge_out_dir_is_lora_path_through_a_symlink",
               [](const fs::path& w) {
                 const auto lora = copy_adapter(w / "adapter");
                 fs::create_directory_symlink(lora, w / "link");
                 return merge_args(tiny_pythia(), lora, w / "link" / "");
               },
               {"--out_dir '", "is also --lora_path"}});
  c.push_back({"merge_out_dir_holds_lora_path",
               [](const fs::path& w) {
                 fs::create_directories(w / "out");
                 const auto lora = copy_adapter(w / "out" / "adapter");
                 return merge_args(tiny_pythia(), lora, w / "out");
               },
               {"--out_dir '", "holds --lora_path"}});
  c.push_back({"merge_out_dir_inside_checkpoint_dir",
               [](const fs::path& w) {
                 fs::copy(tiny_pythia(), w / "base", fs::copy_options::recursive);
                 return merge_args(w / "base", data_dir() / "golden/tiny-pythia-lora-adapter",
                                   w / "base" / "merged");
               },
               {"--out_dir '", "lies inside --checkpoint_dir"}});
  c.push_back({"finetune_out_dir_is_data_dir",
               [](const fs::path& w) {
                 fs::copy(prepared_data(), w / "data", fs::copy_options::recursive);
                 auto args = finetune_args(w / "data");
                 *std::find(args.begin(), args.end(), prepared_data().string()) =
                     (w / "data").string();
                 return args;
               },
               {"--out_dir '", "is also --data_dir"}});
  c.push_back({"prepare_destination_is_checkpoint_dir",
               [](const fs::path& w) {
                 fs::copy(tiny_pythia(), w / "base", fs::copy_options::recursive);
                 return prepare_args(w / "base", w / "base");
               },
               {"--destination_dir '", "is also --checkpoint_dir"}});
  c.push_back({"evaluate_save_filepath_inside_checkpoint_dir",
               [](const fs::path& w) {
                 fs::copy(tiny_pythia(), w / "base", fs::copy_options::recursive);
                 return with(evaluate_args(w / "base"),
                             {"--save_filepath", (w / "base" / "config.json").string()});
               },
               {"--save_filepath '", "lies inside --checkpoint_dir"}});
  // 4. Values that make a run meaningless, refused where they enter.
  for (const char* lr : {"0", "-0.001", "nan"}) {
    c.push_back({std::string("finetune_learning_rate_") + (lr[0] == '-' ? "negative" : lr),
                 [lr](const fs::path& w) {
                   return with(finetune_args(w / "run"), {"--learning_rate", lr});
                 },
                 {"--learning_rate"}});
  }
  for (const char* length : {"1", "-5"}) {
    c.push_back({std::string("finetune_max_seq_length_") + (length[0] == '-' ? "negative" : length),
                 [length](const fs::path& w) {
                   return with(finetune_args(w / "run"), {"--max_seq_length", length});
                 },
                 {"--max_seq_length must be 0"}});
  }
  c.push_back({"prepare_max_seq_length_1",
               [](const fs::path& w) {
                 return with(prepare_args(tiny_pythia(), w / "data"), {"--max_seq_length", "1"});
               },
               {"--max_seq_length must be 0"}});
  c.push_back(
      {"finetune_epochs_overflow_the_step_count",
       [](const fs::path& w) {
         return with(finetune_args(w / "run", {}, /*max_steps=*/false), {"--epochs", "1e300"});
       },
       {"--epochs is too large"}});
  c.push_back({"finetune_max_steps_overflow_the_sample_count",
               [](const fs::path& w) {
                 return with(finetune_args(w / "run", {}, /*max_steps=*/false),
                             {"--max_steps", "4000000000000000000"});
               },
               {"--max_steps is too large"}});
  c.push_back({"finetune_lora_alpha_zero",
               [](const fs::path& w) {
                 return with(finetune_args(w / "run"), {"--lora_alpha", "0"});
               },
               {"--lora_alpha must be a finite positive number"}});
  c.push_back({"generate_temperature_underflows",
               [](const fs::path&) {
                 return std::vector<std::string>{
                     "--task",   "generate", "--checkpoint_dir", tiny_pythia().string(),
                     "--prompt", "Hi",       "--temperature",    "1e-320"};
               },
               {"--temperature", "too small"}});
  c.push_back({"generate_temperature_nan",
               [](const fs::path&) {
                 return std::vector<std::string>{
                     "--task",   "generate", "--checkpoint_dir", tiny_pythia().string(),
                     "--prompt", "Hi",       "--temperature",    "nan"};
               },
               {"--temperature must be a finite number"}});
  c.push_back({"merge_adapter_target_modules_invalid_regex",
               [](const fs::path& w) {
                 const auto lora = copy_adapter(
                     w / "adapter", [](llm::Json& j) { j["target_modules"] = ".*(query_key"; });
                 return merge_args(tiny_pythia(), lora, w / "merged");
               },
               {"adapter_config.json: 'target_modules' is not a valid regular expression"}});
  c.push_back({"merge_adapter_lora_alpha_zero",
               [](const fs::path& w) {
                 const auto lora =
                     copy_adapter(w / "adapter", [](llm::Json& j) { j["lora_alpha"] = 0; });
                 return merge_args(tiny_pythia(), lora, w / "merged");
               },
               {"adapter_config.json: 'lora_alpha' must be a finite positive number"}});
  c.push_back({"merge_adapter_nan_weights",
               [](const fs::path& w) {
                 const auto lora = copy_adapter(w / "adapter");
                 poison_with_nan(lora / "adapter_model.safetensors", "lora_B");
                 return merge_args(tiny_pythia(), lora, w / "merged");
               },
               {"adapter_model.safetensors: '", "holds NaN or infinite values"}});
  c.push_back({"finetune_resume_step_beyond_the_run",
               [](const fs::path& w) {
                 const auto run = copy_stopped_run(w);
                 auto state = llm::read_json_file(run / "step-000001/trainer_state.json");
                 state["step"] = 1000;
                 write_text(run / "step-000001/trainer_state.json", state.dump(2));
                 return finetune_args(run, {"--max_steps", "2", "--resume"});
               },
               {"trainer_state.json is at step 1000, outside this run's 0..2 steps"}});
  c.push_back({"finetune_resume_non_finite_parameters",
               [](const fs::path& w) {
                 const auto run = copy_stopped_run(w);
                 poison_with_nan(run / "step-000001/trainer_state.safetensors", "param/");
                 return finetune_args(run, {"--max_steps", "2", "--resume"});
               },
               {"trainer_state.safetensors: tensor 'param/", "holds NaN or infinite values"}});
  c.push_back({"evaluate_model_with_nan_weights_writes_no_results",
               [](const fs::path& w) {
                 fs::copy(tiny_pythia(), w / "base", fs::copy_options::recursive);
                 poison_with_nan(w / "base" / "model.safetensors", "embed");
                 return with(evaluate_args(w / "base", "wikitext"),
                             {"--save_filepath", (w / "results.json").string()});
               },
               {"--checkpoint_dir '", ": wikitext ", " is NaN"}});
  return c;
}

class BadRun : public ::testing::TestWithParam<BadRunCase> {};

TEST_P(BadRun, ExitsTwoWithOneLineNamingTheCauseAndChangesNothing) {
  const BadRunCase& c = GetParam();
  llm::test::TempDir work;
  const auto args = c.setup(work.path());
  const auto before = snapshot(work.path());
  const auto result = run_llmhost(args);
  EXPECT_EQ(result.exit_code, 2) << result.err;
  expect_one_error_line(result.err);
  for (const auto& part : c.expected) {
    EXPECT_NE(result.err.find(part), std::string::npos) << "expected '" << part << "' in\n"
                                                        << result.err;
  }
  EXPECT_EQ(snapshot(work.path()), before) << "the run changed files under " << work.path();
  expect_no_temporaries(work.path());
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadRun, ::testing::ValuesIn(corpus()),
                         [](const ::testing::TestParamInfo<BadRunCase>& info) {
                           return info.param.name;
                         });

}  // namespace
