#pragma once
#include <string>

#include <torch/types.h>

#include "llm/export.hpp"

namespace llm {

// "cpu", "cuda", "cuda:1" -> device; UserError naming --device otherwise (or if CUDA is absent).
LLM_API torch::Device parse_device(const std::string& text);
// "fp32" | "bf16" | "fp16"; empty -> fp32 on CPU, on CUDA bf16 where the device has it (compute
// capability >= 8.0), else fp16. UserError naming --precision.
LLM_API torch::ScalarType parse_precision(const std::string& text, const torch::Device& device);
// Why parse_precision("", device) chose what it chose, for the first line of a task's output.
LLM_API std::string default_precision_reason(const torch::Device& device);
// major * 10 + minor ("sm_75" -> 75) of a CUDA device; -1 when unknown (a CPU build).
LLM_API int cuda_compute_capability(const torch::Device& device);
LLM_API std::string precision_name(torch::ScalarType dtype);

}  // namespace llm
