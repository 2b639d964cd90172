#pragma once
#include <cstdint>

#include "llm/export.hpp"

namespace llm {

// Linear warm-up to base_lr over warmup_steps, then a cosine decay that is monotone down to
// min_lr at the end of the run (unlike lit-gpt's periodic CosineAnnealingLR, anchors §1.1).
// `step` is the 1-based optimizer step about to be taken, total_steps the run's last step.
struct LLM_API LrSchedule {
  double base_lr = 3e-4;
  int64_t warmup_steps = 100;
  int64_t total_steps = 1;
  double min_lr = 0.0;
  double at(int64_t step) const;
};

}  // namespace llm
