#pragma once
// The prepared (tokenised) dataset format written by `--task prepare` and read by the trainer.
// See README.md in this directory for the on-disk layout.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

inline constexpr int64_t kPreparedFormatVersion = 1;

// One split held as three CPU tensors: all samples' ids concatenated, where each starts, and how
// many of its leading tokens are prompt.
struct LLM_API PreparedSplit {
  torch::Tensor input_ids;       // int32 [total_tokens]
  torch::Tensor offsets;         // int64 [N + 1], offsets[0] = 0, offsets[N] = total_tokens
  torch::Tensor prompt_lengths;  // int32 [N]
  torch::Tensor source_index;    // int64 [N], record index in the raw file (for traceability)

  int64_t size() const;
  int64_t length(int64_t sample) const;
  int64_t prompt_length(int64_t sample) const;
  torch::Tensor ids(int64_t sample) const;  // int32 view [length]

  // Builds a split from samples (ids, prompt length, source index).
  static PreparedSplit from_samples(const std::vector<std::vector<int64_t>>& ids,
                                    const std::vector<int64_t>& prompt_lengths,
                                    const std::vector<int64_t>& source_index);
};

// Writes `path` (.safetensors) atomically.
LLM_API void write_prepared_split(const std::filesystem::path& path, const PreparedSplit& split);
// Reads and validates (offsets monotone and consistent, prompt lengths within samples, ids in
// [0, vocab_size) when vocab_size > 0). UserError naming the file on any inconsistency.
LLM_API PreparedSplit read_prepared_split(const std::filesystem::path& path, int64_t vocab_size);

// A prepared directory: manifest.json + train.safetensors + test.safetensors.
struct LLM_API PreparedDataset {
  Json manifest;
  PreparedSplit train;
  PreparedSplit test;
  bool mask_inputs() const;
  int64_t max_seq_length() const;
};
LLM_API PreparedDataset read_prepared_dataset(const std::filesystem::path& dir, int64_t vocab_size);

}  // namespace llm
