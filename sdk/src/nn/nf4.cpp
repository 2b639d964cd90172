#include "llm/nn/nf4.hpp"

#include <cmath>
#include <stdexcept>

#include <torch/torch.h>

#include "nf4_codebook.h"

#ifdef LLM_WITH_NF4_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "nf4_cuda_kernel.h"
#endif

namespace llm {
namespace {

// Stored as fp32 (nf4_codebook.h).
constexpr float kNf4Values[16] = LLM_NF4_VALUES;

// Index of the nearest entry of an ascending `table` for each value, ties to the lower index.
// The midpoint of two fp32 values is exact in fp64, and so is each comparison against it.
torch::Tensor nearest_index(const torch::Tensor& values, const torch::Tensor& table) {
  const auto t = table.to(values.device(), torch::kDouble);
  const auto midpoints = (t.slice(0, 0, -1) + t.slice(0, 1)) / 2;
  return torch::bucketize(values.to(torch::kDouble), midpoints).to(torch::kUInt8);
}

// x * (1 / absmax) clamped to [-1, 1], per row of `blocks` [n, block] (as bitsandbytes scales);
// an all-zero block maps to 0.
torch::Tensor normalised(const torch::Tensor& blocks, const torch::Tensor& absmax) {
  const auto inverse =
      torch::where(absmax > 0, absmax.reciprocal(), torch::zeros_like(absmax)).unsqueeze(1);
  return (blocks * inverse).clamp(-1.0, 1.0);
}

void require_float(const torch::Tensor& t, const char* what) {
  if (!t.defined() || !torch::isFloatingType(t.scalar_type())) {
    throw std::invalid_argument(std::string(what) + ": expected a floating-point tensor");
  }
}

}  // namespace

torch::Tensor nf4_codebook() {
  return torch::from_blob(const_cast<float*>(kNf4Values), {16}, torch::kFloat).clone();
}

torch::Tensor dynamic_map_8bit() {
  // bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for
  // exponent e = 0..6, 2^e fraction values (midpoints of linspace(0.1, 1, 2^e + 1)) scaled by
  // 10^(e - 6), both signs; then 0 and 1; sorted. Same LibTorch linspace and fp32 arithmetic.
  std::vector<torch::Tensor> parts;
  for (int64_t e = 0; e < 7; ++e) {
    const auto bounds = torch::linspace(0.1, 1.0, (int64_t{1} << e) + 1, torch::kFloat);
    const auto means = (bounds.slice(0, 0, -1) + bounds.slice(0, 1)) / 2.0;
    const auto scaled = means * std::pow(10.0, static_cast<double>(e - 6));
    parts.push_back(scaled);
    parts.push_back(-scaled);
  }
  parts.push_back(torch::zeros({1}, torch::kFloat));
  parts.push_back(torch::ones({1}, torch::kFloat));
  return std::get<0>(torch::cat(parts).sort());
}

BlockQuantized8 quantize_blockwise_8bit(const torch::Tensor& values, int64_t block) {
  require_float(values, "quantize_blockwise_8bit");
  const auto flat = values.reshape({-1}).to(torch::kFloat);
  const int64_t n = flat.numel();
  const int64_t blocks = (n + block - 1) / block;
  // Pad the short last block with zeros: they change neither its absmax nor the real codes.
  const auto padded = torch::constant_pad_nd(flat, {0, blocks * block - n}).view({blocks, block});
  BlockQuantized8 q;
  q.block = block;
  q.absmax = std::get<0>(padded.abs().max(1));
  q.codes = nearest_index(normalised(padded, q.absmax), dynamic_map_8bit())
                .view({-1})
                .slice(0, 0, n)
                .contiguous();
  return q;
}

torch::Tensor dequantize_blockwise_8bit(const BlockQuantized8& q) {
  const auto map = dynamic_map_8bit().to(q.codes.device());
  const int64_t n = q.codes.numel();
  const auto values = map.index_select(0, q.codes.to(torch::kLong));
  const auto block_of =
      torch::div(torch::arange(n, q.codes.options().dtype(torch::kLong)), q.block, "floor");
  return values * q.absmax.index_select(0, block_of);
}

int64_t Nf4Tensor::numel() const {
  int64_t n = 1;
  for (const auto d : shape) n *= d;
  return n;
}

int64_t Nf4Tensor::storage_bytes() const {
  int64_t bytes = packed.numel();
  for (const auto* t : {&absmax, &absmax_codes, &absmax_scale, &absmax_offset}) {
    if (t->defined()) bytes += t->numel() * static_cast<int64_t>(t->element_size());
  }
  return bytes;
}

Nf4Tensor nf4_quantize(const torch::Tensor& weight, bool nested) {
  require_float(weight, "nf4_quantize");
  const int64_t n = weight.numel();
  if (n % kNf4BlockSize != 0) {
    throw std::invalid_argument("nf4_quantize: " + std::to_string(n) +
                                " elements is not a multiple of the block size 64");
  }
  torch::NoGradGuard no_grad;
  Nf4Tensor q;
  q.shape = weight.sizes().vec();
  const auto blocks = weight.detach().reshape({-1, kNf4BlockSize}).to(torch::kFloat);
  const auto absmax = std::get<0>(blocks.abs().max(1));
  const auto indices = nearest_index(normalised(blocks, absmax), nf4_codebook()).view({-1, 2});
  q.packed = indices.select(1, 0).__lshift__(4).bitwise_or(indices.select(1, 1)).contiguous();
  if (!nested) {
    q.absmax = absmax;
    return q;
  }
  q.absmax_offset = absmax.mean();
  const auto second = quantize_blockwise_8bit(absmax - q.absmax_offset, kNestedBlockSize);
  q.absmax_codes = second.codes;
  q.absmax_scale = second.absmax;
  return q;
}

torch::Tensor nf4_indices(const Nf4Tensor& q) {
  return torch::stack({q.packed.__rshift__(4), q.packed.bitwise_and(15)}, 1).view({-1});
}

torch::Tensor nf4_block_absmax(const Nf4Tensor& q) {
  if (!q.nested()) return q.absmax;
  BlockQuantized8 second;
  second.codes = q.absmax_codes;
  second.absmax = q.absmax_scale;
  second.block = kNestedBlockSize;
  return dequantize_blockwise_8bit(second) + q.absmax_offset;
}

torch::Tensor nf4_dequantize_reference(const Nf4Tensor& q, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const auto codebook = nf4_codebook().to(q.packed.device());
  const auto values = codebook.index_select(0, nf4_indices(q).to(torch::kLong));
  const auto scaled = values.view({-1, kNf4BlockSize}) * nf4_block_absmax(q).unsqueeze(1);
  return scaled.to(dtype).view(q.shape);
}

bool nf4_cuda_kernel_built() {
#ifdef LLM_WITH_NF4_CUDA
  return true;
#else
  return false;
#endif
}

torch::Tensor nf4_dequantize(const Nf4Tensor& q, torch::ScalarType dtype) {
#ifdef LLM_WITH_NF4_CUDA
  if (q.packed.is_cuda() &&
      (dtype == torch::kFloat || dtype == torch::kHalf || dtype == torch::kBFloat16)) {
    torch::NoGradGuard no_grad;
    const c10::cuda::CUDAGuard guard(q.packed.device());
    const auto absmax = nf4_block_absmax(q).contiguous();
    const auto packed = q.packed.contiguous();
    auto out = torch::empty(q.shape, packed.options().dtype(dtype));
    const int kind = dtype == torch::kFloat ? 0 : dtype == torch::kHalf ? 1 : 2;
    const int status = llm_nf4_dequantize_cuda(packed.data_ptr<uint8_t>(), absmax.data_ptr<float>(),
                                               out.data_ptr(), packed.numel(), kind,
                                               c10::cuda::getCurrentCUDAStream().stream());
    if (status != 0) {
      throw std::runtime_error("NF4 dequantization kernel failed to launch (CUDA error " +
                               std::to_string(status) + ")");
    }
    return out;
  }
#endif
  return nf4_dequantize_reference(q, dtype);
}

}  // namespace llm
