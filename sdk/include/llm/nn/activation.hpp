#pragma once
#include <string>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"

namespace llm {

// The hidden_act values of Hugging Face configs that the SDK computes.
enum class Activation { kGelu, kGeluTanh, kRelu, kSilu };

// "gelu" (exact erf), "gelu_new" / "gelu_fast" / "gelu_pytorch_tanh" (tanh approximation),
// "relu", "silu" / "swish". Anything else, or a name outside `allowed` when given, is a UserError
// naming `source` (config.json) and the accepted names.
LLM_API Activation parse_activation(const std::string& name, const std::string& source,
                                    const std::vector<std::string>& allowed = {});
LLM_API torch::Tensor apply_activation(Activation activation, const torch::Tensor& x);

// activation(gate) * up, the gated MLP's middle (Llama's act_fn(gate_proj(x)) * up_proj(x)). For
// SiLU one fused operation that saves gate and up only (and one CUDA kernel each way where built).
LLM_API torch::Tensor gated_activation(Activation activation, const torch::Tensor& gate,
                                       const torch::Tensor& up);

}  // namespace llm
