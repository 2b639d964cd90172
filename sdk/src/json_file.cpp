// Reading JSON files and typed fields with errors that name the file and the key.
#include "llm/json_file.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "llm/error.hpp"

namespace llm {

namespace {

// The parser's message without nlohmann's "[json.exception...] " tag, bounded and printable: it
// quotes the last token read, which can be huge or hold raw bytes.
std::string parser_reason(std::string what) {
  if (!what.empty() && what[0] == '[') {
    const auto close = what.find("] ");
    if (close != std::string::npos) what = what.substr(close + 2);
  }
  if (what.size() > 200) what = what.substr(0, 200) + "...";
  for (char& c : what) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f) c = '?';
  }
  return what;
}

// A value quoted in an error message: one line, bounded length.
std::string brief(const Json& value) {
  // Containers are named, not printed: dumping is recursive and a hostile file can nest deeply.
  if (value.is_structured()) return std::string("an ") + value.type_name();
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

const Json* find_present(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  // A null value (`"pad_token_id": null`) means "not set", as in transformers.
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

int64_t to_int(const Json& value, const char* key, const std::string& source) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw UserError(source + ": '" + key + "' is too large (" + std::to_string(u) + ")");
    }
    return static_cast<int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  // Some writers emit integral floats ("num_hidden_layers": 12.0); accept exact integers only.
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<int64_t>(d);
    }
  }
  throw UserError(source + ": '" + key + "' must be an integer, got " + brief(value));
}

}  // namespace

Json read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw UserError(path.string() + ": file not found");
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw UserError(path.string() + ": is a directory, expected a JSON file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path.string() + ": cannot open for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw UserError(path.string() + ": read error");
  try {
    return Json::parse(buffer.str());
  } catch (const Json::parse_error& e) {
    throw UserError(path.string() + ": invalid JSON at byte " + std::to_string(e.byte) + ": " +
                    parser_reason(e.what()));
  } catch (const Json::exception& e) {
    // The parser throws out_of_range too, for a number too large for a double ("1e605").
    throw UserError(path.string() + ": invalid JSON: " + parser_reason(e.what()));
  }
}

int64_t json_int(const Json& j, const char* key, const std::string& source) {
  const Json* value = find_present(j, key);
  if (value == nullptr) throw UserError(source + ": missing required integer '" + key + "'");
  return to_int(*value, key, source);
}

int64_t json_int_or(const Json& j, const char* key, int64_t fallback, const std::string& source) {
  const Json* value = find_present(j, key);
  return value == nullptr ? fallback : to_int(*value, key, source);
}

double json_number_or(const Json& j, const char* key, double fallback, const std::string& source) {
  const Json* value = find_present(j, key);
  if (value == nullptr) return fallback;
  if (!value->is_number()) {
    throw UserError(source + ": '" + key + "' must be a number, got " + brief(*value));
  }
  const double d = value->get<double>();
  if (!std::isfinite(d)) throw UserError(source + ": '" + key + "' must be finite");
  return d;
}

bool json_bool_or(const Json& j, const char* key, bool fallback, const std::string& source) {
  const Json* value = find_present(j, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    throw UserError(source + ": '" + key + "' must be true or false, got " + brief(*value));
  }
  return value->get<bool>();
}

std::string json_string_or(const Json& j, const char* key, const std::string& fallback,
                           const std::string& source) {
  const Json* value = find_present(j, key);
  if (value == nullptr) return fallback;
  if (!value->is_string()) {
    throw UserError(source + ": '" + key + "' must be a string, got " + brief(*value));
  }
  return value->get<std::string>();
}

}  // namespace llm
