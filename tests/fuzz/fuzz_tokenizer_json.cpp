// libFuzzer target: tokenizer.json loading, then encoding and decoding a fixed sample with it.
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "llm/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = llm::fuzz::scratch_dir() / "tokenizer";
  std::filesystem::create_directories(dir);
  llm::fuzz::write_file(dir / "tokenizer.json", data, size);
  llm::fuzz::expect_only_user_errors([&] {
    const auto tokenizer = llm::load_tokenizer(dir);
    static const std::string kSample =
        "Hello world! 123 <|endoftext|>  \n\tcaf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xff invalid";
    const auto ids = tokenizer->encode_for_model(kSample, /*append_eos=*/true);
    (void)tokenizer->decode(ids);
    (void)tokenizer->decode(ids, /*skip_special_tokens=*/true);
    for (int64_t id : {int64_t{0}, tokenizer->vocab_size() - 1}) {
      if (id >= 0) (void)tokenizer->token_text(id);
    }
  });
  return 0;
}
