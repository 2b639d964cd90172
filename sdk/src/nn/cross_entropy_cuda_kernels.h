#pragma once
// Cross-entropy over rows of logits in one kernel (cross_entropy_kernels.cu), behind a C interface
// like fused_cuda_kernels.h: raw pointers, `kind` the element type (0: fp32, 1: fp16, 2: bf16),
// `stream` a cudaStream_t, 0 or the cudaError_t as the result.
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// For each row n of logits [rows, vocab] (contiguous), in fp32: lse = log(sum_v exp(logits[n, v])),
// loss[n] = lse - logits[n, targets[n]], or 0 where targets[n] is ignore_index (or outside the
// vocabulary). Unless grad is null, grad[n, v] = exp(logits[n, v] - lse) - (v == targets[n]),
// 0 on ignored rows, rounded once to the element type: the logits' gradient of the summed loss.
// grad may be the logits themselves (computed in place).
int llm_cross_entropy_rows_cuda(const void* logits, const int64_t* targets, int64_t ignore_index,
                                int64_t rows, int64_t vocab, float* loss, void* grad, int kind,
                                void* stream);

#ifdef __cplusplus
}
#endif
