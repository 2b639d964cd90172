#pragma once
#include <string>
#include <vector>

#include "llm/tokenizer.hpp"

namespace llmhost {

// Turns a stream of token ids into text pieces as soon as they are printable. Byte-level BPE and
// sentencepiece byte-fallback tokens can split a UTF-8 character across tokens, and sentencepiece
// drops the leading space of a sequence's first word, so prompt + new tokens are re-decoded as a
// whole (special tokens skipped) and only the new, complete suffix is released.
class StreamDecoder {
 public:
  StreamDecoder(const llm::Tokenizer& tokenizer, std::vector<int64_t> prompt_ids);
  std::string push(int64_t token);  // the newly printable text (maybe empty)
  std::string finish();             // whatever is still held back

 private:
  const llm::Tokenizer& tokenizer_;
  std::vector<int64_t> ids_;
  size_t emitted_ = 0;  // bytes of the decoded text already released
};

}  // namespace llmhost
