#include "metaspace_bpe_tokenizer.hpp"

#include <algorithm>

#include "llm/error.hpp"
#include "tokenizer_json_io.hpp"
#include "tokenizer_json_parts.hpp"

namespace llm::tokenizer_detail {
namespace {

using nlohmann::json;

const json& member(const json& object, const char* key) {
  static const json null_value;
  const auto it = object.find(key);
  return it == object.end() ? null_value : *it;
}

// The members of a Sequence component (`list_key` names them), or the component itself.
std::vector<const json*> steps_of(const json& component, const char* list_key,
                                  const std::string& what, const std::string& source) {
  std::vector<const json*> steps;
  if (component.is_null()) return steps;
  if (component_type(component) != "Sequence") {
    steps.push_back(&component);
    return steps;
  }
  const auto members = component.find(list_key);
  if (members == component.end() || !members->is_array()) {
    throw UserError(source + ": " + what + " 'Sequence' needs a '" + list_key + "' array");
  }
  for (const json& step : *members) {
    for (const json* inner : steps_of(step, list_key, what, source)) steps.push_back(inner);
  }
  return steps;
}

// A Replace pattern: {"String": "..."} (regex patterns are not used by these files).
std::string string_pattern(const json& step, const std::string& what, const std::string& source) {
  const json& pattern = member(step, "pattern");
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    const std::string text = pattern["String"].get<std::string>();
    if (text.empty()) throw UserError(source + ": " + what + " 'Replace' has an empty pattern");
    return text;
  }
  throw UserError(source + ": " + what +
                  " 'Replace' is only supported with a {\"String\": ...} pattern");
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  for (size_t hit = text.find(from); hit != std::string_view::npos; hit = text.find(from, start)) {
    out.append(text, start, hit - start);
    out.append(to);
    start = hit + from.size();
  }
  out.append(text, start, std::string_view::npos);
  return out;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// The single character a Metaspace replacement or Strip content must be.
std::string single_character(const json& step, const char* key, const std::string& fallback,
                             const std::string& what, const std::string& source) {
  const std::string text = string_or(step, key, fallback, source);
  const auto code_points = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  });
  if (code_points != 1 || !is_valid_utf8(text)) {
    throw UserError(source + ": " + what + " '" + key + "' must be a single character");
  }
  return text;
}

size_t count_or(const json& step, const char* key, const std::string& source) {
  const json& value = member(step, key);
  if (value.is_null()) return 0;
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 1 << 20) {
    throw UserError(source + ": decoder 'Strip' '" + key +
                    "' must be a small non-negative integer");
  }
  return static_cast<size_t>(value.get<int64_t>());
}

// <0xNN> -> the byte, as `tokenizers`' ByteFallback decoder reads it.
std::optional<unsigned char> byte_token(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return std::nullopt;
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int high = hex(token[3]), low = hex(token[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<unsigned char>(high * 16 + low);
}

// Bytes gathered by ByteFallback become their text when valid UTF-8, else one U+FFFD per byte.
void flush_bytes(std::string& bytes, std::vector<std::string>& out) {
  if (bytes.empty()) return;
  if (is_valid_utf8(bytes)) {
    out.push_back(bytes);
  } else {
    for (size_t i = 0; i < bytes.size(); ++i) out.emplace_back(kReplacementCharacter);
  }
  bytes.clear();
}

// UTF-8 character boundaries of `text`.
std::vector<size_t> character_starts(std::string_view text) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  return starts;
}

std::string strip(const std::string& token, const std::string& content, size_t start, size_t stop) {
  const std::vector<size_t> starts = character_starts(token);
  const auto character = [&](size_t i) {
    const size_t end = i + 1 < starts.size() ? starts[i + 1] : token.size();
    return std::string_view(token).substr(starts[i], end - starts[i]);
  };
  size_t begin_char = 0;
  while (begin_char < std::min(start, starts.size()) && character(begin_char) == content) {
    ++begin_char;
  }
  size_t end_char = starts.size();
  for (size_t i = 0; i < stop && end_char > 0 && character(end_char - 1) == content; ++i) {
    --end_char;
  }
  if (end_char <= begin_char) return "";
  const size_t from = starts[begin_char];
  const size_t to = end_char < starts.size() ? starts[end_char] : token.size();
  return token.substr(from, to - from);
}

}  // namespace

MetaspaceBpeTokenizer::MetaspaceBpeTokenizer(const json& tokenizer_json,
                                             const std::filesystem::path& file)
    : JsonBpeTokenizer(file.string()) {
  if (!tokenizer_json.is_object()) throw UserError(source_ + ": expected a JSON object");
  parse_normalizer(member(tokenizer_json, "normalizer"));
  parse_pre_tokenizer(member(tokenizer_json, "pre_tokenizer"));

  set_model(parse_bpe_model(member(tokenizer_json, "model"), source_));
  parse_decoder(member(tokenizer_json, "decoder"));
  set_added_tokens(member(tokenizer_json, "added_tokens"),
                   [this](std::string_view text) { return normalize(text); });
}

