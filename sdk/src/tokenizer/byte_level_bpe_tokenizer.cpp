#include "byte_level_bpe_tokenizer.hpp"

#include <algorithm>

#include "byte_level_alphabet.hpp"
#include "llm/error.hpp"
#include "tokenizer_json_io.hpp"

namespace llm::tokenizer_detail {
namespace {

using nlohmann::json;

// Ids index embedding rows; anything past this is a corrupt file, not a real vocabulary.
constexpr int64_t kMaxTokenId = (int64_t{1} << 31) - 1;

std::string type_of(const json& component) {
  if (!component.is_object()) return "";
  const auto it = component.find("type");
  return it != component.end() && it->is_string() ? it->get<std::string>() : "";
}

const json* find_byte_level_pre_tokenizer(const json& pre_tokenizer) {
  const std::string type = type_of(pre_tokenizer);
  if (type == "ByteLevel") return &pre_tokenizer;
  if (type == "Sequence") {
    const auto steps = pre_tokenizer.find("pretokenizers");
    if (steps != pre_tokenizer.end() && steps->is_array() && steps->size() == 1) {
      return find_byte_level_pre_tokenizer((*steps)[0]);
    }
  }
  return nullptr;
}

int64_t token_id(const json& value, const std::string& what, const std::string& source) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() > kMaxTokenId) {
    throw UserError(source + ": " + what + " must be a token id between 0 and " +
                    std::to_string(kMaxTokenId));
  }
  return value.get<int64_t>();
}

bool bool_or(const json& object, const char* key, bool fallback, const std::string& source) {
  return optional_bool(object, key, source).value_or(fallback);
}

}  // namespace

bool is_byte_level_tokenizer_json(const json& tokenizer_json) {
  if (!tokenizer_json.is_object()) return false;
  const auto pre_tokenizer = tokenizer_json.find("pre_tokenizer");
  return pre_tokenizer != tokenizer_json.end() &&
         find_byte_level_pre_tokenizer(*pre_tokenizer) != nullptr;
}

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(const json& tokenizer_json,
                                             const std::filesystem::path& file)
    : source_(file.string()) {
  if (!tokenizer_json.is_object()) throw UserError(source_ + ": expected a JSON object");
  const auto member = [&](const char* key) -> const json& {
    static const json null_value;
    const auto it = tokenizer_json.find(key);
    return it == tokenizer_json.end() ? null_value : *it;
  };
  parse_normalizer(member("normalizer"));
  parse_pre_tokenizer(member("pre_tokenizer"));
  parse_model(member("model"));
  parse_added_tokens(member("added_tokens"));
}

void ByteLevelBpeTokenizer::parse_normalizer(const json& normalizer) {
  if (normalizer.is_null()) return;
  const std::string type = type_of(normalizer);
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
  const json* byte_level = find_byte_level_pre_tokenizer(pre_tokenizer);
  if (byte_level == nullptr) {
    throw UserError(source_ + ": pre_tokenizer '" + type_of(pre_tokenizer) +
                    "' is not supported (expected ByteLevel, as GPT-2 and GPT-NeoX use)");
  }
  add_prefix_space_ = bool_or(*byte_level, "add_prefix_space", false, source_);
  use_regex_ = bool_or(*byte_level, "use_regex", true, source_);
}

void ByteLevelBpeTokenizer::parse_model(const json& model) {
  if (!model.is_object()) throw UserError(source_ + ": 'model' must be an object");
  const std::string type = type_of(model);
  // Files written before `tokenizers` tagged models carry no type; vocab + merges means BPE.
  if (!(type == "BPE" || (type.empty() && model.contains("merges")))) {
    throw UserError(source_ + ": model type '" + type + "' is not supported (expected BPE)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && !it->is_null() &&
        !(it->is_string() && it->get<std::string>().empty())) {
      throw UserError(source_ + ": BPE '" + key + "' is not supported by the byte-level tokenizer");
    }
  }

  const auto vocab_json = model.find("vocab");
  if (vocab_json == model.end() || !vocab_json->is_object()) {
    throw UserError(source_ + ": model 'vocab' must be an object of token -> id");
  }
  BpeModel::Vocab vocab;
  vocab.reserve(vocab_json->size());
  for (const auto& [token, id_value] : vocab_json->items()) {
    const int64_t id = token_id(id_value, "vocab entry '" + token + "'", source_);
    vocab.emplace(token, static_cast<int32_t>(id));
    id_to_token_[id] = token;
    vocab_size_ = std::max(vocab_size_, id + 1);
  }

  const auto merges_json = model.find("merges");
  if (merges_json == model.end() || !merges_json->is_array()) {
    throw UserError(source_ + ": model 'merges' must be an array");
  }
  std::vector<BpeModel::Merge> merges;
  merges.reserve(merges_json->size());
  for (size_t rank = 0; rank < merges_json->size(); ++rank) {
    const json& merge = (*merges_json)[rank];
    // Older files spell a merge "left right"; newer ones ["left", "right"] (tokens may hold
    // spaces).
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space != std::string::npos && space > 0 && space + 1 < text.size()) {
        merges.emplace_back(text.substr(0, space), text.substr(space + 1));
        continue;
      }
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      continue;
    }
    throw UserError(source_ + ": merge #" + std::to_string(rank) +
                    " must be \"left right\" or [\"left\", \"right\"]");
  }
  model_ = std::make_unique<BpeModel>(std::move(vocab), merges,
                                      bool_or(model, "ignore_merges", false, source_), source_);
}

