#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "llm/export.hpp"

namespace llm {

// One instruction-tuning record in the Alpaca shape (Dolly's context becomes `input`).
struct InstructionExample {
  std::string instruction;
  std::string input;   // may be empty
  std::string output;  // the response
  int64_t source_line = 0;  // 1-based line (JSONL) or record index (JSON array), for messages
};

struct DatasetReadOptions {
  bool skip_bad_records = false;  // otherwise the first bad record is a UserError (file + line)
};

struct DatasetReadResult {
  std::vector<InstructionExample> examples;
  int64_t skipped_records = 0;
};

// A dataset plugin reads a raw published file (Dolly JSONL, Alpaca JSON) into examples.
class LLM_API Dataset {
 public:
  virtual ~Dataset();
  virtual std::string name() const = 0;  // "dolly", "alpaca"
  virtual DatasetReadResult read(const std::filesystem::path& file,
                                 const DatasetReadOptions& options) const = 0;
};

}  // namespace llm
