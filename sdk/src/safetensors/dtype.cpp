// The safetensors dtype names and their LibTorch scalar types.
#include <string>
#include <utility>

#include "llm/error.hpp"
#include "llm/safetensors.hpp"

namespace llm {

namespace {

constexpr std::pair<const char*, torch::ScalarType> kDtypes[] = {
    {"F64", torch::kDouble},    {"F32", torch::kFloat}, {"F16", torch::kHalf},
    {"BF16", torch::kBFloat16}, {"I64", torch::kLong},  {"I32", torch::kInt},
    {"I16", torch::kShort},     {"I8", torch::kChar},   {"U8", torch::kByte},
    {"BOOL", torch::kBool},
};

}  // namespace

torch::ScalarType safetensors_dtype(const std::string& name, const std::string& source) {
  for (const auto& [text, dtype] : kDtypes) {
    if (name == text) return dtype;
  }
  std::string shown = name.size() > 20 ? name.substr(0, 20) + "..." : name;
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  throw UserError(source + ": unknown dtype '" + shown +
                  "' (expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
}

std::string safetensors_dtype_name(torch::ScalarType dtype) {
  for (const auto& [text, known] : kDtypes) {
    if (dtype == known) return text;
  }
  throw UserError(std::string("dtype ") + c10::toString(dtype) +
                  " cannot be stored in a safetensors file");
}

}  // namespace llm
