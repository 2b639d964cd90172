#pragma once
#include <array>
#include <string>
#include <string_view>

namespace llm::tokenizer_detail {

// GPT-2's reversible byte <-> printable-character mapping: byte-level BPE vocabularies spell every
// byte as one visible character ("Ġ" for a space), so merges never see raw control bytes.
class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& instance();

  // The vocabulary spelling of raw bytes ("hello world" -> "helloĠworld").
  std::string encode(std::string_view bytes) const;
  // Appends the raw bytes a vocabulary token spells; a token holding any character outside the
  // alphabet is appended as its own UTF-8 bytes (the Hugging Face ByteLevel decoder does the same).
  void decode_token(std::string_view token, std::string& out_bytes) const;

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> byte_to_text_;
  static constexpr char32_t kMaxCodePoint = 512;  // the mapping only uses U+0021..U+0143
  std::array<int, kMaxCodePoint> code_point_to_byte_{};
};

}  // namespace llm::tokenizer_detail
