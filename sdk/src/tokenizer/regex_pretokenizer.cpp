#include "regex_pretokenizer.hpp"

#include <stdexcept>
#include <string>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "llm/error.hpp"

namespace llm::tokenizer_detail {

const char* const kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

struct RegexPreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

RegexPreTokenizer::RegexPreTokenizer(const std::string& pattern, bool literal,
                                     const std::string& source)
    : compiled_(std::make_unique<Compiled>()) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0u);
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  options, &error_code, &error_offset, nullptr);
  if (compiled_->code == nullptr) {
    throw UserError(source + ": the split pattern '" + pattern + "' is not a usable regex (" +
                    pcre2_message(error_code) + " at offset " + std::to_string(error_offset) + ")");
  }
  // JIT is an optimisation only: where it is unavailable, matching falls back to the interpreter.
  pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
}

RegexPreTokenizer::~RegexPreTokenizer() = default;

std::vector<std::string_view> RegexPreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> words;
  if (text.empty()) return words;
  // Match data is per call so that one tokenizer can encode from several threads.
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(compiled_->code, nullptr), &pcre2_match_data_free);
  if (!match) throw std::bad_alloc();

  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;  // start of the text not yet in a word
  size_t search = 0;  // where the next match may start
  while (search < text.size()) {
    // The caller validated the UTF-8 once; skipping the check keeps this loop linear.
    int rc = pcre2_match(compiled_->code, subject, text.size(), search, PCRE2_NO_UTF_CHECK,
                         match.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(compiled_->code, subject, text.size(), search,
                       PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw std::runtime_error("PCRE2 match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* bounds = pcre2_get_ovector_pointer(match.get());
    const size_t start = bounds[0];
    const size_t end = bounds[1];
    if (end <= start) {
      // An empty match makes no word: look again one character further, the gap kept open.
      search = start + 1;
      while (search < text.size() && (static_cast<unsigned char>(text[search]) & 0xC0) == 0x80) {
        ++search;
      }
      continue;
    }
    if (start > offset) words.push_back(text.substr(offset, start - offset));  // unmatched gap
    words.push_back(text.substr(start, end - start));
    offset = search = end;
  }
  if (offset < text.size()) words.push_back(text.substr(offset));
  return words;
}

}  // namespace llm::tokenizer_detail
