#include "gpt2_pretokenizer.hpp"

#include <stdexcept>
#include <string>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

namespace llm::tokenizer_detail {
namespace {

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

struct Gpt2PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

Gpt2PreTokenizer::Gpt2PreTokenizer() : compiled_(std::make_unique<Compiled>()) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (compiled_->code == nullptr) {
    throw std::runtime_error("PCRE2 rejected the GPT-2 pattern: " + pcre2_message(error_code));
  }
  // JIT is an optimisation only: where it is unavailable, matching falls back to the interpreter.
  pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
}

Gpt2PreTokenizer::~Gpt2PreTokenizer() = default;

std::vector<std::string_view> Gpt2PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> words;
  if (text.empty()) return words;
  // Match data is per call so that one tokenizer can encode from several threads.
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(compiled_->code, nullptr), &pcre2_match_data_free);
  if (!match) throw std::bad_alloc();

  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset < text.size()) {
    // The caller validated the UTF-8 once; skipping the check keeps this loop linear.
    int rc = pcre2_match(compiled_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                         match.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(compiled_->code, subject, text.size(), offset,
                       PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw std::runtime_error("PCRE2 match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* bounds = pcre2_get_ovector_pointer(match.get());
    const size_t start = bounds[0];
    size_t end = bounds[1];
    if (start > offset) words.push_back(text.substr(offset, start - offset));  // unmatched gap
    if (end <= start) {
      // The pattern cannot match empty; guard anyway by stepping over one UTF-8 character.
      end = start + 1;
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    }
    words.push_back(text.substr(start, end - start));
    offset = end;
  }
  if (offset < text.size()) words.push_back(text.substr(offset));
  return words;
}

}  // namespace llm::tokenizer_detail
