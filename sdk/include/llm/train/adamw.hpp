#pragma once
// AdamW (decoupled weight decay) written out, so its state is plain named tensors that a
// checkpoint stores and a resume restores exactly. Same update as torch.optim.AdamW (on CUDA with
// LibTorch >= 2.2, its fused kernel).
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"

namespace llm {

struct AdamWSettings {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

class LLM_API AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> parameters, AdamWSettings settings);

  void step(double lr);  // uses each parameter's .grad(); parameters without a grad are skipped
  void zero_grad();
  int64_t steps_taken() const { return step_; }

  const std::vector<std::pair<std::string, torch::Tensor>>& parameters() const { return params_; }
  // "exp_avg/<name>", "exp_avg_sq/<name>" -> tensors, for checkpoints.
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  // Restores moments (and the step count); UserError naming `source` on a missing/mis-shaped one.
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  int64_t steps_taken, const std::string& source);

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> exp_avg_;
  std::vector<torch::Tensor> exp_avg_sq_;
  AdamWSettings settings_;
  int64_t step_ = 0;
  torch::Tensor step_count_;  // fused CUDA path: the step count as the kernel reads it
};

}  // namespace llm
