#include "bpe_model.hpp"

#include <cstdio>
#include <queue>

#include <utf8proc.h>

#include "llm/error.hpp"

namespace llm::tokenizer_detail {

BpeModel::BpeModel(Vocab vocab, const std::vector<Merge>& merges, Options options,
                   const std::string& source)
    : vocab_(std::move(vocab)), options_(options) {
  byte_ids_.fill(-1);
  if (options_.byte_fallback) {
    for (int byte = 0; byte < 256; ++byte) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", byte);  // `tokenizers`: format!("<{:#04X}>")
      const auto it = vocab_.find(name);
      if (it != vocab_.end()) byte_ids_[static_cast<size_t>(byte)] = it->second;
    }
  }
  merges_.reserve(merges.size());
  const auto id_of = [&](const std::string& token, size_t rank) {
    const auto it = vocab_.find(token);
    if (it == vocab_.end()) {
      throw UserError(source + ": merge #" + std::to_string(rank) + " (\"" + merges[rank].first +
                      " " + merges[rank].second + "\") refers to '" + token +
                      "', which is not in the vocabulary");
    }
    return it->second;
  };
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const int32_t left = id_of(merges[rank].first, rank);
    const int32_t right = id_of(merges[rank].second, rank);
    const int32_t merged = id_of(merges[rank].first + merges[rank].second, rank);
    // A repeated pair keeps its first (highest-priority) rank.
    merges_.emplace(pair_key(left, right), MergeTarget{static_cast<int32_t>(rank), merged});
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int64_t>& out) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_word(word);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::add_unknown_character(std::string_view character, std::vector<int32_t>& ids,
                                     bool& previous_was_unk) const {
  if (options_.byte_fallback) {
    bool all_bytes_known = true;
    for (const char byte : character) {
      all_bytes_known = all_bytes_known && byte_ids_[static_cast<unsigned char>(byte)] >= 0;
    }
    if (all_bytes_known) {
      for (const char byte : character) ids.push_back(byte_ids_[static_cast<unsigned char>(byte)]);
      previous_was_unk = false;
      return;
    }
  }
  if (!options_.unk_id) return;
  if (!(options_.fuse_unk && previous_was_unk)) ids.push_back(*options_.unk_id);
  previous_was_unk = true;
}

std::vector<int32_t> BpeModel::merge_word(std::string_view word) const {
  if (options_.ignore_merges) {
    const auto whole = vocab_.find(std::string(word));
    if (whole != vocab_.end()) return {whole->second};
  }

  // Symbols form a doubly linked list over the word; a merged-away symbol gets id -1.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<int32_t> initial;
  initial.reserve(word.size());
  bool previous_was_unk = false;
  const auto* data = reinterpret_cast<const utf8proc_uint8_t*>(word.data());
  for (size_t pos = 0; pos < word.size();) {
    utf8proc_int32_t code_point = 0;
    utf8proc_ssize_t length =
        utf8proc_iterate(data + pos, static_cast<utf8proc_ssize_t>(word.size() - pos), &code_point);
    if (length <= 0) length = 1;  // input is valid UTF-8; never loop forever on a bad byte
    const std::string_view character = word.substr(pos, static_cast<size_t>(length));
    const auto it = vocab_.find(std::string(character));
    if (it != vocab_.end()) {
      initial.push_back(it->second);
      previous_was_unk = false;
    } else {
      add_unknown_character(character, initial, previous_was_unk);
    }
    pos += static_cast<size_t>(length);
  }
  if (initial.empty()) return {};
  std::vector<Symbol> symbols;
  symbols.reserve(initial.size());
  for (const int32_t id : initial) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1});
  }
  symbols.back().next = -1;

  // Lowest rank first, then leftmost: the order `tokenizers` applies merges in.
  struct Candidate {
    int32_t rank;
    int32_t position;
    int32_t merged_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto push_pair = [&](int32_t left) {
    if (left < 0 || symbols[static_cast<size_t>(left)].next < 0) return;
    const Symbol& a = symbols[static_cast<size_t>(left)];
    const Symbol& b = symbols[static_cast<size_t>(a.next)];
    const auto it = merges_.find(pair_key(a.id, b.id));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.merged_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.position)];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    // Stale entry: one side was merged into something else since it was queued.
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.merged_id != top.merged_id) continue;

    left.id = top.merged_id;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.position;
    push_pair(left.prev);
    push_pair(top.position);
  }

  std::vector<int32_t> ids;
  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    ids.push_back(symbols[static_cast<size_t>(i)].id);
  }
  return ids;
}

}  // namespace llm::tokenizer_detail
