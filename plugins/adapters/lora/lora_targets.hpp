#pragma once
// Which linear layers of a model a LoRA setting targets, by Hugging Face module name.
#include <string>
#include <vector>

#include <torch/torch.h>

#include "llm/json_file.hpp"
#include "llm/model_config.hpp"

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
};

// The module's last name component ("query_key_value", "q_proj", "dense", ...).
std::string leaf_name(const std::string& module_name);

// Whether the layer is targeted, and for GPT-NeoX's fused query_key_value the row mask of the
// switched-on parts (rows of head h are [q_h, k_h, v_h], head_dim each). Undefined mask = all rows.
struct TargetDecision {
  bool targeted = false;
  torch::Tensor row_mask;
};
TargetDecision decide_target(const std::string& module_name, int64_t out_features,
                             const llm::ModelConfig& config, const TargetSwitches& switches);

}  // namespace llm_lora
