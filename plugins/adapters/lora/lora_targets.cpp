#include "lora_targets.hpp"

namespace llm_lora {

TargetSwitches TargetSwitches::from_settings(const llm::Json& s) {
  const std::string source = "LoRA settings";
  TargetSwitches t;
  t.query = llm::json_bool_or(s, "lora_query", t.query, source);
  t.key = llm::json_bool_or(s, "lora_key", t.key, source);
  t.value = llm::json_bool_or(s, "lora_value", t.value, source);
  t.projection = llm::json_bool_or(s, "lora_projection", t.projection, source);
  t.mlp = llm::json_bool_or(s, "lora_mlp", t.mlp, source);
  t.head = llm::json_bool_or(s, "lora_head", t.head, source);
  return t;
}

bool TargetSwitches::selects(llm::LinearRole role) const {
  switch (role) {
    case llm::LinearRole::kQuery:
      return query;
    case llm::LinearRole::kKey:
      return key;
    case llm::LinearRole::kValue:
      return value;
    case llm::LinearRole::kAttentionOutput:
      return projection;
    case llm::LinearRole::kMlpGate:
    case llm::LinearRole::kMlpUp:
    case llm::LinearRole::kMlpDown:
      return mlp;
    case llm::LinearRole::kLmHead:
      return head;
  }
  return false;
}

std::string leaf_name(const std::string& module_name) {
  const auto dot = module_name.rfind('.');
  return dot == std::string::npos ? module_name : module_name.substr(dot + 1);
}

TargetDecision decide_target(const llm::ModelLinear& layer, const TargetSwitches& t) {
  TargetDecision d;
  const auto selected = [&](llm::LinearRole role) { return t.selects(role); };
  for (const auto& part : layer.parts) d.targeted = d.targeted || selected(part.role);
  if (!d.targeted) return d;
  // A mask only where some rows stay untouched (the key rows of a q+v adapter on a fused q/k/v).
  const auto mask = layer.row_mask(selected);
  if (!mask.all().item<bool>()) d.row_mask = mask;
  return d;
}

}  // namespace llm_lora
