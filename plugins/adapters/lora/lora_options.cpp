#include "lora_options.hpp"

#include "lora_linear.hpp"
#include "lora_targets.hpp"

namespace llm_lora {

std::vector<llm::AdapterOption> lora_options() {
  using Type = llm::AdapterOption::Type;
  const LoraShape shape;
  const TargetSwitches targets;
  return {
      {"lora_r", Type::kInteger, "LoRA rank", shape.r},
      {"lora_alpha", Type::kNumber, "LoRA alpha (scaling alpha/r)", shape.alpha},
      {"lora_dropout", Type::kNumber, "dropout on the LoRA input", shape.dropout},
      {"lora_query", Type::kBoolean, "adapt the query projection", targets.query},
      {"lora_key", Type::kBoolean, "adapt the key projection", targets.key},
      {"lora_value", Type::kBoolean, "adapt the value projection", targets.value},
      {"lora_projection", Type::kBoolean, "adapt the attention output projection",
       targets.projection},
      {"lora_mlp", Type::kBoolean, "adapt the MLP", targets.mlp},
      {"lora_head", Type::kBoolean, "adapt the output head", targets.head},
  };
}

}  // namespace llm_lora
