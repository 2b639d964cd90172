#pragma once
#include <memory>
#include <string_view>
#include <vector>

namespace llm::tokenizer_detail {

// Splits text into the words GPT-2's byte-level BPE merges within, with the GPT-2 pattern (runs of
// letters, of digits, of other symbols, each with an optional leading space; contractions; spaces).
// Unicode classes come from PCRE2 (UTF + UCP), JIT-compiled where the platform allows.
class Gpt2PreTokenizer {
 public:
  Gpt2PreTokenizer();
  ~Gpt2PreTokenizer();
  Gpt2PreTokenizer(const Gpt2PreTokenizer&) = delete;
  Gpt2PreTokenizer& operator=(const Gpt2PreTokenizer&) = delete;

  // `text` must be valid UTF-8. The words cover `text` completely, in order.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace llm::tokenizer_detail
