#include "utf8_text.hpp"

#include <cstdlib>
#include <memory>
#include <stdexcept>

#include <utf8proc.h>

namespace llm::tokenizer_detail {
namespace {

// Length of the valid UTF-8 prefix of a sequence starting at bytes[pos] (Unicode Table 3-7):
// returns the full sequence length when valid, else how many bytes form the maximal invalid
// subpart (at least 1), with `valid` telling which.
size_t scan_sequence(std::string_view bytes, size_t pos, bool& valid) {
  const auto byte_at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = byte_at(pos);
  valid = true;
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char second_low = 0x80, second_high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_low = 0xA0;
    if (lead == 0xED) second_high = 0x9F;  // no UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_low = 0x90;
    if (lead == 0xF4) second_high = 0x8F;  // nothing above U+10FFFF
  } else {
    valid = false;
    return 1;
  }
  for (size_t k = 1; k < length; ++k) {
    const bool in_range =
        pos + k < bytes.size() &&
        (k == 1 ? (byte_at(pos + k) >= second_low && byte_at(pos + k) <= second_high)
                : (byte_at(pos + k) >= 0x80 && byte_at(pos + k) <= 0xBF));
    if (!in_range) {
      valid = false;
      return k;
    }
  }
  return length;
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
  for (size_t pos = 0; pos < bytes.size();) {
    bool valid = false;
    pos += scan_sequence(bytes, pos, valid);
    if (!valid) return false;
  }
  return true;
}

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    bool valid = false;
    const size_t length = scan_sequence(bytes, pos, valid);
    if (valid) {
      out.append(bytes.substr(pos, length));
    } else {
      out.append(kReplacementCharacter);
    }
    pos += length;
  }
  return out;
}

std::string normalize_unicode(std::string_view text, UnicodeForm form) {
  if (form == UnicodeForm::kNone || text.empty()) return std::string(text);
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(text);  // every normal form leaves ASCII unchanged

  int options = UTF8PROC_STABLE;
  switch (form) {
    case UnicodeForm::kNFC:
      options |= UTF8PROC_COMPOSE;
      break;
    case UnicodeForm::kNFD:
      options |= UTF8PROC_DECOMPOSE;
      break;
    case UnicodeForm::kNFKC:
      options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    case UnicodeForm::kNFKD:
      options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
    case UnicodeForm::kNone:
      break;
  }
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t length = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
      static_cast<utf8proc_ssize_t>(text.size()), &mapped, static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(mapped, &std::free);
  // Callers pass valid UTF-8, so a failure here is an allocation failure, not bad input.
  if (length < 0) throw std::runtime_error(std::string("utf8proc: ") + utf8proc_errmsg(length));
  return std::string(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length));
}

void append_utf8(std::string& out, char32_t code_point) {
  utf8proc_uint8_t buffer[4];
  const utf8proc_ssize_t length =
      utf8proc_encode_char(static_cast<utf8proc_int32_t>(code_point), buffer);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

}  // namespace llm::tokenizer_detail
