// SafetensorsFile: a validated, memory-mapped .safetensors file. Nothing is allocated from header
// values until the header has been checked against the file size.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "llm/error.hpp"
#include "llm/safetensors.hpp"
#include "quoted_name.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

namespace llm {

using safetensors_detail::printable_reason;
using safetensors_detail::quoted_name;

namespace {

constexpr uint64_t kHeaderLengthBytes = 8;
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit of the reference implementation

std::string offsets_text(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

// A header integer that must be >= 0 and fit int64 (torch sizes are int64).
bool read_size(const Json& value, uint64_t& out) {
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    if (v < 0) return false;
    out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

}  // namespace

struct SafetensorsFile::Mapping {
  std::filesystem::path path;
  void* address = nullptr;
  size_t size = 0;
  uint64_t data_start = 0;  // 8 + header length

  ~Mapping() {
    if (address != nullptr) ::munmap(address, size);
  }
  uint8_t* data() const { return static_cast<uint8_t*>(address) + data_start; }
};

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path)
    : mapping_(std::make_shared<Mapping>()) {
  mapping_->path = path;
  const std::string file = path.string();

  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError(file + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw UserError(file + ": not a regular file");
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kHeaderLengthBytes) {
    ::close(fd);
    throw UserError(file + ": file is " + std::to_string(file_size) +
                    " bytes, too short for a safetensors file (8-byte header length + header)");
  }
  // Private + writable: in-place ops on a view copy pages instead of faulting, and never reach
  // the file. Pages are only read from disk when touched.
  void* address = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (address == MAP_FAILED) {
    throw UserError(file + ": cannot memory-map: " + std::strerror(map_errno));
  }
  mapping_->address = address;
  mapping_->size = file_size;

  const auto* bytes = static_cast<const uint8_t*>(address);
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes, sizeof header_length);
  if (header_length > kMaxHeaderBytes) {
    throw UserError(file + ": header length " + std::to_string(header_length) +
                    " exceeds the 100 MB limit (not a safetensors file, or corrupt)");
  }
  if (header_length > file_size - kHeaderLengthBytes) {
    throw UserError(file + ": header length " + std::to_string(header_length) +
                    " points past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  mapping_->data_start = kHeaderLengthBytes + header_length;
  const uint64_t data_size = file_size - mapping_->data_start;

  Json header;
  try {
    const char* begin = reinterpret_cast<const char*>(bytes + kHeaderLengthBytes);
    header = Json::parse(begin, begin + header_length);
  } catch (const Json::exception& e) {
    throw UserError(file + ": header is not valid JSON: " + printable_reason(e.what()));
  }
  if (!header.is_object()) {
    throw UserError(file + ": header must be a JSON object, got " + header.type_name());
  }

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw UserError(file + ": '__metadata__' must be a JSON object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          throw UserError(file + ": '__metadata__' value for " + quoted_name(key) +
                          " must be a string");
        }
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = file + ": tensor " + quoted_name(name);
    if (!entry.is_object()) {
      throw UserError(where + " must be an object with dtype, shape and data_offsets");
    }
    TensorInfo info;
    info.name = name;

    const auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) {
      throw UserError(where + " has no string 'dtype'");
    }
    info.dtype = safetensors_dtype(dtype->get<std::string>(), where);

    const auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) {
      throw UserError(where + " has no 'shape' list");
    }
    uint64_t elements = 1;
    bool overflow = false;
    for (const auto& dim : *shape) {
      uint64_t size = 0;
      if (!read_size(dim, size)) {
        throw UserError(where + " has an invalid shape: dimensions must be non-negative integers" +
                        (dim.is_number_integer() && !dim.is_number_unsigned()
                             ? " (got " + std::to_string(dim.get<int64_t>()) + ")"
                             : std::string()));
      }
      info.shape.push_back(static_cast<int64_t>(size));
      overflow = overflow || __builtin_mul_overflow(elements, size, &elements);
    }
    uint64_t byte_count = 0;
    const auto element_size = static_cast<uint64_t>(c10::elementSize(info.dtype));
    overflow = overflow || __builtin_mul_overflow(elements, element_size, &byte_count);

    const auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !read_size((*offsets)[0], info.begin) || !read_size((*offsets)[1], info.end)) {
      throw UserError(where + " needs 'data_offsets' [begin, end] of two non-negative integers");
    }
    if (info.begin > info.end) {
      throw UserError(where + " has data_offsets " + offsets_text(info.begin, info.end) +
                      " with begin after end");
    }
    if (info.end > data_size) {
      throw UserError(where + " data_offsets " + offsets_text(info.begin, info.end) +
                      " point past the end of the file (" + std::to_string(data_size) +
                      " bytes of data)");
    }
    if (overflow || byte_count != info.end - info.begin) {
      throw UserError(where + " has shape " + shape_text(info.shape) + " of " +
                      dtype->get<std::string>() + (overflow ? " (too large)" : "") +
                      " which does not match data_offsets " + offsets_text(info.begin, info.end) +
                      " (" + std::to_string(info.end - info.begin) + " bytes)");
    }
    tensors_.push_back(std::move(info));
  }

  // File order; then any two non-empty neighbouring ranges must not overlap.
  std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const TensorInfo* previous = nullptr;
  for (const auto& info : tensors_) {
    if (info.begin == info.end) continue;
    if (previous != nullptr && info.begin < previous->end) {
      throw UserError(file + ": tensors " + quoted_name(previous->name) + " " +
                      offsets_text(previous->begin, previous->end) + " and " +
                      quoted_name(info.name) + " " + offsets_text(info.begin, info.end) +
                      " overlap");
    }
    previous = &info;
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() = default;

const std::filesystem::path& SafetensorsFile::path() const { return mapping_->path; }
const std::vector<TensorInfo>& SafetensorsFile::tensors() const { return tensors_; }
const std::map<std::string, std::string>& SafetensorsFile::metadata() const { return metadata_; }

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) != 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) {
    throw UserError(mapping_->path.string() + ": no tensor named " + quoted_name(name));
  }
  return tensors_[it->second];
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo& meta = info(name);
  const auto options = torch::TensorOptions().dtype(meta.dtype).device(torch::kCPU);
  uint8_t* start = mapping_->data() + meta.begin;
  const auto element_size = c10::elementSize(meta.dtype);
  if (reinterpret_cast<uintptr_t>(start) % element_size != 0) {
    // Writers other than the reference one may leave ranges unaligned; kernels expect aligned
    // data, so such a tensor is copied once instead of viewed.
    auto copy = torch::empty(meta.shape, options);
    // An empty tensor has no storage (data_ptr() is null): memcpy(nullptr, ..., 0) is still UB.
    if (meta.end > meta.begin) std::memcpy(copy.data_ptr(), start, meta.end - meta.begin);
    return copy;
  }
  std::shared_ptr<Mapping> keep_mapped = mapping_;
  return torch::from_blob(
      start, meta.shape, [keep_mapped](void*) {}, options);
}

}  // namespace llm