void MetaspaceBpeTokenizer::parse_normalizer(const json& normalizer) {
  for (const json* step : steps_of(normalizer, "normalizers", "normalizer", source_)) {
    const std::string type = component_type(*step);
    NormalizerStep parsed;
    if (type == "Prepend") {
      parsed.kind = NormalizerStep::Kind::kPrepend;
      parsed.text = string_or(*step, "prepend", "", source_);
    } else if (type == "Replace") {
      parsed.kind = NormalizerStep::Kind::kReplace;
      parsed.text = string_pattern(*step, "normalizer", source_);
      parsed.content = string_or(*step, "content", "", source_);
    } else if (type == "NFC") {
      parsed.form = UnicodeForm::kNFC;
    } else if (type == "NFD") {
      parsed.form = UnicodeForm::kNFD;
    } else if (type == "NFKC") {
      parsed.form = UnicodeForm::kNFKC;
    } else if (type == "NFKD") {
      parsed.form = UnicodeForm::kNFKD;
    } else {
      throw UserError(source_ + ": normalizer '" + type +
                      "' is not supported (expected Prepend, Replace, NFC, NFD, NFKC, NFKD, a "
                      "Sequence of them, or null)");
    }
    normalizers_.push_back(std::move(parsed));
  }
}

void MetaspaceBpeTokenizer::parse_pre_tokenizer(const json& pre_tokenizer) {
  const auto steps = steps_of(pre_tokenizer, "pretokenizers", "pre_tokenizer", source_);
  if (steps.empty()) return;
  const json& step = *steps.front();
  if (steps.size() != 1 || component_type(step) != "Metaspace") {
    const std::string type = component_type(steps.size() == 1 ? step : pre_tokenizer);
    throw UserError(source_ + ": pre_tokenizer '" + type +
                    "' is not supported with a sentencepiece-style vocabulary (expected "
                    "Metaspace, ByteLevel, or null)");
  }
  metaspace_ = true;
  replacement_ =
      single_character(step, "replacement", replacement_, "pre_tokenizer 'Metaspace'", source_);
  // tokenizers >= 0.19 writes prepend_scheme; older files add_prefix_space (true = "always").
  const std::string fallback =
      optional_bool(step, "add_prefix_space", source_).value_or(true) ? "always" : "never";
  const std::string scheme = string_or(step, "prepend_scheme", fallback, source_);
  if (scheme == "always") {
    prepend_scheme_ = Prepend::kAlways;
  } else if (scheme == "first") {
    prepend_scheme_ = Prepend::kFirst;
  } else if (scheme == "never") {
    prepend_scheme_ = Prepend::kNever;
  } else {
    throw UserError(source_ + ": pre_tokenizer 'Metaspace' prepend_scheme '" + scheme +
                    "' is not supported (expected always, first or never)");
  }
  split_on_replacement_ = optional_bool(step, "split", source_).value_or(true);
}

void MetaspaceBpeTokenizer::parse_decoder(const json& decoder) {
  has_decoder_ = !decoder.is_null();
  for (const json* step : steps_of(decoder, "decoders", "decoder", source_)) {
    const std::string type = component_type(*step);
    DecoderStep parsed;
    if (type == "Replace") {
      parsed.kind = DecoderStep::Kind::kReplace;
      parsed.pattern = string_pattern(*step, "decoder", source_);
      parsed.content = string_or(*step, "content", "", source_);
    } else if (type == "ByteFallback") {
      parsed.kind = DecoderStep::Kind::kByteFallback;
    } else if (type == "Fuse") {
      parsed.kind = DecoderStep::Kind::kFuse;
    } else if (type == "Strip") {
      parsed.kind = DecoderStep::Kind::kStrip;
      parsed.pattern = single_character(*step, "content", " ", "decoder 'Strip'", source_);
      parsed.start = count_or(*step, "start", source_);
      parsed.stop = count_or(*step, "stop", source_);
    } else if (type == "Metaspace") {
      parsed.kind = DecoderStep::Kind::kMetaspace;
      parsed.pattern =
          single_character(*step, "replacement", "\xE2\x96\x81", "decoder 'Metaspace'", source_);
      const std::string fallback =
          optional_bool(*step, "add_prefix_space", source_).value_or(true) ? "always" : "never";
      parsed.strip_first_space = string_or(*step, "prepend_scheme", fallback, source_) != "never";
    } else {
      throw UserError(source_ + ": decoder '" + type +
                      "' is not supported with a sentencepiece-style vocabulary (expected "
                      "Replace, ByteFallback, Fuse, Strip, Metaspace, a Sequence of them, or "
                      "null)");
    }
    decoders_.push_back(std::move(parsed));
  }
}

