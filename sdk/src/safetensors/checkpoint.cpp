// SafetensorsCheckpoint: the weights of a Hugging Face directory, single-file or sharded.
#include <algorithm>
#include <set>

#include "llm/error.hpp"
#include "llm/safetensors.hpp"
#include "quoted_name.hpp"

namespace llm {

using safetensors_detail::quoted_name;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// An index may only name files next to it: no paths, no parent directories.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

// PyTorch pickles (pytorch_model.bin, pytorch_model-00001-of-00002.bin) found in `dir`, if any.
std::string first_pickle_checkpoint(const std::filesystem::path& dir) {
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("pytorch_model", 0) == 0 &&
        (entry.path().extension() == ".bin" || name.find(".bin.index.json") != std::string::npos)) {
      found.push_back(name);
    }
  }
  std::sort(found.begin(), found.end());
  return found.empty() ? std::string() : found.front();
}

}  // namespace

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    throw UserError("checkpoint directory '" + dir.string() + "' does not exist");
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    throw UserError("checkpoint directory '" + dir.string() + "' is not a directory");
  }
  SafetensorsCheckpoint checkpoint;
  checkpoint.dir_ = dir;

  const auto single = dir / kSingleFile;
  if (std::filesystem::exists(single, ec)) {
    auto file = std::make_shared<SafetensorsFile>(single);
    for (const auto& info : file->tensors()) checkpoint.owner_[info.name] = 0;
    checkpoint.files_.push_back(std::move(file));
    return checkpoint;
  }

  const auto index_path = dir / kIndexFile;
  if (!std::filesystem::exists(index_path, ec)) {
    std::string message = "checkpoint directory '" + dir.string() + "' has neither " + kSingleFile +
                          " nor " + kIndexFile;
    const std::string pickle = first_pickle_checkpoint(dir);
    if (!pickle.empty()) {
      message += "; it has " + pickle +
                 ", which is not loaded (PyTorch pickles are never executed): convert the "
                 "checkpoint to safetensors";
    }
    throw UserError(message);
  }

  const std::string source = index_path.string();
  const Json index = read_json_file(index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw UserError(source + ": expected an object with a 'weight_map' object (tensor -> shard)");
  }
  const Json& weight_map = index["weight_map"];
  if (weight_map.empty()) throw UserError(source + ": 'weight_map' lists no tensors");

  std::map<std::string, size_t> shard_slot;
  for (const auto& [name, shard] : weight_map.items()) {
    if (!shard.is_string() || !is_plain_file_name(shard.get<std::string>())) {
      throw UserError(source + ": tensor " + quoted_name(name) +
                      " must map to a shard file name inside the checkpoint directory");
    }
    shard_slot.emplace(shard.get<std::string>(), 0);
  }
  for (auto& [shard, slot] : shard_slot) {
    const auto shard_path = dir / shard;
    if (!std::filesystem::is_regular_file(shard_path, ec)) {
      throw UserError(source + ": shard " + quoted_name(shard) + " does not exist in '" +
                      dir.string() + "'");
    }
    slot = checkpoint.files_.size();
    checkpoint.files_.push_back(std::make_shared<SafetensorsFile>(shard_path));
  }
  for (const auto& [name, shard] : weight_map.items()) {
    const size_t slot = shard_slot.at(shard.get<std::string>());
    if (!checkpoint.files_[slot]->contains(name)) {
      throw UserError(source + ": tensor " + quoted_name(name) + " is listed in shard " +
                      quoted_name(shard.get<std::string>()) + " but the shard does not contain it");
    }
    checkpoint.owner_[name] = slot;
  }
  return checkpoint;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> result;
  result.reserve(owner_.size());
  for (const auto& entry : owner_) result.push_back(entry.first);
  return result;
}

bool SafetensorsCheckpoint::contains(const std::string& name) const {
  return owner_.count(name) != 0;
}

const TensorInfo& SafetensorsCheckpoint::info(const std::string& name) const {
  return files_[owner_index(name)]->info(name);
}

torch::Tensor SafetensorsCheckpoint::tensor(const std::string& name) const {
  return files_[owner_index(name)]->tensor(name);
}

const std::filesystem::path& SafetensorsCheckpoint::file_of(const std::string& name) const {
  return files_[owner_index(name)]->path();
}

size_t SafetensorsCheckpoint::owner_index(const std::string& name) const {
  const auto it = owner_.find(name);
  if (it == owner_.end()) {
    throw UserError("checkpoint '" + dir_.string() + "' has no tensor " + quoted_name(name));
  }
  return it->second;
}

}  // namespace llm
