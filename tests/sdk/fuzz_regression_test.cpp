// Replays every input the fuzzers ever crashed on (tests/fuzz/regressions/<target>/*), plus the
// seeds, through the same code the fuzz targets run (tests/fuzz/fuzz_bodies.hpp): each must end
// in success or llm::UserError, nothing else. Runs in the plain and the sanitizer build.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_bodies.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

void llm::fuzz::on_unexpected_exception(const char* what) {
  ADD_FAILURE() << "exception other than UserError: " << what;
}

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_of(const std::string& target) {
  std::vector<fs::path> files;
  for (const char* kind : {"regressions", "seeds"}) {
    const fs::path dir = llm::test::source_dir() / "tests/fuzz" / kind / target;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path());
  }
  return files;
}

template <typename Body>
void replay(const std::string& target, Body&& body) {
  for (const auto& file : inputs_of(target)) {
    SCOPED_TRACE(file.string());
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    body(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
}

TEST(FuzzRegression, SafetensorsInputsEndInUserErrorOrSuccess) {
  replay("safetensors", llm::fuzz::safetensors_input);
}

TEST(FuzzRegression, ModelConfigInputsEndInUserErrorOrSuccess) {
  replay("model_config", llm::fuzz::model_config_input);
}

TEST(FuzzRegression, TokenizerJsonInputsEndInUserErrorOrSuccess) {
  replay("tokenizer_json", llm::fuzz::tokenizer_json_input);
}

TEST(FuzzRegression, TextThroughBothTokenizersEndsInUserErrorOrSuccess) {
  const auto pythia = llm::load_tokenizer(llm::test::data_dir() / "tiny-pythia");
  const auto llama = llm::load_tokenizer(llm::test::data_dir() / "tiny-llama");
  ASSERT_FALSE(inputs_of("tokenizer_encode").empty());
  replay("tokenizer_encode", [&](const uint8_t* data, size_t size) {
    llm::fuzz::tokenizer_encode_input(*pythia, data, size);
    llm::fuzz::tokenizer_encode_input(*llama, data, size);
  });
}

TEST(FuzzRegression, DatasetRecordsEndInUserErrorOrSuccess) {
  llmhost::PluginRegistry registry;
  registry.load_directories({llm::test::plugin_dir()});
  for (const char* name : {"dolly", "alpaca"}) {
    const auto dataset = registry.dataset(name);
    replay(name, [&](const uint8_t* data, size_t size) {
      llm::fuzz::dataset_input(*dataset, data, size);
    });
  }
}

}  // namespace
