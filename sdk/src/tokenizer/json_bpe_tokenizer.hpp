#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "added_tokens.hpp"
#include "bpe_model.hpp"
#include "tokenizer_base.hpp"
#include "tokenizer_json_parts.hpp"

namespace llm::tokenizer_detail {

// What the tokenizer.json BPE pipelines (byte-level, Metaspace) share: the BPE model, the
// vocabulary by id and the added tokens, and the lookups over them. The pipelines differ in how
// text becomes pieces and tokens become text.
class JsonBpeTokenizer : public TokenizerBase {
 public:
  std::string token_text(int64_t id) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  std::optional<int64_t> find_token_id(const std::string& token) const override;

 protected:
  explicit JsonBpeTokenizer(std::string source) : source_(std::move(source)) {}

  // The file's "model" section, parsed (the pipeline may have adjusted its options).
  void set_model(ParsedBpeModel parsed);
  // The file's "added_tokens" section, after the model: a token marked normalized is matched
  // after normalisation, so its content goes through `normalize` first.
  void set_added_tokens(const nlohmann::json& added_tokens,
                        const std::function<std::string(std::string_view)>& normalize);
  // The text of `id` for decode: null for a gap in the ids (`tokenizers` skips it) or a special
  // token that is skipped; UserError naming the file outside the vocabulary.
  const std::string* decoded_token(int64_t id, bool skip_special_tokens) const;

  std::string source_;  // the file, for error messages
  std::unique_ptr<BpeModel> model_;
  AddedTokenSplitter raw_added_tokens_;         // matched on the input as given
  AddedTokenSplitter normalized_added_tokens_;  // matched after normalisation

 private:
  // A map, not a vector: ids come from the file, and a stray huge id must not size an allocation.
  std::unordered_map<int64_t, std::string> id_to_token_;
  std::unordered_map<int64_t, bool> added_is_special_;
  std::unordered_map<std::string, int64_t> added_by_content_;
  int64_t vocab_size_ = 0;
};

}  // namespace llm::tokenizer_detail
