#pragma once
// The harness's get_rolling_token_windows + make_disjoint_window (spec §2.7): every token scored
// exactly once; full windows carry one token of context, the last window gets a full input.
#include <cstdint>
#include <vector>

#include "llm/eval/scorer.hpp"
#include "llm/export.hpp"

namespace llm {

LLM_API std::vector<TokenRequest> rolling_windows(const std::vector<int64_t>& tokens,
                                                  int64_t prefix_token, int64_t max_length);

}  // namespace llm
