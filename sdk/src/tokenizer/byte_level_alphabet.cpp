#include "byte_level_alphabet.hpp"

#include <utf8proc.h>

#include "utf8_text.hpp"

namespace llm::tokenizer_detail {

const ByteLevelAlphabet& ByteLevelAlphabet::instance() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  code_point_to_byte_.fill(-1);
  const auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  // Printable Latin-1 bytes keep their own code point; the rest take U+0100 upwards, in byte order.
  char32_t next_free = 256;
  for (int b = 0; b < 256; ++b) {
    const char32_t code_point = printable(b) ? static_cast<char32_t>(b) : next_free++;
    append_utf8(byte_to_text_[b], code_point);
    code_point_to_byte_[code_point] = b;
  }
}

std::string ByteLevelAlphabet::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_text_[static_cast<unsigned char>(c)];
  return out;
}

void ByteLevelAlphabet::decode_token(std::string_view token, std::string& out_bytes) const {
  const size_t start = out_bytes.size();
  const auto* data = reinterpret_cast<const utf8proc_uint8_t*>(token.data());
  for (size_t pos = 0; pos < token.size();) {
    utf8proc_int32_t code_point = -1;
    const utf8proc_ssize_t length = utf8proc_iterate(
        data + pos, static_cast<utf8proc_ssize_t>(token.size() - pos), &code_point);
    if (length <= 0 || code_point < 0 || code_point >= static_cast<int>(kMaxCodePoint) ||
        code_point_to_byte_[static_cast<size_t>(code_point)] < 0) {
      out_bytes.resize(start);
      out_bytes.append(token);
      return;
    }
    out_bytes.push_back(static_cast<char>(code_point_to_byte_[static_cast<size_t>(code_point)]));
    pos += static_cast<size_t>(length);
  }
}

}  // namespace llm::tokenizer_detail
