#pragma once
#include <stdexcept>
#include <string>

#include "llm/export.hpp"

namespace llm {

// Bad input from the user: a file, a flag, a record. The host prints what() as one line and exits
// with code 2. The message names the file or flag and says what was expected.
class LLM_API UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message);
  ~UserError() override;
};

// Process exit codes shared by host and tests.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitBadInput = 2;

}  // namespace llm