void ByteLevelBpeTokenizer::parse_added_tokens(const json& added_tokens) {
  if (added_tokens.is_null()) return;
  if (!added_tokens.is_array()) throw UserError(source_ + ": 'added_tokens' must be an array");
  std::vector<AddedToken> raw, normalized;
  for (const json& entry : added_tokens) {
    const auto content = entry.is_object() ? entry.find("content") : entry.end();
    if (!entry.is_object() || content == entry.end() || !content->is_string() ||
        !entry.contains("id")) {
      throw UserError(source_ + ": each added token needs an 'id' and a string 'content'");
    }
    AddedToken token;
    token.content = content->get<std::string>();
    token.id = token_id(entry["id"], "added token '" + token.content + "' id", source_);
    token.special = bool_or(entry, "special", false, source_);
    token.lstrip = bool_or(entry, "lstrip", false, source_);
    token.rstrip = bool_or(entry, "rstrip", false, source_);
    token.single_word = bool_or(entry, "single_word", false, source_);
    // `tokenizers` defaults `normalized` to the opposite of `special`.
    token.normalized = bool_or(entry, "normalized", !token.special, source_);

    id_to_token_[token.id] = token.content;
    added_is_special_[token.id] = token.special;
    added_by_content_[token.content] = token.id;
    vocab_size_ = std::max(vocab_size_, token.id + 1);
    if (token.normalized) {
      token.content = normalize(to_valid_utf8(token.content));
      normalized.push_back(std::move(token));
    } else {
      raw.push_back(std::move(token));
    }
  }
  raw_added_tokens_ = AddedTokenSplitter(std::move(raw));
  normalized_added_tokens_ = AddedTokenSplitter(std::move(normalized));
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
  std::string prefixed;
  if (add_prefix_space_ && text.front() != ' ') {
    prefixed = " ";
    prefixed.append(text);
    text = prefixed;
  }
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::instance();
  if (!use_regex_) {
    model_->encode_word(alphabet.encode(text), ids);
    return;
  }
  for (std::string_view word : pre_tokenizer_.split(text)) {
    model_->encode_word(alphabet.encode(word), ids);
  }
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<int64_t>& ids,
                                          bool skip_special_tokens) const {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::instance();
  std::string bytes;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size_) {
      throw UserError(source_ + ": cannot decode token id " + std::to_string(id) +
                      " (expected 0.." + std::to_string(vocab_size_ - 1) + ")");
    }
    const auto token = id_to_token_.find(id);
    if (token == id_to_token_.end()) continue;  // a gap in the ids: `tokenizers` skips it too
    if (skip_special_tokens) {
      const auto special = added_is_special_.find(id);
      if (special != added_is_special_.end() && special->second) continue;
    }
    alphabet.decode_token(token->second, bytes);
  }
  return finish_decoded_text(to_valid_utf8(bytes));
}

std::string ByteLevelBpeTokenizer::token_text(int64_t id) const {
  const auto token = id_to_token_.find(id);
  if (token == id_to_token_.end()) {
    throw UserError(source_ + ": no token with id " + std::to_string(id) + " (expected 0.." +
                    std::to_string(vocab_size_ - 1) + ")");
  }
  return token->second;
}

std::optional<int64_t> ByteLevelBpeTokenizer::find_token_id(const std::string& token) const {
  const auto added = added_by_content_.find(token);
  if (added != added_by_content_.end()) return added->second;
  const auto it = model_->vocab().find(token);
  if (it != model_->vocab().end()) return it->second;
  return std::nullopt;
}

}  // namespace llm::tokenizer_detail
