#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "llm/tokenizer.hpp"

namespace llm::tokenizer_detail {

// What the concrete tokenizers share with the loader: a token lookup to resolve BOS/EOS names, and
// a way to set the special-token state that Tokenizer keeps protected.
class TokenizerBase : public Tokenizer {
 public:
  // The id of a vocabulary entry or added token spelled exactly `token`.
  virtual std::optional<int64_t> find_token_id(const std::string& token) const = 0;

  void set_special_tokens(std::optional<int64_t> bos, std::optional<int64_t> eos, bool add_bos,
                          bool add_eos) {
    bos_id_ = bos;
    eos_id_ = eos;
    add_bos_ = add_bos;
    add_eos_ = add_eos;
  }

  // transformers' `clean_up_tokenization_spaces` (tokenizer_config.json): after decoding, drop the
  // space before punctuation and English contractions ("a ." -> "a.", "do n't" -> "don't").
  void set_clean_up_tokenization_spaces(bool enabled) { clean_up_tokenization_spaces_ = enabled; }

 protected:
  std::string finish_decoded_text(std::string text) const;

 private:
  bool clean_up_tokenization_spaces_ = false;
};

}  // namespace llm::tokenizer_detail
