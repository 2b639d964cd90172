#include "tokenizer_json_io.hpp"

#include <fstream>
#include <sstream>

#include "llm/error.hpp"

namespace llm::tokenizer_detail {

nlohmann::json read_tokenizer_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path.string() + ": cannot open file (expected a readable JSON file)");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError(path.string() + ": malformed JSON at byte " + std::to_string(e.byte));
  } catch (const nlohmann::json::exception&) {
    // The parser throws out_of_range too, for a number too large for a double ("1e605").
    throw UserError(path.string() + ": malformed JSON (a number out of range)");
  }
}

std::optional<std::string> token_content(const nlohmann::json& object, const char* key,
                                         const std::string& source) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  throw UserError(source + ": '" + key + "' must be a string or an object with a string 'content'");
}

std::optional<bool> optional_bool(const nlohmann::json& object, const char* key,
                                  const std::string& source) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) throw UserError(source + ": '" + key + "' must be true or false");
  return it->get<bool>();
}

}  // namespace llm::tokenizer_detail
