#pragma once
// Dynamic loss scaling for fp16 training, with torch.cuda.amp.GradScaler's semantics: the loss is
// multiplied by `scale` before backward so small fp16 gradients do not flush to zero; the fp32
// gradients are divided by it again before the optimizer. A step whose gradients hold an inf or
// NaN is skipped and the scale halved; after `growth_interval` clean steps in a row it doubles.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

struct LossScalerSettings {
  double initial_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class LLM_API LossScaler {
 public:
  explicit LossScaler(LossScalerSettings settings = {});

  double scale() const { return scale_; }
  int64_t skipped_steps() const { return skipped_steps_; }
  int64_t clean_steps_in_a_row() const { return growth_tracker_; }

  // Divides the gradients by the scale in place; true when every one is finite (take the step).
  // One host read for all of them.
  bool unscale(const std::vector<torch::Tensor>& grads) const;
  // After unscale: on overflow halve the scale and count a skipped step; otherwise count a clean
  // step and double the scale after growth_interval of them.
  void update(bool grads_finite);

  // {"scale", "growth_tracker", "skipped_steps"}: enough to continue exactly on resume.
  Json state() const;
  void load_state(const Json& state, const std::string& source);

 private:
  LossScalerSettings settings_;
  double scale_;
  int64_t growth_tracker_ = 0;
  int64_t skipped_steps_ = 0;
};

}  // namespace llm
