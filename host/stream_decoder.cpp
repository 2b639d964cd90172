#include "stream_decoder.hpp"

namespace llmhost {

namespace {
// U+FFFD at the end means the last character is still incomplete.
bool ends_with_replacement_char(const std::string& text) {
  return text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

StreamDecoder::StreamDecoder(const llm::Tokenizer& tokenizer, std::vector<int64_t> prompt_ids)
    : tokenizer_(tokenizer), ids_(std::move(prompt_ids)) {
  emitted_ = tokenizer_.decode(ids_, /*skip_special_tokens=*/true).size();
}

std::string StreamDecoder::push(int64_t token) {
  ids_.push_back(token);
  const std::string text = tokenizer_.decode(ids_, /*skip_special_tokens=*/true);
  if (ends_with_replacement_char(text) || text.size() <= emitted_) return "";
  std::string piece = text.substr(emitted_);
  emitted_ = text.size();
  return piece;
}

std::string StreamDecoder::finish() {
  const std::string text = tokenizer_.decode(ids_, /*skip_special_tokens=*/true);
  if (text.size() <= emitted_) return "";
  std::string piece = text.substr(emitted_);
  emitted_ = text.size();
  return piece;
}

}  // namespace llmhost
