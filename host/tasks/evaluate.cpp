// --task evaluate: lm-evaluation-harness tasks (plugins) on a checkpoint, optionally with an
// unmerged LoRA adapter; writes the harness's results JSON and prints a table.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "llm/atomic_file.hpp"
#include "llm/device.hpp"
#include "llm/error.hpp"
#include "llm/eval/results.hpp"
#include "llm/eval/scorer.hpp"
#include "llm/tokenizer.hpp"
#include "output_path.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::evaluate_task {
namespace {

void declare(po::options_description& o) {
  add_checkpoint_option(o);
  o.add_options()  //
      ("eval_tasks", po::value<std::string>()->required(),
       "tasks to run: \"[truthfulqa_mc, wikitext]\" or truthfulqa_mc,wikitext")                  //
      ("lora_path", po::value<std::string>(), "LoRA adapter directory, applied unmerged")        //
      ("batch_size", po::value<int64_t>()->default_value(4), "requests per forward pass")        //
      ("limit", po::value<int64_t>(), "only the first N documents (after the seed-42 shuffle)")  //
      ("num_fewshot", po::value<int64_t>()->default_value(0), "few-shot examples (0 only)")      //
      ("max_length", po::value<int64_t>(),
       "model context in tokens (default: config.json max_position_embeddings)")  //
      ("data_dir", po::value<std::string>()->default_value("data/eval"),
       "folder holding <task>.jsonl files")  //
      ("save_filepath", po::value<std::string>(), "write the results JSON here (atomically)");
  add_device_options(o);
  add_quantize_option(o);
}

std::string trim(const std::string& s, const char* chars) {
  const auto begin = s.find_first_not_of(chars);
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(chars) - begin + 1);
}

// Accepts the seed's list syntax and plain comma lists; returns sorted, unique names (main.py
// sorts, which fixes the JSON key order).
std::vector<std::string> parse_task_list(const std::string& text) {
  const std::string body = trim(trim(text, " \t"), "[]");
  std::vector<std::string> names;
  std::stringstream stream(body);
  std::string item;
  while (std::getline(stream, item, ',')) {
    const auto name = trim(item, " \t\"'");
    if (!name.empty()) names.push_back(name);
  }
  if (names.empty()) throw llm::UserError("--eval_tasks: no task names in '" + text + "'");
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

std::string format_value(double value) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(4) << value;
  return s.str();
}

bool is_stderr_key(const std::string& metric) {
  return metric.size() > 7 && metric.compare(metric.size() - 7, 7, "_stderr") == 0;
}

// lm-eval's make_table layout: one row per metric, stderr beside it.
void print_table(std::ostream& out, const llm::OrderedJson& results) {
  out << "|Task|Version|Metric|Value| |Stderr|\n|---|---:|---|---:|---|---:|\n";
  for (const auto& [task, metrics] : results["results"].items()) {
    bool first = true;
    for (const auto& [metric, value] : metrics.items()) {
      if (is_stderr_key(metric)) continue;
      out << "|" << (first ? task : "") << "|"
          << (first ? std::to_string(results["versions"][task].get<int>()) : "") << "|" << metric
          << "|" << format_value(value.get<double>()) << "|";
      const auto stderr_key = metric + "_stderr";
      if (metrics.contains(stderr_key) && metrics[stderr_key].is_number()) {
        out << "±|" << format_value(metrics[stderr_key].get<double>()) << "|\n";
      } else {
        out << " | |\n";
      }
      first = false;
    }
  }
}

// NaN and infinity are not JSON. An undefined standard error (fewer than two documents) is
// written as null; a non-finite score means the model itself is broken, and the run is refused.
llm::OrderedJson checked_metric(const std::string& task, const std::string& metric, double value,
                                const TaskContext& ctx) {
  if (std::isfinite(value)) return value;
  if (is_stderr_key(metric)) return nullptr;
  throw llm::UserError(
      "--checkpoint_dir '" + ctx.get<std::string>("checkpoint_dir") + "'" +
      (ctx.has("lora_path") ? " with --lora_path '" + ctx.get<std::string>("lora_path") + "'"
                            : std::string()) +
      ": " + task + " " + metric + " is " + (std::isnan(value) ? "NaN" : "infinite") +
      " (the model's scores are not finite: NaN or infinite weights?)");
}

