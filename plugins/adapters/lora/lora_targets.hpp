#pragma once
// Which linear layers of a model a LoRA setting targets, by the roles the model declares for them
// (llm::LinearRole): LoRA knows no family's module names or fused layouts.
#include <string>

#include <torch/torch.h>

#include "llm/json_file.hpp"
#include "llm/nn/linear_role.hpp"

namespace llm_lora {

// The tutorial's switches (lit-gpt's lora_query/key/value/projection/mlp/head).
struct TargetSwitches {
  bool query = true;
  bool key = false;
  bool value = true;
  bool projection = false;
  bool mlp = false;
  bool head = false;
  static TargetSwitches from_settings(const llm::Json& settings);
  bool selects(llm::LinearRole role) const;
};

// The module's last name component ("query_key_value", "q_proj", "dense", ...).
std::string leaf_name(const std::string& module_name);

// Whether the layer is targeted (a switched-on role in any of its parts), and for a fused layer
// whose parts are not all switched on the row mask of those that are. Undefined mask = all rows.
struct TargetDecision {
  bool targeted = false;
  torch::Tensor row_mask;
};
TargetDecision decide_target(const llm::ModelLinear& layer, const TargetSwitches& switches);

}  // namespace llm_lora