std::string MetaspaceBpeTokenizer::normalize(std::string_view text) const {
  std::string out(text);
  for (const NormalizerStep& step : normalizers_) {
    switch (step.kind) {
      case NormalizerStep::Kind::kPrepend:
        if (!out.empty()) out = step.text + out;  // `tokenizers` leaves empty text alone
        break;
      case NormalizerStep::Kind::kReplace:
        out = replace_all(out, step.text, step.content);
        break;
      case NormalizerStep::Kind::kUnicode:
        out = normalize_unicode(out, step.form);
        break;
    }
  }
  return out;
}

std::vector<int64_t> MetaspaceBpeTokenizer::encode(const std::string& text) const {
  // Python strings are always valid Unicode: invalid bytes become U+FFFD.
  const std::string valid = is_valid_utf8(text) ? std::string() : to_valid_utf8(text);
  const std::string_view input = valid.empty() ? std::string_view(text) : std::string_view(valid);

  std::vector<int64_t> ids;
  ids.reserve(input.size() / 3 + 1);
  for (const TextSegment& raw : raw_added_tokens_.split(input)) {
    if (raw.token_id >= 0) {
      ids.push_back(raw.token_id);
      continue;
    }
    // Metaspace's "first" scheme prepends only to the text at the very start of the input.
    const bool raw_at_start = raw.text.data() == input.data();
    const std::string normalized = normalize(raw.text);
    for (const TextSegment& piece : normalized_added_tokens_.split(normalized)) {
      if (piece.token_id >= 0) {
        ids.push_back(piece.token_id);
      } else {
        encode_piece(piece.text, raw_at_start && piece.text.data() == normalized.data(), ids);
      }
    }
  }
  return ids;
}

void MetaspaceBpeTokenizer::encode_piece(std::string_view piece, bool at_start,
                                         std::vector<int64_t>& ids) const {
  if (piece.empty()) return;
  if (!metaspace_) {
    model_->encode_word(piece, ids);
    return;
  }
  std::string text = replace_all(piece, " ", replacement_);
  const bool prepend =
      prepend_scheme_ == Prepend::kAlways || (prepend_scheme_ == Prepend::kFirst && at_start);
  if (prepend && !starts_with(text, replacement_)) text = replacement_ + text;
  if (!split_on_replacement_) {
    model_->encode_word(text, ids);
    return;
  }
  // Split "merged with next": each replacement character starts a new word.
  size_t start = 0;
  for (size_t hit = text.find(replacement_, 1); hit != std::string::npos;
       hit = text.find(replacement_, hit + replacement_.size())) {
    model_->encode_word(std::string_view(text).substr(start, hit - start), ids);
    start = hit;
  }
  model_->encode_word(std::string_view(text).substr(start), ids);
}

std::string MetaspaceBpeTokenizer::decode(const std::vector<int64_t>& ids,
                                          bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    if (const std::string* token = decoded_token(id, skip_special_tokens)) {
      tokens.push_back(*token);
    }
  }
  // `tokenizers` joins the tokens with spaces when the file has no decoder.
  if (!has_decoder_) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
    return finish_decoded_text(joined);
  }
  for (const DecoderStep& step : decoders_) {
    switch (step.kind) {
      case DecoderStep::Kind::kReplace:
        for (std::string& token : tokens) token = replace_all(token, step.pattern, step.content);
        break;
      case DecoderStep::Kind::kByteFallback: {
        std::vector<std::string> out;
        out.reserve(tokens.size());
        std::string bytes;
        for (std::string& token : tokens) {
          if (const auto byte = byte_token(token)) {
            bytes.push_back(static_cast<char>(*byte));
            continue;
          }
          flush_bytes(bytes, out);
          out.push_back(std::move(token));
        }
        flush_bytes(bytes, out);
        tokens = std::move(out);
        break;
      }
      case DecoderStep::Kind::kFuse: {
        std::string fused;
        for (const std::string& token : tokens) fused += token;
        tokens.assign(1, std::move(fused));
        break;
      }
      case DecoderStep::Kind::kStrip:
        for (std::string& token : tokens) token = strip(token, step.pattern, step.start, step.stop);
        break;
      case DecoderStep::Kind::kMetaspace:
        // `tokenizers` drops every replacement character of the first token (not only a
        // leading one) unless the scheme is "never"; elsewhere each becomes a space.
        for (size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] =
              replace_all(tokens[i], step.pattern, i == 0 && step.strip_first_space ? "" : " ");
        }
        break;
    }
  }
  std::string text;
  for (const std::string& token : tokens) text += token;
  return finish_decoded_text(to_valid_utf8(text));
}

}  // namespace llm::tokenizer_detail
