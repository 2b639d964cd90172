#include "byte_level_bpe_tokenizer.hpp"

#include <algorithm>

#include "byte_level_alphabet.hpp"
#include "llm/error.hpp"
#include "tokenizer_json_io.hpp"
#include "tokenizer_json_parts.hpp"

namespace llm::tokenizer_detail {
namespace {

using nlohmann::json;

// The steps of a pre_tokenizer: the object itself, or the members of a Sequence.
std::vector<const json*> pre_tokenizer_steps(const json& pre_tokenizer) {
  std::vector<const json*> steps;
  if (component_type(pre_tokenizer) == "Sequence") {
    const auto members = pre_tokenizer.find("pretokenizers");
    if (members != pre_tokenizer.end() && members->is_array()) {
      for (const json& step : *members) steps.push_back(&step);
    }
  } else if (!pre_tokenizer.is_null()) {
    steps.push_back(&pre_tokenizer);
  }
  return steps;
}

bool bool_or(const json& object, const char* key, bool fallback, const std::string& source) {
  return optional_bool(object, key, source).value_or(fallback);
}

// A Split step's pattern: {"Regex": "..."} or {"String": "..."} (the latter taken literally).
std::unique_ptr<RegexPreTokenizer> parse_split(const json& split, const std::string& source) {
  const std::string behavior = string_or(split, "behavior", "", source);
  if (behavior != "Isolated") {
    throw UserError(source + ": pre_tokenizer 'Split' with behavior '" + behavior +
                    "' is not supported (expected Isolated)");
  }
  if (bool_or(split, "invert", false, source)) {
    throw UserError(source + ": pre_tokenizer 'Split' with invert true is not supported");
  }
  const auto pattern = split.find("pattern");
  if (pattern != split.end() && pattern->is_object()) {
    for (const auto& [kind, literal] : {std::pair<const char*, bool>{"Regex", false},
                                        std::pair<const char*, bool>{"String", true}}) {
      const auto text = pattern->find(kind);
      if (text != pattern->end() && text->is_string()) {
        return std::make_unique<RegexPreTokenizer>(text->get<std::string>(), literal, source);
      }
    }
  }
  throw UserError(source +
                  ": pre_tokenizer 'Split' needs a pattern {\"Regex\": ...} or {\"String\": ...}");
}

}  // namespace

bool is_byte_level_tokenizer_json(const json& tokenizer_json) {
  if (!tokenizer_json.is_object()) return false;
  const auto pre_tokenizer = tokenizer_json.find("pre_tokenizer");
  if (pre_tokenizer == tokenizer_json.end()) return false;
  for (const json* step : pre_tokenizer_steps(*pre_tokenizer)) {
    if (component_type(*step) == "ByteLevel") return true;
  }
  return false;
}

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(const json& tokenizer_json,
                                             const std::filesystem::path& file)
    : JsonBpeTokenizer(file.string()) {
  if (!tokenizer_json.is_object()) throw UserError(source_ + ": expected a JSON object");
  const auto member = [&](const char* key) -> const json& {
    static const json null_value;
    const auto it = tokenizer_json.find(key);
    return it == tokenizer_json.end() ? null_value : *it;
  };
  parse_normalizer(member("normalizer"));
  parse_pre_tokenizer(member("pre_tokenizer"));
  ParsedBpeModel parsed = parse_bpe_model(member("model"), source_);
  // Byte-level vocabularies cover all 256 bytes: nothing is unknown, nothing falls back.
  parsed.options.byte_fallback = false;
  parsed.options.unk_id.reset();
  set_model(std::move(parsed));
  set_added_tokens(member("added_tokens"),
                   [this](std::string_view text) { return normalize(text); });
}

void ByteLevelBpeTokenizer::parse_normalizer(const json& normalizer) {
  if (normalizer.is_null()) return;
  const std::string type = component_type(normalizer);
  if (type == "Sequence") {
    const auto steps = normalizer.find("normalizers");
    if (steps == normalizer.end() || !steps->is_array()) {
      throw UserError(source_ + ": normalizer 'Sequence' needs a 'normalizers' array");
    }
    for (const json& step : *steps) parse_normalizer(step);
  } else if (type == "NFC") {
    normalizers_.push_back(UnicodeForm::kNFC);
  } else if (type == "NFD") {
    normalizers_.push_back(UnicodeForm::kNFD);
  } else if (type == "NFKC") {
    normalizers_.push_back(UnicodeForm::kNFKC);
  } else if (type == "NFKD") {
    normalizers_.push_back(UnicodeForm::kNFKD);
  } else {
    throw UserError(
        source_ + ": normalizer '" + type +
        "' is not supported (expected NFC, NFD, NFKC, NFKD, a Sequence of them, or null)");
  }
}

void ByteLevelBpeTokenizer::parse_pre_tokenizer(const json& pre_tokenizer) {
  const std::vector<const json*> steps = pre_tokenizer_steps(pre_tokenizer);
  // Split steps, then the ByteLevel step last: Llama 3 and Qwen2 split with their own pattern and
  // turn off ByteLevel's (use_regex false); GPT-2 and GPT-NeoX have ByteLevel alone.
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& step = *steps[i];
    const std::string type = component_type(step);
    if (type == "ByteLevel" && i + 1 == steps.size()) {
      add_prefix_space_ = bool_or(step, "add_prefix_space", false, source_);
      if (bool_or(step, "use_regex", true, source_)) {
        byte_level_regex_ = std::make_unique<RegexPreTokenizer>(kGpt2SplitPattern, false, source_);
      }
      return;
    }
    if (type == "Split" && i + 1 < steps.size()) {
      splits_.push_back(parse_split(step, source_));
      continue;
    }
    throw UserError(source_ + ": pre_tokenizer '" + type +
                    "' is not supported here (expected ByteLevel, alone or after Split steps, as "
                    "GPT-2, GPT-NeoX, Llama 3 and Qwen2 use)");
  }
  throw UserError(source_ + ": pre_tokenizer '" + component_type(pre_tokenizer) +
                  "' is not supported (expected ByteLevel, as GPT-2 and GPT-NeoX use)");
}

