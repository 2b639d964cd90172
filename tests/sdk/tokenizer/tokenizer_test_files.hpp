#pragma once
// Helpers for tokenizer tests: fixture files and hand-edited copies of them in temp directories.
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

namespace llm::test {

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline void write_json(const std::filesystem::path& path, const nlohmann::json& value) {
  write_text(path, value.dump());
}

inline nlohmann::json pythia_tokenizer_json() {
  return read_json(data_dir() / "tiny-pythia" / "tokenizer.json");
}

inline nlohmann::json golden_tokenizer_cases(const std::string& key) {
  return read_json(data_dir() / "golden" / "tokenizers.json").at(key);
}

}  // namespace llm::test
