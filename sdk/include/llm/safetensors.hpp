#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

struct TensorInfo {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
};

// One memory-mapped .safetensors file. The constructor validates everything before any allocation:
// header size (<= 100 MB and inside the file), JSON syntax, dtypes, every shape against its byte
// range, every range inside the file, no overlaps. Any inconsistency throws UserError naming the
// file and the tensor.
class LLM_API SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const;
  const std::vector<TensorInfo>& tensors() const;  // in file (data offset) order
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // UserError if absent
  const std::map<std::string, std::string>& metadata() const;

  // Zero-copy CPU view into the mapping; the view keeps the mapping alive.
  torch::Tensor tensor(const std::string& name) const;

 private:
  struct Mapping;
  std::shared_ptr<Mapping> mapping_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// The weights of a Hugging Face checkpoint directory: `model.safetensors`, or the shards listed in
// `model.safetensors.index.json` (weight_map: tensor name -> shard file).
class LLM_API SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open(const std::filesystem::path& dir);  // UserError if none found

  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  torch::Tensor tensor(const std::string& name) const;  // zero-copy view (CPU)
  const std::filesystem::path& file_of(const std::string& name) const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  size_t owner_index(const std::string& name) const;  // UserError naming the dir if absent

  std::filesystem::path dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;
};

// Writes tensors (any device/dtype; copied to CPU contiguous) as a .safetensors file, atomically.
LLM_API void write_safetensors(const std::filesystem::path& path,
                               const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

// "F32" <-> torch::kFloat etc. Unknown names throw UserError mentioning `source`.
LLM_API torch::ScalarType safetensors_dtype(const std::string& name, const std::string& source);
LLM_API std::string safetensors_dtype_name(torch::ScalarType dtype);

}  // namespace llm