std::string ByteLevelBpeTokenizer::normalize(std::string_view text) const {
  std::string out(text);
  for (UnicodeForm form : normalizers_) out = normalize_unicode(out, form);
  return out;
}

std::vector<int64_t> ByteLevelBpeTokenizer::encode(const std::string& text) const {
  // Python strings are always valid Unicode; bytes that are not valid UTF-8 become U+FFFD, as
  // reading the text with errors="replace" would give.
  const std::string valid = is_valid_utf8(text) ? std::string() : to_valid_utf8(text);
  const std::string_view input = valid.empty() ? std::string_view(text) : std::string_view(valid);

  std::vector<int64_t> ids;
  ids.reserve(input.size() / 3 + 1);
  for (const TextSegment& raw : raw_added_tokens_.split(input)) {
    if (raw.token_id >= 0) {
      ids.push_back(raw.token_id);
      continue;
    }
    const std::string normalized = normalize(raw.text);
    for (const TextSegment& piece : normalized_added_tokens_.split(normalized)) {
      if (piece.token_id >= 0) {
        ids.push_back(piece.token_id);
      } else {
        encode_plain_text(piece.text, ids);
      }
    }
  }
  return ids;
}

void ByteLevelBpeTokenizer::encode_plain_text(std::string_view text,
                                              std::vector<int64_t>& ids) const {
  if (text.empty()) return;
  if (splits_.empty()) {
    encode_byte_level(text, ids);
    return;
  }
  std::vector<std::string_view> pieces{text};
  for (const auto& split : splits_) {
    std::vector<std::string_view> finer;
    for (std::string_view piece : pieces) {
      for (std::string_view word : split->split(piece)) finer.push_back(word);
    }
    pieces = std::move(finer);
  }
  for (std::string_view piece : pieces) encode_byte_level(piece, ids);
}

// The ByteLevel pre-tokenizer on one piece: prefix space, GPT-2 regex, bytes to the alphabet.
void ByteLevelBpeTokenizer::encode_byte_level(std::string_view piece,
                                              std::vector<int64_t>& ids) const {
  if (piece.empty()) return;
  std::string prefixed;
  if (add_prefix_space_ && piece.front() != ' ') {
    prefixed = " ";
    prefixed.append(piece);
    piece = prefixed;
  }
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::instance();
  if (!byte_level_regex_) {
    model_->encode_word(alphabet.encode(piece), ids);
    return;
  }
  for (std::string_view word : byte_level_regex_->split(piece)) {
    model_->encode_word(alphabet.encode(word), ids);
  }
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<int64_t>& ids,
                                          bool skip_special_tokens) const {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::instance();
  std::string bytes;
  for (int64_t id : ids) {
    if (const std::string* token = decoded_token(id, skip_special_tokens)) {
      alphabet.decode_token(*token, bytes);
    }
  }
  return finish_decoded_text(to_valid_utf8(bytes));
}

}  // namespace llm::tokenizer_detail
