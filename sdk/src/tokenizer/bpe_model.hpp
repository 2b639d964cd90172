#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llm::tokenizer_detail {

// Rank-based BPE over one pre-tokenised word (Hugging Face `tokenizers` models.BPE without dropout
// or subword prefixes). Results are cached per word: natural text repeats words a lot.
class BpeModel {
 public:
  using Vocab = std::unordered_map<std::string, int32_t>;
  using Merge = std::pair<std::string, std::string>;

  // What becomes of a character the vocabulary lacks, and whether whole words skip the merges.
  struct Options {
    bool ignore_merges = false;     // a word that is itself a vocabulary entry is one token
    bool byte_fallback = false;     // spell it as <0xNN> byte tokens (sentencepiece style)
    std::optional<int32_t> unk_id;  // else the unk token; without one the character is dropped
    bool fuse_unk = false;          // consecutive unknown characters share one unk token
  };

  // Throws UserError naming `source` when a merge refers to a token (or a merged token) that the
  // vocabulary lacks, as `tokenizers` does.
  BpeModel(Vocab vocab, const std::vector<Merge>& merges, Options options,
           const std::string& source);

  // Appends the ids of `word`, spelled in the vocabulary's alphabet; characters missing from the
  // vocabulary follow Options.
  void encode_word(std::string_view word, std::vector<int64_t>& out) const;

  const Vocab& vocab() const { return vocab_; }

 private:
  struct MergeTarget {
    int32_t rank;
    int32_t merged_id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  std::vector<int32_t> merge_word(std::string_view word) const;

  // The symbols a character missing from the vocabulary becomes (none: dropped).
  void add_unknown_character(std::string_view character, std::vector<int32_t>& ids,
                             bool& previous_was_unk) const;

  Vocab vocab_;
  std::unordered_map<uint64_t, MergeTarget> merges_;
  Options options_;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> token per byte, -1 when absent

  // Bounded so that a long stream of unique words cannot grow memory without limit.
  static constexpr size_t kCacheCapacity = 100000;
  static constexpr size_t kMaxCachedWordBytes = 128;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace llm::tokenizer_detail
