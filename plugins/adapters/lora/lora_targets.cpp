#include "lora_targets.hpp"

#include "llm/error.hpp"

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

std::string leaf_name(const std::string& module_name) {
  const auto dot = module_name.rfind('.');
  return dot == std::string::npos ? module_name : module_name.substr(dot + 1);
}

TargetDecision decide_target(const std::string& module_name, int64_t out_features,
                             const llm::ModelConfig& config, const TargetSwitches& t) {
  const std::string leaf = leaf_name(module_name);
  TargetDecision d;
  if (leaf == "query_key_value") {
    d.targeted = t.query || t.key || t.value;
    if (d.targeted && !(t.query && t.key && t.value)) {
      const int64_t heads = config.num_heads;
      const int64_t head_dim = config.head_dim;
      if (heads <= 0 || head_dim <= 0 || out_features != 3 * heads * head_dim) {
        throw llm::UserError(config.source + ": " + module_name + " has " +
                             std::to_string(out_features) + " rows, not 3 x heads x head_dim");
      }
      const float part[3] = {t.query ? 1.f : 0.f, t.key ? 1.f : 0.f, t.value ? 1.f : 0.f};
      d.row_mask = torch::empty({heads, 3, head_dim}, torch::kFloat);
      for (int j = 0; j < 3; ++j) d.row_mask.select(1, j).fill_(part[j]);
      d.row_mask = d.row_mask.reshape({out_features});
    }
  } else if (leaf == "q_proj" || leaf == "query") {
    d.targeted = t.query;
  } else if (leaf == "k_proj" || leaf == "key") {
    d.targeted = t.key;
  } else if (leaf == "v_proj" || leaf == "value") {
    d.targeted = t.value;
  } else if (leaf == "o_proj" ||
             (leaf == "dense" && module_name.find("attention") != std::string::npos)) {
    d.targeted = t.projection;
  } else if (leaf == "dense_h_to_4h" || leaf == "dense_4h_to_h" || leaf == "gate_proj" ||
             leaf == "up_proj" || leaf == "down_proj") {
    d.targeted = t.mlp;
  } else if (leaf == "lm_head" || leaf == "embed_out") {
    d.targeted = t.head;
  }
  return d;
}

}  // namespace llm_lora
