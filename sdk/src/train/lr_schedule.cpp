#include "llm/train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace llm {

double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step <= warmup_steps) {
    return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  }
  // Reaches min_lr one step past the end, so the last step still learns.
  const double span = static_cast<double>(std::max<int64_t>(total_steps - warmup_steps, 0) + 1);
  const double progress =
      std::clamp(static_cast<double>(step - std::max<int64_t>(warmup_steps, 0)) / span, 0.0, 1.0);
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace llm
