#pragma once
// The options --task finetune offers for LoRA (lit-gpt's lora_r, lora_alpha, ... switches), with
// the defaults of LoraShape and TargetSwitches: declared here, not in the host.
#include <vector>

#include "llm/adapter.hpp"

namespace llm_lora {

std::vector<llm::AdapterOption> lora_options();

}  // namespace llm_lora
