#pragma once
// A strict little XML reader for the tests of the SVG writers: it accepts a prolog, comments,
// elements, attributes and text with the predefined and numeric character references, and throws
// on anything that is not well-formed (unclosed or crossed tags, duplicate attributes, a bare '&'
// or '<', text outside the root). Enough to prove a chart opens in a browser's XML parser.
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace llm::test {

struct XmlElement {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::vector<XmlElement> children;
  std::string text;  // character data directly inside, concatenated

  std::string attribute(const std::string& key) const {
    const auto it = attributes.find(key);
    return it == attributes.end() ? std::string() : it->second;
  }
  // Every descendant (depth first) named `element_name` whose class attribute is `css_class`
  // (any class when empty).
  void find_all(const std::string& element_name, const std::string& css_class,
                std::vector<const XmlElement*>& found) const {
    for (const auto& child : children) {
      if (child.name == element_name &&
          (css_class.empty() || child.attribute("class") == css_class))
        found.push_back(&child);
      child.find_all(element_name, css_class, found);
    }
  }
  std::vector<const XmlElement*> find_all(const std::string& element_name,
                                          const std::string& css_class = "") const {
    std::vector<const XmlElement*> found;
    find_all(element_name, css_class, found);
    return found;
  }
};

class XmlReader {
 public:
  explicit XmlReader(const std::string& text) : s_(text) {}

  XmlElement document() {
    skip_misc();
    if (!starts_with("<")) fail("expected the root element");
    XmlElement root = element();
    skip_misc();
    if (pos_ != s_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("XML not well-formed at byte " + std::to_string(pos_) + ": " + what);
  }
  bool starts_with(const char* prefix) const {
    return s_.compare(pos_, std::strlen(prefix), prefix) == 0;
  }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void skip_until(const char* end) {
    const auto found = s_.find(end, pos_);
    if (found == std::string::npos) fail(std::string("missing '") + end + "'");
    pos_ = found + std::strlen(end);
  }
  // Whitespace, comments and processing instructions (the <?xml ...?> declaration) around the root.
  void skip_misc() {
    for (;;) {
      skip_space();
      if (starts_with("<?")) {
        skip_until("?>");
      } else if (starts_with("<!--")) {
        skip_until("-->");
      } else {
        return;
      }
    }
  }
  static bool name_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  }
  static bool name_char(char c) {
    return name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  }
  std::string name() {
    if (pos_ >= s_.size() || !name_start(s_[pos_])) fail("expected a name");
    const size_t start = pos_;
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  // Decodes one reference after '&'.
  std::string reference() {
    const auto end = s_.find(';', pos_);
    if (end == std::string::npos || end - pos_ > 10) fail("'&' that starts no reference");
    const std::string ref = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    if (ref == "lt") return "<";
    if (ref == "gt") return ">";
    if (ref == "amp") return "&";
    if (ref == "quot") return "\"";
    if (ref == "apos") return "'";
    if (ref.size() > 1 && ref[0] == '#') {
      const bool hex = ref[1] == 'x';
      const std::string digits = ref.substr(hex ? 2 : 1);
      if (digits.empty() || digits.find_first_not_of(hex ? "0123456789abcdefABCDEF"
                                                         : "0123456789") != std::string::npos)
        fail("bad character reference &" + ref + ";");
      const unsigned long code = std::stoul(digits, nullptr, hex ? 16 : 10);
      if (code < 0x80) return std::string(1, static_cast<char>(code));
      return "?";  // non-ASCII: well-formed is all the tests need
    }
    fail("unknown entity &" + ref + ";");
  }
  std::string quoted() {
    if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) fail("expected a quote");
    const char quote = s_[pos_++];
    std::string value;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      const char c = s_[pos_++];
      if (c == '<') fail("'<' in an attribute value");
      if (c == '&') {
        value += reference();
      } else {
        value += c;
      }
    }
    if (pos_ >= s_.size()) fail("unterminated attribute value");
    ++pos_;
    return value;
  }
  XmlElement element() {
    ++pos_;  // '<'
    XmlElement e;
    e.name = name();
    for (;;) {
      const size_t before = pos_;
      skip_space();
      if (starts_with("/>")) {
        pos_ += 2;
        return e;
      }
      if (starts_with(">")) {
        ++pos_;
        break;
      }
      if (pos_ == before) fail("expected whitespace before an attribute");
      const std::string key = name();
      skip_space();
      if (!starts_with("=")) fail("expected '=' after attribute " + key);
      ++pos_;
      skip_space();
      if (!e.attributes.emplace(key, quoted()).second) fail("duplicate attribute " + key);
    }
    for (;;) {
      if (pos_ >= s_.size()) fail("element <" + e.name + "> is not closed");
      if (starts_with("</")) {
        pos_ += 2;
        if (name() != e.name) fail("closing tag does not match <" + e.name + ">");
        skip_space();
        if (!starts_with(">")) fail("expected '>'");
        ++pos_;
        return e;
      }
      if (starts_with("<!--")) {
        skip_until("-->");
      } else if (starts_with("<")) {
        e.children.push_back(element());
      } else if (s_[pos_] == '&') {
        ++pos_;
        e.text += reference();
      } else if (s_[pos_] == '>' && pos_ >= 2 && s_.compare(pos_ - 2, 2, "]]") == 0) {
        fail("']]>' in text");
      } else {
        e.text += s_[pos_++];
      }
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
};

inline XmlElement parse_xml(const std::string& text) { return XmlReader(text).document(); }

}  // namespace llm::test
