#pragma once
// One function per fuzz target: what one input goes through. The libFuzzer mains (fuzz_*.cpp) and
// the regression replay test (tests/sdk/fuzz_regression_test.cpp) share them.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "llm/dataset.hpp"
#include "llm/json_file.hpp"
#include "llm/model_config.hpp"
#include "llm/safetensors.hpp"
#include "llm/tokenizer.hpp"

namespace llm::fuzz {

// A .safetensors file: header parser, offset/shape checks, and every tensor view read in full.
inline void safetensors_input(const uint8_t* data, size_t size) {
  const auto file = scratch_dir() / "input.safetensors";
  write_file(file, data, size);
  expect_only_user_errors([&] {
    SafetensorsFile st(file);
    for (const auto& info : st.tensors()) {
      const auto view = st.tensor(info.name);
      if (view.numel() > 0) (void)view.reshape({-1}).view(torch::kUInt8).sum().item<int64_t>();
    }
  });
}

// config.json through the file reader and ModelConfig::from_json, as the host reads it.
inline void model_config_input(const uint8_t* data, size_t size) {
  const auto file = scratch_dir() / "config.json";
  write_file(file, data, size);
  expect_only_user_errors([&] {
    const Json json = read_json_file(file);
    (void)ModelConfig::from_json(json, "config.json");
  });
}

// tokenizer.json loading, then a fixed sample encoded and decoded with it.
inline void tokenizer_json_input(const uint8_t* data, size_t size) {
  const auto dir = scratch_dir() / "tokenizer";
  std::filesystem::create_directories(dir);
  write_file(dir / "tokenizer.json", data, size);
  expect_only_user_errors([&] {
    const auto tokenizer = load_tokenizer(dir);
    static const std::string kSample =
        "Hello world! 123 <|endoftext|>  \n\tcaf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xff invalid";
    const auto ids = tokenizer->encode_for_model(kSample, /*append_eos=*/true);
    (void)tokenizer->decode(ids);
    (void)tokenizer->decode(ids, /*skip_special_tokens=*/true);
    if (tokenizer->vocab_size() > 0) (void)tokenizer->token_text(tokenizer->vocab_size() - 1);
  });
}

// Arbitrary bytes (invalid UTF-8 included) encoded and decoded by a known-good tokenizer; ids
// made from the bytes decoded too (decode must reject or render any id).
inline void tokenizer_encode_input(const Tokenizer& tokenizer, const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  expect_only_user_errors([&] {
    const auto ids = tokenizer.encode(text);
    (void)tokenizer.decode(ids);
    std::vector<int64_t> raw_ids;
    for (size_t i = 0; i + 1 < size && raw_ids.size() < 64; i += 2) {
      raw_ids.push_back(static_cast<int64_t>(data[i]) << 8 | data[i + 1]);
    }
    (void)tokenizer.decode(raw_ids, /*skip_special_tokens=*/true);
  });
}

// A dataset plugin's read() on a file holding the input, strict and with --skip_bad_records.
inline void dataset_input(const Dataset& dataset, const uint8_t* data, size_t size) {
  const auto file = scratch_dir() / "records.data";
  write_file(file, data, size);
  for (bool skip : {false, true}) {
    expect_only_user_errors([&] {
      DatasetReadOptions options;
      options.skip_bad_records = skip;
      (void)dataset.read(file, options);
    });
  }
}

}  // namespace llm::fuzz
