// wikitext (harness VERSION 1): rolling log-likelihood of each detokenised page; perplexities
// are corpus-level ratios over words and UTF-8 bytes of the raw pages. No stderr. Spec §3.2.
#include "llm/error.hpp"
#include "llm/eval/metrics.hpp"
#include "llm/eval/scorer.hpp"
#include "llm/eval/task_data.hpp"
#include "llm/eval/text.hpp"
#include "llm/eval_task.hpp"
#include "llm/plugin.hpp"

namespace {

class WikiText final : public llm::EvalTask {
 public:
  std::string name() const override { return "wikitext"; }
  int version() const override { return 1; }

  llm::MetricValues evaluate(llm::LanguageModelScorer& scorer,
                             const llm::EvalTaskOptions& options) const override {
    if (options.num_fewshot != 0) {
      throw llm::UserError("--num_fewshot: wikitext is zero-shot only (got " +
                           std::to_string(options.num_fewshot) + ")");
    }
    const auto records = llm::read_task_jsonl(options.data_dir / "wikitext.jsonl");
    std::vector<std::string> pages;
    for (const auto& r : records) pages.push_back(llm::record_string(r, "page"));

    const auto order = llm::harness_document_order(pages.size(), options.limit);
    std::vector<std::string> texts;
    for (const auto index : order) texts.push_back(llm::wikitext_detokenize(pages[index]));
    const auto lls = scorer.loglikelihood_rolling(texts);

    std::vector<std::pair<double, double>> per_word;
    std::vector<std::pair<double, double>> per_byte;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const auto& page = pages[order[i]];
      per_word.emplace_back(lls[i], static_cast<double>(llm::python_split_word_count(page)));
      per_byte.emplace_back(lls[i], static_cast<double>(page.size()));
    }
    return {{"word_perplexity", llm::weighted_perplexity(per_word)},
            {"byte_perplexity", llm::weighted_perplexity(per_byte)},
            {"bits_per_byte", llm::bits_per_byte(per_byte)}};
  }
};

void register_wikitext(llm::Registrar& registrar) {
  registrar.add_eval_task(std::make_shared<WikiText>());
}

}  // namespace

LLMHOST_PLUGIN(kEvalTask, "wikitext", "0.1.0",
               "WikiText-2 document-level perplexity, lm-eval harness semantics", register_wikitext)
