#pragma once
// 4-bit NormalFloat (NF4) block quantization as the QLoRA paper defines it (Dettmers et al. 2023,
// section 3 and appendix E), laid out as bitsandbytes stores it:
//   - the weight is flattened and cut into blocks of 64; each block keeps absmax = max |x|;
//   - each element becomes the index of the nearest of NF4's 16 values to x * (1 / absmax)
//     (clamped to [-1, 1]; ties go to the lower index);
//   - two indices per byte, the even element in the high nibble.
// Dequantized: W = code[index] * absmax, in fp32, rounded once to the compute dtype.
// Nested ("double") quantization, bitsandbytes' compress_statistics (lit-gpt's bnb.nf4-dq): the
// fp32 absmax values are centred on their mean, then 8-bit blockwise quantized in blocks of 256
// with the signed dynamic map (create_dynamic_map), each block with its own fp32 absmax:
//   absmax = dynamic_map[code8] * absmax2[i / 256] + mean.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "llm/export.hpp"

namespace llm {

constexpr int64_t kNf4BlockSize = 64;
constexpr int64_t kNestedBlockSize = 256;

LLM_API torch::Tensor nf4_codebook();      // fp32 [16], ascending, -1 ... 1 (QLoRA appendix E)
LLM_API torch::Tensor dynamic_map_8bit();  // fp32 [256]: bitsandbytes' signed dynamic map

// 8-bit blockwise quantization of a flat fp32 tensor (the last block may be short).
struct BlockQuantized8 {
  torch::Tensor codes;   // uint8 [n]
  torch::Tensor absmax;  // fp32 [ceil(n / block)]
  int64_t block = kNestedBlockSize;
};
LLM_API BlockQuantized8 quantize_blockwise_8bit(const torch::Tensor& values, int64_t block);
LLM_API torch::Tensor dequantize_blockwise_8bit(const BlockQuantized8& q);

struct LLM_API Nf4Tensor {
  std::vector<int64_t> shape;
  torch::Tensor packed;  // uint8 [numel / 2]
  torch::Tensor absmax;  // fp32 [numel / 64]; undefined when nested
  // Nested: absmax = dynamic_map[absmax_codes] * absmax_scale[i / 256] + absmax_offset.
  torch::Tensor absmax_codes;   // uint8 [numel / 64]
  torch::Tensor absmax_scale;   // fp32 [ceil(numel / 64 / 256)]
  torch::Tensor absmax_offset;  // fp32 []
  bool nested() const { return absmax_codes.defined(); }
  int64_t numel() const;
  int64_t storage_bytes() const;  // what the quantized form occupies
};

// `weight` (any floating dtype, numel a multiple of 64) quantized on its own device.
LLM_API Nf4Tensor nf4_quantize(const torch::Tensor& weight, bool nested);
LLM_API torch::Tensor nf4_indices(const Nf4Tensor& q);       // uint8 [numel], unpacked
LLM_API torch::Tensor nf4_block_absmax(const Nf4Tensor& q);  // fp32 [numel / 64]
// The weight [shape] in `dtype`: the CUDA kernel for CUDA tensors when it was built, else
// nf4_dequantize_reference. Both give bitwise the same values.
LLM_API torch::Tensor nf4_dequantize(const Nf4Tensor& q, torch::ScalarType dtype);
LLM_API torch::Tensor nf4_dequantize_reference(const Nf4Tensor& q, torch::ScalarType dtype);
LLM_API bool nf4_cuda_kernel_built();

}  // namespace llm
