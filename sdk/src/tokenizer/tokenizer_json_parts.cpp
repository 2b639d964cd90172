#include "tokenizer_json_parts.hpp"

#include <algorithm>

#include "llm/error.hpp"
#include "tokenizer_json_io.hpp"

namespace llm::tokenizer_detail {
namespace {

using nlohmann::json;

// Ids index embedding rows; anything past this is a corrupt file, not a real vocabulary.
constexpr int64_t kMaxTokenId = (int64_t{1} << 31) - 1;

bool bool_or(const json& object, const char* key, bool fallback, const std::string& source) {
  return optional_bool(object, key, source).value_or(fallback);
}

std::vector<BpeModel::Merge> parse_merges(const json& model, const std::string& source) {
  const auto merges_json = model.find("merges");
  if (merges_json == model.end() || !merges_json->is_array()) {
    throw UserError(source + ": model 'merges' must be an array");
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
    throw UserError(source + ": merge #" + std::to_string(rank) +
                    " must be \"left right\" or [\"left\", \"right\"]");
  }
  return merges;
}

// The ids of one TemplateProcessing special token entry ("special_tokens": {name: {"ids": [..]}}).
std::vector<int64_t> template_token_ids(const json& special_tokens, const std::string& name,
                                        const std::string& source) {
  const auto entry = special_tokens.is_object() ? special_tokens.find(name) : special_tokens.end();
  if (entry == special_tokens.end() || !entry->is_object() || !entry->contains("ids") ||
      !(*entry)["ids"].is_array()) {
    throw UserError(source + ": post_processor template names special token '" + name +
                    "', which its 'special_tokens' does not define with 'ids'");
  }
  std::vector<int64_t> ids;
  for (const json& id : (*entry)["ids"]) {
    ids.push_back(parse_token_id(id, "post_processor special token '" + name + "' id", source));
  }
  return ids;
}

TemplateSpecials parse_template(const json& processor, const std::string& source) {
  const auto single = processor.find("single");
  if (single == processor.end() || !single->is_array()) {
    throw UserError(source + ": post_processor 'TemplateProcessing' needs a 'single' list");
  }
  const json empty = json::object();
  const auto special_tokens = processor.find("special_tokens");
  const json& specials = special_tokens == processor.end() ? empty : *special_tokens;
  std::vector<int64_t> before, after;
  bool seen_sequence = false;
  for (const json& piece : *single) {
    if (piece.is_object() && piece.contains("Sequence")) {
      if (seen_sequence) {
        throw UserError(source + ": post_processor template repeats the sequence in 'single'");
      }
      seen_sequence = true;
    } else if (piece.is_object() && piece.contains("SpecialToken") &&
               piece["SpecialToken"].is_object() && piece["SpecialToken"].contains("id") &&
               piece["SpecialToken"]["id"].is_string()) {
      const auto ids =
          template_token_ids(specials, piece["SpecialToken"]["id"].get<std::string>(), source);
      std::vector<int64_t>& side = seen_sequence ? after : before;
      side.insert(side.end(), ids.begin(), ids.end());
    } else {
      throw UserError(source +
                      ": post_processor template entries must be {\"SpecialToken\": ...} "
                      "or {\"Sequence\": ...}");
    }
  }
  if (!seen_sequence || before.size() > 1 || after.size() > 1) {
    throw UserError(source +
                    ": post_processor template 'single' is not supported (expected $A "
                    "with at most one special token before and one after it)");
  }
  TemplateSpecials result;
  result.present = true;
  if (!before.empty()) result.bos = before.front();
  if (!after.empty()) result.eos = after.front();
  return result;
}

}  // namespace

std::string component_type(const json& component) {
  if (!component.is_object()) return "";
  const auto it = component.find("type");
  return it != component.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string string_or(const json& object, const char* key, const std::string& fallback,
                      const std::string& source) {
  const auto it = object.is_object() ? object.find(key) : object.end();
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    throw UserError(source + ": '" + key + "' of " + component_type(object) + " must be a string");
  }
  return it->get<std::string>();
}

int64_t parse_token_id(const json& value, const std::string& what, const std::string& source) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() > kMaxTokenId) {
    throw UserError(source + ": " + what + " must be a token id between 0 and " +
                    std::to_string(kMaxTokenId));
  }
  return value.get<int64_t>();
}

