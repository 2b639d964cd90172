#include "json_bpe_tokenizer.hpp"

#include <algorithm>
#include <vector>

#include "llm/error.hpp"
#include "utf8_text.hpp"

namespace llm::tokenizer_detail {

void JsonBpeTokenizer::set_model(ParsedBpeModel parsed) {
  id_to_token_ = std::move(parsed.id_to_token);
  vocab_size_ = parsed.vocab_size;
  model_ =
      std::make_unique<BpeModel>(std::move(parsed.vocab), parsed.merges, parsed.options, source_);
}

void JsonBpeTokenizer::set_added_tokens(
    const nlohmann::json& added_tokens,
    const std::function<std::string(std::string_view)>& normalize) {
  std::vector<AddedToken> raw, normalized;
  for (AddedToken& token : parse_added_tokens(added_tokens, source_)) {
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

const std::string* JsonBpeTokenizer::decoded_token(int64_t id, bool skip_special_tokens) const {
  if (id < 0 || id >= vocab_size_) {
    throw UserError(source_ + ": cannot decode token id " + std::to_string(id) + " (expected 0.." +
                    std::to_string(vocab_size_ - 1) + ")");
  }
  const auto token = id_to_token_.find(id);
  if (token == id_to_token_.end()) return nullptr;
  if (skip_special_tokens) {
    const auto special = added_is_special_.find(id);
    if (special != added_is_special_.end() && special->second) return nullptr;
  }
  return &token->second;
}

std::string JsonBpeTokenizer::token_text(int64_t id) const {
  const auto token = id_to_token_.find(id);
  if (token == id_to_token_.end()) {
    throw UserError(source_ + ": no token with id " + std::to_string(id) + " (expected 0.." +
                    std::to_string(vocab_size_ - 1) + ")");
  }
  return token->second;
}

std::optional<int64_t> JsonBpeTokenizer::find_token_id(const std::string& token) const {
  const auto added = added_by_content_.find(token);
  if (added != added_by_content_.end()) return added->second;
  const auto it = model_->vocab().find(token);
  if (it != model_->vocab().end()) return it->second;
  return std::nullopt;
}

}  // namespace llm::tokenizer_detail
