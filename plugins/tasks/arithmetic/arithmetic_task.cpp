// arithmetic_* (harness VERSION 0): acc = the completion is the model's greedy continuation,
// token by token. One class, one data file per variant (<name>.jsonl). Spec §3.4.
#include "llm/error.hpp"
#include "llm/eval/metrics.hpp"
#include "llm/eval/scorer.hpp"
#include "llm/eval/task_data.hpp"
#include "llm/eval_task.hpp"
#include "llm/plugin.hpp"

namespace {

class Arithmetic final : public llm::EvalTask {
 public:
  explicit Arithmetic(std::string variant) : name_("arithmetic_" + std::move(variant)) {}
  std::string name() const override { return name_; }
  int version() const override { return 0; }

  llm::MetricValues evaluate(llm::LanguageModelScorer& scorer,
                             const llm::EvalTaskOptions& options) const override {
    if (options.num_fewshot != 0) {
      throw llm::UserError("--num_fewshot: only 0 is supported for " + name_ + " (got " +
                           std::to_string(options.num_fewshot) + ")");
    }
    const auto records = llm::read_task_jsonl(options.data_dir / (name_ + ".jsonl"));
    std::vector<llm::LoglikelihoodRequest> all;
    for (const auto& r : records) {
      all.push_back({llm::record_string(r, "context"), llm::record_string(r, "completion")});
      if (all.back().continuation.empty()) {
        throw llm::UserError(r.where + ": field 'completion' must not be empty");
      }
    }
    std::vector<llm::LoglikelihoodRequest> requests;
    for (const auto index : llm::harness_document_order(all.size(), options.limit)) {
      requests.push_back(all[index]);
    }
    std::vector<double> acc;
    for (const auto& answer : scorer.loglikelihood(requests)) {
      acc.push_back(answer.is_greedy ? 1.0 : 0.0);
    }
    return {{"acc", llm::mean(acc)}, {"acc_stderr", llm::mean_stderr(acc)}};
  }

 private:
  std::string name_;
};

void register_arithmetic(llm::Registrar& registrar) {
  for (const char* variant :
       {"1dc", "2da", "2dm", "2ds", "3da", "3ds", "4da", "4ds", "5da", "5ds"}) {
    registrar.add_eval_task(std::make_shared<Arithmetic>(variant));
  }
}

}  // namespace

LLMHOST_PLUGIN(kEvalTask, "arithmetic", "0.1.0",
               "GPT-3 arithmetic (arithmetic_1dc, 2da..5ds, 2dm), lm-eval harness semantics",
               register_arithmetic)
