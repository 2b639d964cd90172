#include "download/retry_policy.hpp"

#include <algorithm>

namespace llmhost::download {

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry) {
  auto delay = policy.first_delay;
  for (int i = 1; i < retry && delay < policy.max_delay; ++i) delay *= 2;
  return std::min(delay, policy.max_delay);
}

}  // namespace llmhost::download
