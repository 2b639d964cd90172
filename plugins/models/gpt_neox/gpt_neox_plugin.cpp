#include "gpt_neox_model.hpp"
#include "llm/plugin.hpp"

namespace {
void register_gpt_neox(llm::Registrar& registrar) {
  registrar.add_model_family(std::make_shared<gpt_neox::GPTNeoXFamily>());
}
}  // namespace

LLMHOST_PLUGIN(kModel, "gpt_neox", "0.1.0", "GPT-NeoX / Pythia causal language models",
               register_gpt_neox)
