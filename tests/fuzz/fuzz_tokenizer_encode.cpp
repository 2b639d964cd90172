// libFuzzer target: arbitrary text through the fixture tokenizers, byte-level BPE (tiny-pythia
// tokenizer.json) and sentencepiece (tiny-llama tokenizer.model).
#include "fuzz/fuzz_bodies.hpp"
#include "fuzz/fuzz_main_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto pythia = llm::load_tokenizer(LLMHOST_TEST_DATA_DIR "/tiny-pythia");
  static const auto llama = llm::load_tokenizer(LLMHOST_TEST_DATA_DIR "/tiny-llama");
  llm::fuzz::tokenizer_encode_input(*pythia, data, size);
  llm::fuzz::tokenizer_encode_input(*llama, data, size);
  return 0;
}
