#include "llama_model.hpp"
#include "llm/plugin.hpp"

namespace {
void register_llama(llm::Registrar& registrar) {
  registrar.add_model_family(std::make_shared<llama::LlamaFamily>());
}
}  // namespace

LLMHOST_PLUGIN(kModel, "llama", "0.1.0", "Llama 2 causal language models (incl. grouped-query)",
               register_llama)