ParsedBpeModel parse_bpe_model(const json& model, const std::string& source) {
  if (!model.is_object()) throw UserError(source + ": 'model' must be an object");
  const std::string type = component_type(model);
  // Files written before `tokenizers` tagged models carry no type; vocab + merges means BPE.
  if (!(type == "BPE" || (type.empty() && model.contains("merges")))) {
    throw UserError(source + ": model type '" + type + "' is not supported (expected BPE)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && !it->is_null() &&
        !(it->is_string() && it->get<std::string>().empty())) {
      throw UserError(source + ": BPE '" + key + "' is not supported");
    }
  }
  // Dropout samples at encode time; a non-zero value means ids that differ run to run.
  if (const auto it = model.find("dropout");
      it != model.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 0.0)) {
    throw UserError(source + ": BPE 'dropout' is not supported (expected null)");
  }

  ParsedBpeModel parsed;
  const auto vocab_json = model.find("vocab");
  if (vocab_json == model.end() || !vocab_json->is_object()) {
    throw UserError(source + ": model 'vocab' must be an object of token -> id");
  }
  parsed.vocab.reserve(vocab_json->size());
  for (const auto& [token, id_value] : vocab_json->items()) {
    const int64_t id = parse_token_id(id_value, "vocab entry '" + token + "'", source);
    parsed.vocab.emplace(token, static_cast<int32_t>(id));
    parsed.id_to_token[id] = token;
    parsed.vocab_size = std::max(parsed.vocab_size, id + 1);
  }
  parsed.merges = parse_merges(model, source);

  parsed.options.ignore_merges = bool_or(model, "ignore_merges", false, source);
  parsed.options.byte_fallback = bool_or(model, "byte_fallback", false, source);
  parsed.options.fuse_unk = bool_or(model, "fuse_unk", false, source);
  if (const auto unk = model.find("unk_token"); unk != model.end() && !unk->is_null()) {
    if (!unk->is_string()) throw UserError(source + ": model 'unk_token' must be a string or null");
    const auto id = parsed.vocab.find(unk->get<std::string>());
    if (id == parsed.vocab.end()) {
      throw UserError(source + ": model 'unk_token' '" + unk->get<std::string>() +
                      "' is not in the vocabulary");
    }
    parsed.options.unk_id = id->second;
  }
  return parsed;
}

std::vector<AddedToken> parse_added_tokens(const json& added_tokens, const std::string& source) {
  std::vector<AddedToken> tokens;
  if (added_tokens.is_null()) return tokens;
  if (!added_tokens.is_array()) throw UserError(source + ": 'added_tokens' must be an array");
  for (const json& entry : added_tokens) {
    const auto content = entry.is_object() ? entry.find("content") : entry.end();
    if (!entry.is_object() || content == entry.end() || !content->is_string() ||
        !entry.contains("id")) {
      throw UserError(source + ": each added token needs an 'id' and a string 'content'");
    }
    AddedToken token;
    token.content = content->get<std::string>();
    token.id = parse_token_id(entry["id"], "added token '" + token.content + "' id", source);
    token.special = bool_or(entry, "special", false, source);
    token.lstrip = bool_or(entry, "lstrip", false, source);
    token.rstrip = bool_or(entry, "rstrip", false, source);
    token.single_word = bool_or(entry, "single_word", false, source);
    // `tokenizers` defaults `normalized` to the opposite of `special`.
    token.normalized = bool_or(entry, "normalized", !token.special, source);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

TemplateSpecials parse_post_processor(const json& post_processor, const std::string& source) {
  if (post_processor.is_null()) return {};
  const std::string type = component_type(post_processor);
  if (type == "ByteLevel") return {};  // offsets only
  if (type == "TemplateProcessing") return parse_template(post_processor, source);
  if (type == "Sequence") {
    const auto steps = post_processor.find("processors");
    if (steps == post_processor.end() || !steps->is_array()) {
      throw UserError(source + ": post_processor 'Sequence' needs a 'processors' array");
    }
    TemplateSpecials result;
    for (const json& step : *steps) {
      const TemplateSpecials part = parse_post_processor(step, source);
      if (part.present && result.present) {
        throw UserError(source + ": post_processor has more than one TemplateProcessing");
      }
      if (part.present) result = part;
    }
    return result;
  }
  throw UserError(source + ": post_processor '" + type +
                  "' is not supported (expected TemplateProcessing, ByteLevel, a Sequence of "
                  "them, or null)");
}

}  // namespace llm::tokenizer_detail
