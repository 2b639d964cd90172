#include "llm/train/prepared_data.hpp"

#include <torch/torch.h>

#include "llm/error.hpp"
#include "llm/safetensors.hpp"

namespace llm {

int64_t PreparedSplit::size() const {
  return prompt_lengths.defined() ? prompt_lengths.numel() : 0;
}

int64_t PreparedSplit::length(int64_t sample) const {
  const auto* o = offsets.data_ptr<int64_t>();
  return o[sample + 1] - o[sample];
}

int64_t PreparedSplit::prompt_length(int64_t sample) const {
  return prompt_lengths.data_ptr<int32_t>()[sample];
}

torch::Tensor PreparedSplit::ids(int64_t sample) const {
  const auto* o = offsets.data_ptr<int64_t>();
  return input_ids.slice(0, o[sample], o[sample + 1]);
}

PreparedSplit PreparedSplit::from_samples(const std::vector<std::vector<int64_t>>& ids,
                                          const std::vector<int64_t>& prompt_lengths,
                                          const std::vector<int64_t>& source_index) {
  const auto n = static_cast<int64_t>(ids.size());
  PreparedSplit split;
  split.offsets = torch::empty({n + 1}, torch::kInt64);
  split.prompt_lengths = torch::empty({n}, torch::kInt32);
  split.source_index = torch::empty({n}, torch::kInt64);
  auto* offsets = split.offsets.data_ptr<int64_t>();
  offsets[0] = 0;
  for (int64_t i = 0; i < n; ++i) {
    offsets[i + 1] = offsets[i] + static_cast<int64_t>(ids[i].size());
    split.prompt_lengths.data_ptr<int32_t>()[i] = static_cast<int32_t>(prompt_lengths.at(i));
    split.source_index.data_ptr<int64_t>()[i] = source_index.at(i);
  }
  split.input_ids = torch::empty({offsets[n]}, torch::kInt32);
  auto* flat = split.input_ids.data_ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    for (size_t t = 0; t < ids[i].size(); ++t)
      flat[offsets[i] + t] = static_cast<int32_t>(ids[i][t]);
  }
  return split;
}

void write_prepared_split(const std::filesystem::path& path, const PreparedSplit& split) {
  write_safetensors(
      path,
      {{"input_ids", split.input_ids},
       {"offsets", split.offsets},
       {"prompt_lengths", split.prompt_lengths},
       {"source_index", split.source_index}},
      {{"format", "llmhost-prepared"}, {"format_version", std::to_string(kPreparedFormatVersion)}});
}

namespace {

torch::Tensor required(const SafetensorsFile& file, const std::string& name,
                       torch::ScalarType dtype) {
  const std::string source = file.path().string();
  if (!file.contains(name)) throw UserError(source + ": missing tensor '" + name + "'");
  const auto& info = file.info(name);
  if (info.dtype != dtype || info.shape.size() != 1) {
    throw UserError(source + ": tensor '" + name + "' must be a 1-D " +
                    safetensors_dtype_name(dtype) + " tensor");
  }
  return file.tensor(name).clone();  // own the memory: the mapping closes with `file`
}

}  // namespace

PreparedSplit read_prepared_split(const std::filesystem::path& path, int64_t vocab_size) {
  if (!std::filesystem::is_regular_file(path)) {
    throw UserError(path.string() + ": prepared split not found (run --task prepare first)");
  }
  const SafetensorsFile file(path);
  const std::string source = path.string();
  PreparedSplit split;
  split.input_ids = required(file, "input_ids", torch::kInt32);
  split.offsets = required(file, "offsets", torch::kInt64);
  split.prompt_lengths = required(file, "prompt_lengths", torch::kInt32);
  split.source_index = file.contains("source_index")
                           ? required(file, "source_index", torch::kInt64)
                           : torch::arange(split.prompt_lengths.numel(), torch::kInt64);
  const int64_t n = split.prompt_lengths.numel();
  if (split.offsets.numel() != n + 1 || split.source_index.numel() != n) {
    throw UserError(source + ": 'offsets' must have one more entry than 'prompt_lengths'");
  }
  const auto* offsets = split.offsets.data_ptr<int64_t>();
  if (offsets[0] != 0 || offsets[n] != split.input_ids.numel()) {
    throw UserError(source + ": 'offsets' must start at 0 and end at the number of input_ids");
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t length = offsets[i + 1] - offsets[i];
    if (length < 1) throw UserError(source + ": sample " + std::to_string(i) + " is empty");
    const int64_t prompt = split.prompt_lengths.data_ptr<int32_t>()[i];
    if (prompt < 0 || prompt > length) {
      throw UserError(source + ": sample " + std::to_string(i) + " has a prompt length outside it");
    }
  }
  if (split.input_ids.numel() > 0) {
    const int64_t lowest = split.input_ids.min().item<int64_t>();
    const int64_t highest = split.input_ids.max().item<int64_t>();
    if (lowest < 0 || (vocab_size > 0 && highest >= vocab_size)) {
      throw UserError(source + ": token ids must lie in [0, " + std::to_string(vocab_size) +
                      ") for this model (found " + std::to_string(lowest) + ".." +
                      std::to_string(highest) + "); was it prepared with another tokenizer?");
    }
  }
  return split;
}

bool PreparedDataset::mask_inputs() const {
  return json_bool_or(manifest, "mask_inputs", false, "manifest.json");
}

int64_t PreparedDataset::max_seq_length() const {
  return json_int_or(manifest, "max_seq_length", 0, "manifest.json");
}

PreparedDataset read_prepared_dataset(const std::filesystem::path& dir, int64_t vocab_size) {
  if (!std::filesystem::is_directory(dir)) {
    throw UserError("--data_dir '" + dir.string() +
                    "' is not a directory (expected the output of --task prepare)");
  }
  PreparedDataset data;
  data.manifest = read_json_file(dir / "manifest.json");
  const std::string source = (dir / "manifest.json").string();
  const auto version = json_int_or(data.manifest, "format_version", 0, source);
  if (version != kPreparedFormatVersion) {
    throw UserError(source + ": format_version " + std::to_string(version) + " is not " +
                    std::to_string(kPreparedFormatVersion) + " (prepare the data again)");
  }
  data.train = read_prepared_split(dir / "train.safetensors", vocab_size);
  data.test = read_prepared_split(dir / "test.safetensors", vocab_size);
  if (data.train.size() == 0)
    throw UserError((dir / "train.safetensors").string() + ": no samples");
  return data;
}

}  // namespace llm
