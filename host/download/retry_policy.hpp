#pragma once
// Bounded retries with exponential backoff for network failures and busy servers.
#include <chrono>

namespace llmhost::download {

struct RetryPolicy {
  int max_retries = 5;                          // attempts after the first
  std::chrono::milliseconds first_delay{1000};  // doubles each retry
  std::chrono::milliseconds max_delay{30000};
};

// The wait before retry number `retry` (1-based): first_delay * 2^(retry-1), capped at max_delay.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry);

}  // namespace llmhost::download
