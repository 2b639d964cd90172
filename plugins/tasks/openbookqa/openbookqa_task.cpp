// openbookqa (harness VERSION 0): the question stem as context, each choice as " " + text;
// acc = argmax log-likelihood, acc_norm = argmax per code point of the choice. Spec §3.3.
#include <algorithm>

#include "llm/error.hpp"
#include "llm/eval/metrics.hpp"
#include "llm/eval/scorer.hpp"
#include "llm/eval/task_data.hpp"
#include "llm/eval/text.hpp"
#include "llm/eval_task.hpp"
#include "llm/plugin.hpp"

namespace {

struct Question {
  std::string stem;
  std::vector<std::string> choices;
  std::size_t gold = 0;
};

std::string strip_ascii(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n\f\v");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n\f\v") - begin + 1);
}

Question parse(const llm::TaskRecord& record) {
  Question q;
  q.stem = llm::record_string(record, "question_stem");
  // A copy: GCC 13 takes a reference returned for a temporary key for a dangling one.
  const auto choices = llm::record_field(record, "choices");
  if (!choices.is_object()) throw llm::UserError(record.where + ": 'choices' must be an object");
  q.choices = llm::record_strings(record, choices.value("text", llm::Json()), "choices.text");
  static const std::vector<std::string> kLetters{"A", "B", "C", "D"};
  const auto key = strip_ascii(llm::record_string(record, "answerKey"));
  const auto it = std::find(kLetters.begin(), kLetters.end(), key);
  if (it == kLetters.end()) {
    throw llm::UserError(record.where + ": 'answerKey' must be one of A, B, C, D (got '" + key +
                         "')");
  }
  q.gold = static_cast<std::size_t>(it - kLetters.begin());
  if (q.gold >= q.choices.size()) {
    throw llm::UserError(record.where + ": 'answerKey' " + key + " has no matching choice");
  }
  return q;
}

class OpenBookQa final : public llm::EvalTask {
 public:
  std::string name() const override { return "openbookqa"; }
  int version() const override { return 0; }

  llm::MetricValues evaluate(llm::LanguageModelScorer& scorer,
                             const llm::EvalTaskOptions& options) const override {
    if (options.num_fewshot != 0) {
      throw llm::UserError("--num_fewshot: only 0 is supported for openbookqa (got " +
                           std::to_string(options.num_fewshot) + ")");
    }
    const auto records = llm::read_task_jsonl(options.data_dir / "openbookqa.jsonl");
    std::vector<Question> questions;
    for (const auto& r : records) questions.push_back(parse(r));

    const auto order = llm::harness_document_order(questions.size(), options.limit);
    std::vector<llm::LoglikelihoodRequest> requests;
    for (const auto index : order) {
      for (const auto& c : questions[index].choices) {
        requests.push_back({questions[index].stem, " " + c});
      }
    }
    const auto answers = scorer.loglikelihood(requests);

    std::vector<double> acc;
    std::vector<double> acc_norm;
    std::size_t next = 0;
    for (const auto index : order) {
      const auto& q = questions[index];
      std::vector<double> lls;
      std::vector<double> normalised;
      for (const auto& c : q.choices) {
        const double ll = answers[next++].loglikelihood;
        lls.push_back(ll);
        normalised.push_back(ll / static_cast<double>(llm::code_point_count(c)));
      }
      acc.push_back(llm::first_argmax(lls) == q.gold ? 1.0 : 0.0);
      acc_norm.push_back(llm::first_argmax(normalised) == q.gold ? 1.0 : 0.0);
    }
    return {{"acc", llm::mean(acc)},
            {"acc_stderr", llm::mean_stderr(acc)},
            {"acc_norm", llm::mean(acc_norm)},
            {"acc_norm_stderr", llm::mean_stderr(acc_norm)}};
  }
};

void register_openbookqa(llm::Registrar& registrar) {
  registrar.add_eval_task(std::make_shared<OpenBookQa>());
}

}  // namespace

LLMHOST_PLUGIN(kEvalTask, "openbookqa", "0.1.0",
               "OpenBookQA (acc, acc_norm), lm-eval harness semantics", register_openbookqa)
