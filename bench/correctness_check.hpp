#pragma once
// Correctness at speed: the tiny fixtures' logits, computed on the bench's device and precision,
// against the fp32 Hugging Face goldens in tests/data/golden.
#include <string>

#include <torch/types.h>

#include "plugin_registry.hpp"
#include "report.hpp"

namespace llmhost_bench {

// bf16 keeps 8 significant bits (relative rounding 2^-9 per operation) and these logits reach
// ~8, so after two layers of rounded products a few hundredths on average, under half a unit at
// worst, with the same top token almost everywhere. The CPU suite's bf16 test uses the same bounds.
struct LogitTolerance {
  double mean_abs = 0.05;
  double max_abs = 0.5;
  double argmax_agreement = 0.9;
};

LogitTolerance tolerance_for(torch::ScalarType dtype);  // fp32: 1e-4 max, as the fixtures state

WorkloadResult check_fixture_logits(const llmhost::PluginRegistry& registry,
                                    const std::string& fixture, const torch::Device& device,
                                    torch::ScalarType dtype);

}  // namespace llmhost_bench
