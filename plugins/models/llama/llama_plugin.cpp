#include "llama_config.hpp"
#include "llm/plugin.hpp"

namespace {
void register_llama(llm::Registrar& registrar) {
  registrar.add_model_family(std::make_shared<llm::DecoderFamily>(
      "llama", std::vector<std::string>{"llama"}, std::vector<std::string>{"LlamaForCausalLM"},
      llama::read_llama_config));
}
}  // namespace

LLMHOST_PLUGIN(kModel, "llama", "0.1.0", "Llama 2 causal language models (incl. grouped-query)",
               register_llama)
