#pragma once
#include <string>

#include <torch/types.h>

#include "llm/export.hpp"

namespace llm {

// "cpu", "cuda", "cuda:1" -> device; UserError naming --device otherwise (or if CUDA is absent).
LLM_API torch::Device parse_device(const std::string& text);
// "fp32" | "bf16" | "fp16"; empty -> bf16 on CUDA, fp32 on CPU. UserError naming --precision.
LLM_API torch::ScalarType parse_precision(const std::string& text, const torch::Device& device);
LLM_API std::string precision_name(torch::ScalarType dtype);

}  // namespace llm
