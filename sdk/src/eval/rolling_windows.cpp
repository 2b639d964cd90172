#include "llm/eval/rolling_windows.hpp"

#include <algorithm>

namespace llm {

std::vector<TokenRequest> rolling_windows(const std::vector<int64_t>& tokens, int64_t prefix_token,
                                          int64_t max_length) {
  std::vector<TokenRequest> windows;
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) return windows;
  const auto L = max_length;
  auto slice = [&](int64_t from, int64_t to) {
    return std::vector<int64_t>(tokens.begin() + from, tokens.begin() + to);
  };
  const int64_t first = std::min(L, n);
  windows.push_back({{prefix_token}, slice(0, first)});
  int64_t done = first;
  while (done < n) {
    const int64_t m = std::min(n - done, L);
    const int64_t end = done + m;
    // Context: the tokens before this window's continuation that fit an L-token input.
    windows.push_back({slice(std::max<int64_t>(0, end - L - 1), end - m), slice(end - m, end)});
    done = end;
  }
  return windows;
}

}  // namespace llm
