#pragma once
// Task data: one JSONL file per task (Hugging Face field names), and the harness's document
// selection (Random(42) shuffle, then --limit).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

struct TaskRecord {
  Json json;
  std::string where;  // "data/eval/openbookqa.jsonl:12", for error messages
};

// Every non-blank line of `path` as one JSON object. UserError naming the file for a missing or
// empty file, and file:line for a line that is not a JSON object.
LLM_API std::vector<TaskRecord> read_task_jsonl(const std::filesystem::path& path);

// Field access with errors naming record.where and the key.
LLM_API const Json& record_field(const TaskRecord& record, const std::string& key);
LLM_API std::string record_string(const TaskRecord& record, const std::string& key);
LLM_API std::vector<std::string> record_strings(const TaskRecord& record, const Json& array,
                                                const std::string& key);

// The harness's order: docs shuffled by random.Random(42); with limit >= 0 the first `limit`.
// Returns indices into the original list (doc_id = position in the result).
LLM_API std::vector<std::size_t> harness_document_order(std::size_t count, int64_t limit);

// CPython's random.Random: MT19937 seeded with init_by_array([seed]), and shuffle().
class LLM_API PythonRandom {
 public:
  explicit PythonRandom(uint32_t seed);
  uint32_t next_uint32();
  uint64_t below(uint64_t bound);  // _randbelow: rejection sampling on the top bits
  template <typename T>
  void shuffle(std::vector<T>& items) {
    for (std::size_t i = items.size(); i-- > 1;) std::swap(items[i], items[below(i + 1)]);
  }

 private:
  uint32_t state_[624];
  int index_;
};

}  // namespace llm
