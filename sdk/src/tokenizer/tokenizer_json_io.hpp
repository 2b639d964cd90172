#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace llm::tokenizer_detail {

// Parses a JSON file; a missing, unreadable or malformed file throws UserError naming it.
// (Private twin of llm::read_json_file, kept here so the tokenizer does not depend on its timing.)
nlohmann::json read_tokenizer_json(const std::filesystem::path& path);

// The text of a token field given either as a string or as an AddedToken object
// {"content": ...}; nullopt when absent or null. Other shapes throw UserError naming `source`.
std::optional<std::string> token_content(const nlohmann::json& object, const char* key,
                                         const std::string& source);

// A boolean field; nullopt when absent or null, UserError naming `source` when not a boolean.
std::optional<bool> optional_bool(const nlohmann::json& object, const char* key,
                                  const std::string& source);

}  // namespace llm::tokenizer_detail
