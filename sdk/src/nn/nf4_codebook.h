#pragma once
// NF4's 16 values (QLoRA, appendix E; bitsandbytes' table): the quantiles of N(0, 1) normalised to
// [-1, 1], with an exact zero, as fp32. One list for the CPU quantizer (nf4.cpp) and the CUDA
// dequantizer (nf4_dequantize.cu), which must agree bit for bit; an initializer because the CUDA
// table lives in __constant__ memory.
#define LLM_NF4_VALUES                                                                          \
  {                                                                                             \
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,                   \
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,              \
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, \
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f                    \
  }
