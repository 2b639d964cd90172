#pragma once
#include <string>
#include <string_view>

namespace llm::tokenizer_detail {

// Replaces each maximal invalid UTF-8 subsequence with U+FFFD, as Python's errors="replace" and
// Rust's from_utf8_lossy do, so decode output and regex/NFC input are always valid UTF-8.
std::string to_valid_utf8(std::string_view bytes);

bool is_valid_utf8(std::string_view bytes);

enum class UnicodeForm { kNone, kNFC, kNFD, kNFKC, kNFKD };

// Unicode normalisation through utf8proc; `text` must be valid UTF-8.
std::string normalize_unicode(std::string_view text, UnicodeForm form);

// Appends the UTF-8 encoding of `code_point` to `out`.
void append_utf8(std::string& out, char32_t code_point);

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

}  // namespace llm::tokenizer_detail
