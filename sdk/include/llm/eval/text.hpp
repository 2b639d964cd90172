#pragma once
// Python string semantics the harness relies on, for UTF-8 text.
#include <cstddef>
#include <string>
#include <string_view>

#include "llm/export.hpp"

namespace llm {

// Python str.isspace() for one code point.
LLM_API bool python_isspace(char32_t code_point);
// Byte length of the trailing run of Python-whitespace code points.
LLM_API std::size_t trailing_whitespace_bytes(std::string_view text);
// len(re.split(r"\s+", text)): 1 + the number of maximal whitespace runs.
LLM_API std::size_t python_split_word_count(std::string_view text);
// Number of Unicode code points (Python len(str)); invalid bytes count one each.
LLM_API std::size_t code_point_count(std::string_view text);
// lm-eval's wikitext_detokenizer (spec §3.2, 24 steps in order).
LLM_API std::string wikitext_detokenize(const std::string& page);

}  // namespace llm
