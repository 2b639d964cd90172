#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llm::tokenizer_detail {

// GPT-2's split pattern (runs of letters, of digits, of other symbols, each with an optional
// leading space; contractions; spaces), which the ByteLevel pre-tokenizer applies with use_regex.
extern const char* const kGpt2SplitPattern;

// `tokenizers`' Split pre-tokenizer with behavior "Isolated": each match of the pattern is a word,
// and so is each stretch of text between matches. Patterns are tokenizer.json's (Oniguruma syntax,
// which the GPT-2, Llama 3 and Qwen2 patterns share with PCRE2); Unicode classes come from PCRE2
// (UTF + UCP), JIT-compiled where the platform allows.
class RegexPreTokenizer {
 public:
  // `literal`: the pattern is plain text (a Split with a String pattern). Throws UserError naming
  // `source` when PCRE2 rejects the pattern.
  RegexPreTokenizer(const std::string& pattern, bool literal, const std::string& source);
  ~RegexPreTokenizer();
  RegexPreTokenizer(const RegexPreTokenizer&) = delete;
  RegexPreTokenizer& operator=(const RegexPreTokenizer&) = delete;

  // `text` must be valid UTF-8. The words cover `text` completely, in order.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace llm::tokenizer_detail
