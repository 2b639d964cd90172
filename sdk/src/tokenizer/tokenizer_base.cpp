#include "tokenizer_base.hpp"

#include <array>
#include <string_view>
#include <utility>

namespace llm::tokenizer_detail {

std::string TokenizerBase::finish_decoded_text(std::string text) const {
  if (!clean_up_tokenization_spaces_) return text;
  // The replacements of transformers' PreTrainedTokenizerBase.clean_up_tokenization, in its order.
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kReplacements = {{
      {" .", "."},
      {" ?", "?"},
      {" !", "!"},
      {" ,", ","},
      {" ' ", "'"},
      {" n't", "n't"},
      {" 'm", "'m"},
      {" 's", "'s"},
      {" 've", "'ve"},
      {" 're", "'re"},
  }};
  for (const auto& [from, to] : kReplacements) {
    std::string replaced;
    replaced.reserve(text.size());
    size_t start = 0;
    for (size_t hit = text.find(from); hit != std::string::npos; hit = text.find(from, start)) {
      replaced.append(text, start, hit - start);
      replaced.append(to);
      start = hit + from.size();
    }
    replaced.append(text, start, std::string::npos);
    text = std::move(replaced);
  }
  return text;
}

}  // namespace llm::tokenizer_detail
