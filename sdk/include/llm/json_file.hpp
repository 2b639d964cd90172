#pragma once
#include <filesystem>

#include <nlohmann/json.hpp>

#include "llm/export.hpp"

namespace llm {

using Json = nlohmann::json;

// Parses a JSON file; a missing, unreadable or malformed file throws UserError naming the file
// (and the parser's byte position).
LLM_API Json read_json_file(const std::filesystem::path& path);

// Typed field access with errors that name the file and key ("config.json: 'hidden_size' must be a
// positive integer").
LLM_API int64_t json_int(const Json& j, const char* key, const std::string& source);
LLM_API int64_t json_int_or(const Json& j, const char* key, int64_t fallback, const std::string& source);
LLM_API double json_number_or(const Json& j, const char* key, double fallback, const std::string& source);
LLM_API bool json_bool_or(const Json& j, const char* key, bool fallback, const std::string& source);
LLM_API std::string json_string_or(const Json& j, const char* key, const std::string& fallback,
                                   const std::string& source);

}  // namespace llm
