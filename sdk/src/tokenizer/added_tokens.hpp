#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llm::tokenizer_detail {

// One entry of tokenizer.json's "added_tokens" (or a sentencepiece control piece).
struct AddedToken {
  int64_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matches when not inside a word
  bool normalized = false;   // matched after normalisation rather than on the raw text
};

// A piece of input text: either plain text still to be tokenised, or one added token.
struct TextSegment {
  std::string_view text;
  int64_t token_id = -1;  // >= 0 for an added token
};

// Splits text on added tokens before any other processing, as `tokenizers` does: leftmost match
// first, the longest one where several start at the same place.
class AddedTokenSplitter {
 public:
  AddedTokenSplitter() = default;
  explicit AddedTokenSplitter(std::vector<AddedToken> tokens);

  bool empty() const { return tokens_.empty(); }
  std::vector<TextSegment> split(std::string_view text) const;

 private:
  // Longest acceptable token starting at `pos`, or nullptr.
  const AddedToken* match_at(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  // Token indices by first byte, longest content first.
  std::array<std::vector<size_t>, 256> by_first_byte_;
};

}  // namespace llm::tokenizer_detail
