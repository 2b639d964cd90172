#pragma once
// Private to the safetensors sources: tensor names quoted for one-line error messages.
#include <string>

namespace llm::safetensors_detail {

// 'name' with control characters replaced and long names shortened: names come from untrusted
// headers and the message must stay one readable line.
inline std::string quoted_name(const std::string& name) {
  constexpr size_t kMaxShown = 120;
  std::string shown = name.size() > kMaxShown ? name.substr(0, kMaxShown) + "..." : name;
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return "'" + shown + "'";
}

// A parser's message made safe to print on one line: nlohmann quotes the last token read, which
// in a hostile header can be megabytes long and hold raw bytes.
inline std::string printable_reason(std::string reason) {
  if (!reason.empty() && reason[0] == '[') {
    const auto tag_end = reason.find("] ");  // drop "[json.exception.parse_error.101] "
    if (tag_end != std::string::npos) reason = reason.substr(tag_end + 2);
  }
  constexpr size_t kMaxShown = 200;
  if (reason.size() > kMaxShown) reason = reason.substr(0, kMaxShown) + "...";
  for (char& c : reason) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f) c = '?';
  }
  return reason;
}

}  // namespace llm::safetensors_detail