int run(TaskContext& ctx) {
  auto& registry = ctx.registry();
  const auto names = parse_task_list(ctx.get<std::string>("eval_tasks"));
  const auto available = registry.feature_names(llm::PluginKind::kEvalTask);
  for (const auto& name : names) {
    if (std::find(available.begin(), available.end(), name) == available.end()) {
      throw llm::UserError("--eval_tasks: unknown task '" + name +
                           "' (the loaded plugins provide: " +
                           (available.empty() ? std::string("none") : join(available)) + ")");
    }
  }
  const auto batch_size = ctx.get<int64_t>("batch_size");
  if (batch_size < 1) throw llm::UserError("--batch_size must be a positive integer");
  llm::EvalTaskOptions task_options;
  task_options.data_dir = ctx.get<std::string>("data_dir");
  task_options.num_fewshot = ctx.get<int64_t>("num_fewshot");
  if (ctx.has("limit")) {
    task_options.limit = ctx.get<int64_t>("limit");
    if (task_options.limit < 1) throw llm::UserError("--limit must be a positive integer");
  }
  if (!std::filesystem::is_directory(task_options.data_dir)) {
    throw llm::UserError("--data_dir '" + task_options.data_dir.string() + "' is not a directory");
  }

  const auto checkpoint = std::filesystem::path(ctx.get<std::string>("checkpoint_dir"));
  if (ctx.has("save_filepath")) {
    // Checked before the model is scored: a bad path should not cost the whole evaluation.
    const FlagPath output{"save_filepath", ctx.get<std::string>("save_filepath")};
    std::vector<FlagPath> inputs{{"checkpoint_dir", checkpoint},
                                 {"data_dir", task_options.data_dir}};
    if (ctx.has("lora_path")) inputs.push_back({"lora_path", ctx.get<std::string>("lora_path")});
    refuse_aliasing(output, inputs);
    check_output_file(output);
  }
  const auto device = llm::parse_device(ctx.get<std::string>("device"));
  const auto dtype = task_precision(ctx, device);
  // The adapter plugin, by the directory's peft_type, before the model is loaded.
  const auto adapter = ctx.has("lora_path") ? adapter_for_directory(ctx, "lora_path") : nullptr;
  auto loaded =
      load_model(registry, checkpoint, device, dtype, /*random_init=*/false, 0, task_quantize(ctx));
  if (adapter) adapter->load(*loaded.model, ctx.get<std::string>("lora_path"));
  const auto tokenizer = llm::load_tokenizer(checkpoint);

  llm::ScorerOptions scorer_options;
  scorer_options.batch_size = batch_size;
  scorer_options.max_length = ctx.has("max_length") ? ctx.get<int64_t>("max_length")
                              : loaded.config.max_position_embeddings > 0
                                  ? loaded.config.max_position_embeddings
                                  : 2048;
  auto scorer = llm::LanguageModelScorer::for_model(*loaded.model, *tokenizer, scorer_options);

  llm::OrderedJson results = llm::OrderedJson::object();
  llm::OrderedJson versions = llm::OrderedJson::object();
  for (const auto& name : names) {
    const auto task = registry.eval_task(name);
    const auto start = std::chrono::steady_clock::now();
    llm::OrderedJson metrics = llm::OrderedJson::object();
    for (const auto& [metric, value] : task->evaluate(scorer, task_options))
      metrics[metric] = checked_metric(name, metric, value, ctx);
    results[name] = metrics;
    versions[name] = task->version();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    ctx.err() << "evaluate: " << name << " done in " << std::fixed << std::setprecision(2)
              << took.count() << " s\n";
  }

  // lit-gpt's config block (the tutorial's path), so files compare key for key.
  llm::OrderedJson config = llm::OrderedJson::object();
  config["model"] = checkpoint.filename().empty() ? checkpoint.parent_path().filename().string()
                                                  : checkpoint.filename().string();
  config["num_fewshot"] = task_options.num_fewshot;
  config["batch_size"] = batch_size;
  config["device"] = device.str();
  config["no_cache"] = true;
  config["limit"] = ctx.has("limit") ? llm::OrderedJson(task_options.limit) : llm::OrderedJson();
  config["bootstrap_iters"] = 2;
  config["description_dict"] = nullptr;
  llm::OrderedJson document = llm::OrderedJson::object();
  document["results"] = results;
  document["versions"] = versions;
  document["config"] = config;

  const std::string text = llm::python_json_dumps(document);
  if (ctx.has("save_filepath")) {
    llm::write_file_atomic(ctx.get<std::string>("save_filepath"), text);
  }
  if (ctx.json_output()) {
    ctx.out() << text << "\n";
  } else {
    print_table(ctx.out(), document);
  }
  return llm::kExitOk;
}

const bool registered = register_task(
    {"evaluate", "score a checkpoint on lm-eval-harness tasks (task plugins)", declare, run});

}  // namespace
}  // namespace llmhost::evaluate_task
