#include "added_tokens.hpp"

#include <algorithm>

#include <utf8proc.h>

namespace llm::tokenizer_detail {
namespace {

// lstrip/rstrip/single_word only need ASCII whitespace in practice (tokenizer files use them for
// "<mask>"-style tokens next to spaces), so the check stays byte-wise.
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// A letter, digit or '_' ends the word boundary test of single_word tokens.
bool is_word_code_point(utf8proc_int32_t code_point) {
  if (code_point == '_') return true;
  switch (utf8proc_category(code_point)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

bool word_char_after(std::string_view text, size_t pos) {
  if (pos >= text.size()) return false;
  utf8proc_int32_t code_point = -1;
  utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + pos),
                   static_cast<utf8proc_ssize_t>(text.size() - pos), &code_point);
  return code_point >= 0 && is_word_code_point(code_point);
}

bool word_char_before(std::string_view text, size_t pos) {
  if (pos == 0) return false;
  size_t start = pos - 1;  // back up to the lead byte of the previous character
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return word_char_after(text.substr(0, pos), start);
}

}  // namespace

AddedTokenSplitter::AddedTokenSplitter(std::vector<AddedToken> tokens)
    : tokens_(std::move(tokens)) {
  tokens_.erase(std::remove_if(tokens_.begin(), tokens_.end(),
                               [](const AddedToken& t) { return t.content.empty(); }),
                tokens_.end());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

const AddedToken* AddedTokenSplitter::match_at(std::string_view text, size_t pos) const {
  for (size_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    const AddedToken& token = tokens_[index];
    if (text.compare(pos, token.content.size(), token.content) != 0) continue;
    if (token.single_word &&
        (word_char_before(text, pos) || word_char_after(text, pos + token.content.size()))) {
      continue;
    }
    return &token;
  }
  return nullptr;
}

std::vector<TextSegment> AddedTokenSplitter::split(std::string_view text) const {
  std::vector<TextSegment> segments;
  size_t text_start = 0;  // start of the plain text not yet emitted
  for (size_t pos = 0; pos < text.size();) {
    const AddedToken* token = tokens_.empty() ? nullptr : match_at(text, pos);
    if (token == nullptr) {
      ++pos;
      continue;
    }
    size_t text_end = pos;
    if (token->lstrip) {
      while (text_end > text_start && is_ascii_space(text[text_end - 1])) --text_end;
    }
    size_t next = pos + token->content.size();
    if (token->rstrip) {
      while (next < text.size() && is_ascii_space(text[next])) ++next;
    }
    if (text_end > text_start) segments.push_back({text.substr(text_start, text_end - text_start)});
    segments.push_back({text.substr(pos, token->content.size()), token->id});
    text_start = next;
    pos = next;
  }
  if (text_start < text.size()) segments.push_back({text.substr(text_start)});
  return segments;
}

}  // namespace llm::tokenizer_detail
