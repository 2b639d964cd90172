// libFuzzer target: see llm::fuzz::model_config_input in fuzz_bodies.hpp.
#include "fuzz/fuzz_bodies.hpp"
#include "fuzz/fuzz_main_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  llm::fuzz::model_config_input(data, size);
  return 0;
}
