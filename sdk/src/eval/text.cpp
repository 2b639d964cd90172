#include "llm/eval/text.hpp"

#include <utility>
#include <vector>

namespace llm {

namespace {

// Decodes the code point starting at `pos`; an invalid sequence yields its first byte, length 1.
std::pair<char32_t, std::size_t> decode_utf8(std::string_view s, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(pos);
  if (lead < 0x80) return {lead, 1};
  std::size_t length = 0;
  char32_t cp = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    cp = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    cp = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    cp = lead & 0x07;
  } else {
    return {lead, 1};
  }
  if (pos + length > s.size()) return {lead, 1};
  for (std::size_t i = 1; i < length; ++i) {
    const unsigned char c = byte(pos + i);
    if ((c & 0xC0) != 0x80) return {lead, 1};
    cp = (cp << 6) | (c & 0x3F);
  }
  return {cp, length};
}

std::string replace_all(const std::string& text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (true) {
    const auto hit = text.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(text, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text, pos, std::string::npos);
  return out;
}

// re.sub(r"/' [0-9]/", r"/'[0-9]/", text): the harness's literal replacement, kept verbatim.
std::string replace_slash_quote_digit(const std::string& text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (i + 5 <= text.size() && text.compare(i, 3, "/' ") == 0 && text[i + 3] >= '0' &&
        text[i + 3] <= '9' && text[i + 4] == '/') {
      out += "/'[0-9]/";
      i += 5;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string strip_python_whitespace(std::string_view s) {
  std::size_t begin = 0;
  while (begin < s.size()) {
    const auto [cp, len] = decode_utf8(s, begin);
    if (!python_isspace(cp)) break;
    begin += len;
  }
  std::size_t end = begin;
  std::size_t pos = begin;
  while (pos < s.size()) {
    const auto [cp, len] = decode_utf8(s, pos);
    pos += len;
    if (!python_isspace(cp)) end = pos;
  }
  return std::string(s.substr(begin, end - begin));
}

// re.sub(opener \s*([^closer]*?)\s* closer, opener \1 closer): pairs each opener with the next
// closer and strips whitespace just inside them.
std::string strip_inside_pairs(const std::string& text, char opener, char closer) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == opener) {
      const auto close = text.find(closer, i + 1);
      if (close != std::string::npos) {
        out += opener;
        out += strip_python_whitespace(std::string_view(text).substr(i + 1, close - i - 1));
        out += closer;
        i = close + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace

bool python_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::size_t trailing_whitespace_bytes(std::string_view text) {
  std::size_t run_start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto [cp, len] = decode_utf8(text, pos);
    if (!python_isspace(cp)) run_start = pos + len;
    pos += len;
  }
  return text.size() - run_start;
}

std::size_t python_split_word_count(std::string_view text) {
  std::size_t runs = 0;
  bool in_run = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto [cp, len] = decode_utf8(text, pos);
    const bool space = python_isspace(cp);
    if (space && !in_run) ++runs;
    in_run = space;
    pos += len;
  }
  return runs + 1;
}

std::size_t code_point_count(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t pos = 0; pos < text.size(); ++count) pos += decode_utf8(text, pos).second;
  return count;
}

std::string wikitext_detokenize(const std::string& page) {
  std::string s = replace_all(page, "s '", "s'");
  s = replace_slash_quote_digit(s);
  static const std::vector<std::pair<std::string_view, std::string_view>> kNumberAndPunct{
      {" @-@ ", "-"}, {" @,@ ", ","}, {" @.@ ", "."}, {" : ", ": "}, {" ; ", "; "},
      {" . ", ". "},  {" ! ", "! "},  {" ? ", "? "},  {" , ", ", "}};
  for (const auto& [from, to] : kNumberAndPunct) s = replace_all(s, from, to);
  s = strip_inside_pairs(s, '(', ')');
  s = strip_inside_pairs(s, '[', ']');
  s = strip_inside_pairs(s, '{', '}');
  s = strip_inside_pairs(s, '"', '"');
  s = strip_inside_pairs(s, '\'', '\'');
  static const std::vector<std::pair<std::string_view, std::string_view>> kHeadingsAndSpaces{
      {"= = = =", "===="}, {"= = =", "==="}, {"= =", "=="},  {" \u00b0 ", "\u00b0"},
      {" \n", "\n"},       {"\n ", "\n"},    {" N ", " 1 "}, {" 's", "'s"}};
  for (const auto& [from, to] : kHeadingsAndSpaces) s = replace_all(s, from, to);
  return s;
}

}  // namespace llm
