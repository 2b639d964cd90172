#include "correctness_check.hpp"

#include <filesystem>

#include "llm/safetensors.hpp"

namespace llmhost_bench {

LogitTolerance tolerance_for(torch::ScalarType dtype) {
  if (dtype == torch::kFloat) return {1e-4, 1e-4, 1.0};
  return {};
}

WorkloadResult check_fixture_logits(const llmhost::PluginRegistry& registry,
                                    const std::string& fixture, const torch::Device& device,
                                    torch::ScalarType dtype) {
  const std::filesystem::path data = LLMHOST_TEST_DATA_DIR;
  WorkloadResult r;
  r.shape = fixture;
  r.workload = "correctness";
  const llm::SafetensorsFile golden(data / "golden" / (fixture + "-logits.safetensors"));
  const auto ids = golden.tensor("input_ids").to(device);
  const auto expected = golden.tensor("logits").to(torch::kFloat);
  auto loaded = llmhost::load_model(registry, data / fixture, device, dtype, false);
  loaded.model->eval();
  torch::NoGradGuard no_grad;
  const auto logits = loaded.model->forward(ids).to(torch::kFloat).cpu();
  const auto diff = (logits - expected).abs();
  const double mean_abs = diff.mean().item<double>();
  const double max_abs = diff.max().item<double>();
  const double agreement =
      logits.argmax(-1).eq(expected.argmax(-1)).to(torch::kFloat).mean().item<double>();
  const auto tolerance = tolerance_for(dtype);
  r.passed = mean_abs <= tolerance.mean_abs && max_abs <= tolerance.max_abs &&
             agreement >= tolerance.argmax_agreement;
  r.note = "logits vs fp32 golden: mean |d| " + std::to_string(mean_abs) + ", max |d| " +
           std::to_string(max_abs) + ", argmax agree " + std::to_string(agreement);
  r.extra = {{"mean_abs_diff", mean_abs},
             {"max_abs_diff", max_abs},
             {"argmax_agreement", agreement},
             {"dtype", std::string(c10::toString(dtype))}};
  return r;
}

}  // namespace llmhost_bench
