// --device and --precision parsing. Parsed by hand: torch::Device's own parser throws c10::Error
// (an internal error) on user typos.
#include "llm/device.hpp"

#include <algorithm>
#include <cctype>

#include <torch/cuda.h>
#ifdef LLM_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include "llm/error.hpp"

namespace llm {

namespace {

std::string lowercase_trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t");
  std::string out = text.substr(first, last - first + 1);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

torch::Device parse_device(const std::string& text) {
  const std::string value = lowercase_trimmed(text);
  if (value == "cpu") return torch::Device(torch::kCPU);

  const std::string cuda = "cuda";
  if (value.compare(0, cuda.size(), cuda) != 0) {
    throw UserError("--device '" + text + "' is not a device (expected cpu, cuda or cuda:N)");
  }
  int index = -1;
  if (value.size() > cuda.size()) {
    const std::string digits = value.substr(cuda.size() + 1);
    if (value[cuda.size()] != ':' || digits.empty() || digits.size() > 4 ||
        !std::all_of(digits.begin(), digits.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; })) {
      throw UserError("--device '" + text + "' is not a device (expected cpu, cuda or cuda:N)");
    }
    index = std::stoi(digits);
  }
  if (!torch::cuda::is_available()) {
    throw UserError("--device '" + text +
                    "' asks for CUDA, but no CUDA device is available (use --device cpu)");
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    throw UserError("--device '" + text + "': only " + std::to_string(count) +
                    " CUDA device(s) are visible (cuda:0 to cuda:" + std::to_string(count - 1) +
                    ")");
  }
  // Plain "cuda" means the current device, as in PyTorch.
  return index < 0 ? torch::Device(torch::kCUDA)
                   : torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

torch::ScalarType parse_precision(const std::string& text, const torch::Device& device) {
  const std::string value = lowercase_trimmed(text);
  if (value.empty()) {
    if (!device.is_cuda()) return torch::kFloat;
    // Turing and older (a 2080 Ti is 7.5) have no bf16 arithmetic: fp16 with loss scaling.
    const int capability = cuda_compute_capability(device);
    return capability >= 0 && capability < 80 ? torch::kHalf : torch::kBFloat16;
  }
  // The lit-gpt spellings ("bf16-true", "16-true", "32-true") mean the same: weights and
  // compute in that type.
  if (value == "fp32" || value == "32-true" || value == "32" || value == "float32") {
    return torch::kFloat;
  }
  if (value == "bf16" || value == "bf16-true" || value == "bfloat16") return torch::kBFloat16;
  if (value == "fp16" || value == "16-true" || value == "16" || value == "float16") {
    return torch::kHalf;
  }
  throw UserError("--precision '" + text +
                  "' is not supported (expected fp32, bf16 or fp16; also 32-true, bf16-true, "
                  "16-true)");
}

int cuda_compute_capability(const torch::Device& device) {
#ifdef LLM_WITH_CUDA
  if (!device.is_cuda()) return -1;
  const auto* properties = at::cuda::getDeviceProperties(
      device.has_index() ? device.index() : at::cuda::current_device());
  return properties->major * 10 + properties->minor;
#else
  (void)device;
  return -1;
#endif
}

std::string default_precision_reason(const torch::Device& device) {
  if (!device.is_cuda()) return "--precision unset: fp32 on the CPU";
  const int capability = cuda_compute_capability(device);
  const std::string sm =
      capability < 0 ? std::string("unknown")
                     : std::to_string(capability / 10) + "." + std::to_string(capability % 10);
  if (capability >= 0 && capability < 80) {
    return "--precision unset: fp16 mixed precision on " + device.str() + " (compute capability " +
           sm +
           ", bf16 needs 8.0): fp16 frozen weights, fp32 LoRA weights and optimizer, dynamic "
           "loss scaling";
  }
  return "--precision unset: bf16 on " + device.str() + " (compute capability " + sm + ")";
}

std::string precision_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat:
      return "fp32";
    case torch::kBFloat16:
      return "bf16";
    case torch::kHalf:
      return "fp16";
    default:
      return c10::toString(dtype);
  }
}

}  // namespace llm
