// libFuzzer target: arbitrary bytes (invalid UTF-8 included) through the fixture tokenizers:
// byte-level BPE (tiny-pythia tokenizer.json) and sentencepiece (tiny-llama tokenizer.model).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "llm/tokenizer.hpp"

namespace {
const std::vector<std::unique_ptr<llm::Tokenizer>>& tokenizers() {
  static const auto loaded = [] {
    std::vector<std::unique_ptr<llm::Tokenizer>> all;
    all.push_back(llm::load_tokenizer(LLMHOST_TEST_DATA_DIR "/tiny-pythia"));
    all.push_back(llm::load_tokenizer(LLMHOST_TEST_DATA_DIR "/tiny-llama"));
    return all;
  }();
  return loaded;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& tokenizer : tokenizers()) {
    llm::fuzz::expect_only_user_errors([&] {
      const auto ids = tokenizer->encode(text);
      (void)tokenizer->decode(ids);
      // Ids straight from the input bytes: decode must reject or render any id, never crash.
      std::vector<int64_t> raw_ids;
      for (size_t i = 0; i + 1 < size && raw_ids.size() < 64; i += 2) {
        raw_ids.push_back(static_cast<int64_t>(data[i]) << 8 | data[i + 1]);
      }
      (void)tokenizer->decode(raw_ids, /*skip_special_tokens=*/true);
    });
  }
  return 0;
}
