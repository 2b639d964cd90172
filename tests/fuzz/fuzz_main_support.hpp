#pragma once
// Included by exactly one .cpp per fuzz executable: a finding aborts, so libFuzzer saves the input.
#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz_support.hpp"

void llm::fuzz::on_unexpected_exception(const char* what) {
  std::fprintf(stderr, "llmhost fuzz: exception other than UserError: %s\n", what);
  std::abort();
}
