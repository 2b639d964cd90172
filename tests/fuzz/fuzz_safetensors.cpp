// libFuzzer target: a .safetensors file (header parser, offset/shape checks, tensor views).
#include <cstdint>

#include "fuzz_support.hpp"
#include "llm/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = llm::fuzz::scratch_dir() / "input.safetensors";
  llm::fuzz::write_file(file, data, size);
  llm::fuzz::expect_only_user_errors([&] {
    llm::SafetensorsFile st(file);
    for (const auto& info : st.tensors()) {
      // Touch the whole view: every byte it claims must lie inside the mapping.
      const auto view = st.tensor(info.name);
      if (view.numel() > 0) (void)view.flatten().view(torch::kUInt8).sum().item<int64_t>();
    }
  });
  return 0;
}
