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

}  // namespace llm::safetensors_detail
