// An out-of-tree eval task: yes/no questions from <data_dir>/yes_no.jsonl, one object a line:
//   {"question": "Is water wet?", "answer": "yes"}
// acc = the model gives " yes" or " no" the higher log-likelihood, as the answer says.
#include <llm/error.hpp>
#include <llm/eval/metrics.hpp>
#include <llm/eval/scorer.hpp>
#include <llm/eval/task_data.hpp>
#include <llm/eval_task.hpp>
#include <llm/plugin.hpp>

namespace {

class YesNo final : public llm::EvalTask {
 public:
  std::string name() const override { return "yes_no"; }
  int version() const override { return 0; }

  llm::MetricValues evaluate(llm::LanguageModelScorer& scorer,
                             const llm::EvalTaskOptions& options) const override {
    const auto records = llm::read_task_jsonl(options.data_dir / "yes_no.jsonl");
    std::vector<llm::LoglikelihoodRequest> requests;
    std::vector<bool> says_yes;
    for (const auto index : llm::harness_document_order(records.size(), options.limit)) {
      const auto& record = records[index];
      const auto context = "Question: " + llm::record_string(record, "question") + "\nAnswer:";
      const auto answer = llm::record_string(record, "answer");
      if (answer != "yes" && answer != "no") {
        throw llm::UserError(record.where + ": 'answer' must be \"yes\" or \"no\"");
      }
      says_yes.push_back(answer == "yes");
      requests.push_back({context, " yes"});
      requests.push_back({context, " no"});
    }
    const auto scores = scorer.loglikelihood(requests);
    std::vector<double> acc;
    for (std::size_t i = 0; i < says_yes.size(); ++i) {
      const bool model_says_yes = scores[2 * i].loglikelihood > scores[2 * i + 1].loglikelihood;
      acc.push_back(model_says_yes == says_yes[i] ? 1.0 : 0.0);
    }
    return {{"acc", llm::mean(acc)}, {"acc_stderr", llm::mean_stderr(acc)}};
  }
};

void register_yes_no(llm::Registrar& registrar) {
  registrar.add_eval_task(std::make_shared<YesNo>());
}

}  // namespace

LLMHOST_PLUGIN(kEvalTask, "yes_no", "0.1.0", "example: yes/no questions (acc)", register_yes_no)
