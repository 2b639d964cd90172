// write_safetensors: the byte layout of the reference (Rust) serializer, so files written here
// match what `safetensors.torch.save_file` writes for the same tensors.
#include <algorithm>
#include <cstring>
#include <set>

#include "llm/atomic_file.hpp"
#include "llm/error.hpp"
#include "llm/safetensors.hpp"
#include "quoted_name.hpp"

namespace llm {

using safetensors_detail::quoted_name;

namespace {

// Position of each dtype in the reference implementation's Dtype enum. It lays tensors out by
// dtype, largest first, then by name (keeps every range aligned to its element size).
int reference_dtype_rank(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kBool:
      return 0;
    case torch::kByte:
      return 1;
    case torch::kChar:
      return 2;
    case torch::kShort:
      return 5;
    case torch::kHalf:
      return 7;
    case torch::kBFloat16:
      return 8;
    case torch::kInt:
      return 9;
    case torch::kFloat:
      return 11;
    case torch::kDouble:
      return 12;
    case torch::kLong:
      return 13;
    default:
      return -1;
  }
}

struct PlannedTensor {
  std::string name;
  torch::Tensor tensor;
  std::string dtype_name;
  int rank = 0;
  uint64_t byte_count = 0;
};

std::string json_string(const std::string& text, const std::string& file) {
  try {
    return Json(text).dump();
  } catch (const Json::exception&) {
    throw UserError(file + ": name " + quoted_name(text) + " is not valid UTF-8");
  }
}

}  // namespace

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string file = path.string();
  std::vector<PlannedTensor> plan;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    if (!seen.insert(name).second) {
      throw UserError(file + ": tensor " + quoted_name(name) + " is given twice");
    }
    if (!tensor.defined() || tensor.layout() != torch::kStrided) {
      throw UserError(file + ": tensor " + quoted_name(name) + " is undefined or not dense");
    }
    PlannedTensor planned;
    planned.name = name;
    planned.tensor = tensor;
    planned.dtype_name = safetensors_dtype_name(tensor.scalar_type());
    planned.rank = reference_dtype_rank(tensor.scalar_type());
    planned.byte_count = static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
    plan.push_back(std::move(planned));
  }
  std::sort(plan.begin(), plan.end(), [](const PlannedTensor& a, const PlannedTensor& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.name < b.name;
  });

  // Compact JSON with the reference key order: __metadata__, then tensors in data order, each
  // {"dtype", "shape", "data_offsets"}.
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) header += ",";
      first = false;
      header += json_string(key, file) + ":" + json_string(value, file);
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const auto& planned : plan) {
    if (header.size() > 1) header += ",";
    header +=
        json_string(planned.name, file) + ":{\"dtype\":\"" + planned.dtype_name + "\",\"shape\":[";
    const auto sizes = planned.tensor.sizes();
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (i > 0) header += ",";
      header += std::to_string(sizes[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + planned.byte_count) + "]}";
    offset += planned.byte_count;
  }
  header += "}";
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  header.append((8 - header.size() % 8) % 8, ' ');

  const uint64_t header_length = header.size();
  char length_bytes[8];
  std::memcpy(length_bytes, &header_length, sizeof length_bytes);  // little-endian host

  AtomicFileWriter writer(path);
  writer.write(std::string_view(length_bytes, sizeof length_bytes));
  writer.write(header);
  for (auto& planned : plan) {
    // One tensor at a time on the CPU: a GPU model is never copied to host memory all at once.
    const torch::Tensor cpu = planned.tensor.detach().to(torch::kCPU).contiguous();
    writer.write(std::string_view(static_cast<const char*>(cpu.data_ptr()), planned.byte_count));
  }
  writer.commit();
}

}  // namespace llm
