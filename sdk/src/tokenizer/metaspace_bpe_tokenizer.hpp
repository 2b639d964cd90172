#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "added_tokens.hpp"
#include "bpe_model.hpp"
#include "json_bpe_tokenizer.hpp"
#include "utf8_text.hpp"

namespace llm::tokenizer_detail {

// The sentencepiece-style BPE of a tokenizer.json that transformers' LlamaConverter writes for
// Llama 2 / Mistral checkpoints, run as Hugging Face `tokenizers` runs it: added tokens split out
// first; spaces turned into "▁" either by normalizers (Prepend("▁") + Replace(" ", "▁"), the
// "legacy" layout) or by the Metaspace pre-tokenizer (prepend_scheme first/always/never); BPE with
// byte fallback to <0xNN> tokens and an unk token; decoders Replace / ByteFallback / Fuse / Strip
// or Metaspace.
class MetaspaceBpeTokenizer : public JsonBpeTokenizer {
 public:
  // Throws UserError naming `file` and the component for anything it cannot honour.
  MetaspaceBpeTokenizer(const nlohmann::json& tokenizer_json, const std::filesystem::path& file);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids,
                     bool skip_special_tokens = false) const override;
  std::string kind() const override { return "sentencepiece-bpe"; }

  struct NormalizerStep {
    enum class Kind { kPrepend, kReplace, kUnicode } kind = Kind::kUnicode;
    std::string text;     // Prepend: what; Replace: the pattern
    std::string content;  // Replace: the replacement
    UnicodeForm form = UnicodeForm::kNone;
  };
  struct DecoderStep {
    enum class Kind { kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind = Kind::kFuse;
    std::string pattern;  // Replace: from; Strip: the character; Metaspace: the replacement
    std::string content;  // Replace: to
    size_t start = 0;     // Strip: at most this many characters from the left
    size_t stop = 0;      // ... and from the right
    bool strip_first_space = false;  // Metaspace: scheme not "never" (first token loses them)
  };

 private:
  void parse_normalizer(const nlohmann::json& normalizer);
  void parse_pre_tokenizer(const nlohmann::json& pre_tokenizer);
  void parse_decoder(const nlohmann::json& decoder);
  std::string normalize(std::string_view text) const;
  // Metaspace + BPE on one normalized piece; `at_start`: the piece begins the input.
  void encode_piece(std::string_view piece, bool at_start, std::vector<int64_t>& ids) const;

  std::vector<NormalizerStep> normalizers_;
  bool metaspace_ = false;                    // a Metaspace pre-tokenizer is present
  std::string replacement_ = "\xE2\x96\x81";  // U+2581 "▁"
  enum class Prepend { kAlways, kFirst, kNever } prepend_scheme_ = Prepend::kAlways;
  bool split_on_replacement_ = true;
  bool has_decoder_ = false;
  std::vector<DecoderStep> decoders_;
};

}  // namespace llm::tokenizer_detail
