#pragma once
// The NF4 dequantization kernel (nf4_dequantize.cu), behind a C interface so the .cu file needs
// neither LibTorch nor its compile flags.
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// out[2k], out[2k + 1] = nf4[packed[k] >> 4], nf4[packed[k] & 15], each times absmax[element / 64],
// multiplied in fp32 and rounded once to the output type (0: fp32, 1: fp16, 2: bf16). `stream` is
// a cudaStream_t. Returns 0 or the cudaError_t of the launch.
int llm_nf4_dequantize_cuda(const uint8_t* packed, const float* absmax, void* out,
                            int64_t packed_bytes, int out_kind, void* stream);

#ifdef __cplusplus
}
#endif
