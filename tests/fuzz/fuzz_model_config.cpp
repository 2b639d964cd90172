// libFuzzer target: config.json parsing and validation (ModelConfig::from_json).
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "llm/json_file.hpp"
#include "llm/model_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = llm::fuzz::scratch_dir() / "config.json";
  llm::fuzz::write_file(file, data, size);
  llm::fuzz::expect_only_user_errors([&] {
    // Through the file reader, as the host does (it turns parse errors into UserError).
    const llm::Json json = llm::read_json_file(file);
    (void)llm::ModelConfig::from_json(json, "config.json");
  });
  return 0;
}
