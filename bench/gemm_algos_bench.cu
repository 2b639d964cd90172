// The frozen products of a LoRA training step at llama-2-7b (8 x 512 tokens), each timed with
// every algorithm cuBLASLt's heuristic offers (bench/NOTES.md, session 14): how far the
// algorithm cuBLAS picks by default is from the fastest it has, and what one product over the
// fused q/k/v or gate/up weights gains over its parts. Standalone: it needs nvcc and cuBLASLt.
//   nvcc -O3 -std=c++17 -arch=sm_90 bench/gemm_algos_bench.cu -lcublasLt -lcublas -o /tmp/ga
// Prints JSON lines: the product, its pass, the default algorithm's and the best one's
// microseconds and TFLOP/s, and cublasGemmEx's (what at::mm calls) for comparison.
// SUSTAINED_MS=N (session 20): each algorithm first runs back to back for N ms, so that it is timed
// as the training step runs it: at the board's power limit (a 7b step holds the H200 at ~690 of
// its 700 W, the SM clock at ~1.5 GHz, not 1.98), where an algorithm's speed follows from its
// energy per product. Each line then also gives the SM clock (MHz) and board power (W) that NVML
// (the driver's libnvidia-ml, opened at run time) read after each timing; the power is NVML's
// average over about a second, so it lags the first algorithms of the first product.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

#define CHECK_CUDA(call)                                                                         \
  do {                                                                                           \
    const cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)
#define CHECK_BLAS(call)                                                            \
  do {                                                                              \
    const int s_ = static_cast<int>(call);                                          \
    if (s_ != 0) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: status %d\n", __FILE__, __LINE__, #call, s_); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

__global__ void fill_random(__nv_bfloat16* out, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    unsigned s = static_cast<unsigned>(i) * 2654435761u + seed;
    s ^= s >> 13;
    s *= 0x5bd1e995u;
    s ^= s >> 15;
    out[i] = __float2bfloat16((s >> 8) / 16777216.0f - 0.5f);
  }
}

__nv_bfloat16* device_random(size_t n, unsigned seed) {
  __nv_bfloat16* d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, n * sizeof(__nv_bfloat16)));
  fill_random<<<1024, 256>>>(d, n, seed);
  CHECK_CUDA(cudaGetLastError());
  return d;
}

int sustained_ms = 0;
unsigned last_clock_mhz = 0, last_power_w = 0;

// The few NVML calls used, declared as the driver's library exports them (no nvml.h needed).
struct Nvml {
  void* device = nullptr;
  int (*clock_info)(void*, int, unsigned*) = nullptr;  // nvmlDeviceGetClockInfo; 1: SM clock
  int (*power_usage)(void*, unsigned*) = nullptr;      // nvmlDeviceGetPowerUsage (milliwatts)
  bool open() {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (lib == nullptr) return false;
    auto init = reinterpret_cast<int (*)()>(dlsym(lib, "nvmlInit_v2"));
    auto handle =
        reinterpret_cast<int (*)(unsigned, void**)>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    clock_info =
        reinterpret_cast<int (*)(void*, int, unsigned*)>(dlsym(lib, "nvmlDeviceGetClockInfo"));
    power_usage =
        reinterpret_cast<int (*)(void*, unsigned*)>(dlsym(lib, "nvmlDeviceGetPowerUsage"));
    return init != nullptr && handle != nullptr && clock_info != nullptr &&
           power_usage != nullptr && init() == 0 && handle(0, &device) == 0;
  }
} nvml;

float time_us(const std::function<void()>& launch, int repeats = 20) {
  for (int i = 0; i < 3; ++i) launch();
  if (sustained_ms > 0) {
    // Back to back until the board sits at its power limit (the clock settles within ~100 ms).
    cudaEvent_t heat_start, heat_now;
    CHECK_CUDA(cudaEventCreate(&heat_start));
    CHECK_CUDA(cudaEventCreate(&heat_now));
    CHECK_CUDA(cudaEventRecord(heat_start));
    for (float ms = 0; ms < sustained_ms;) {
      for (int i = 0; i < 10; ++i) launch();
      CHECK_CUDA(cudaEventRecord(heat_now));
      CHECK_CUDA(cudaEventSynchronize(heat_now));
      CHECK_CUDA(cudaEventElapsedTime(&ms, heat_start, heat_now));
    }
    CHECK_CUDA(cudaEventDestroy(heat_start));
    CHECK_CUDA(cudaEventDestroy(heat_now));
    repeats = 50;
  }
  cudaEvent_t start, end;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&end));
  CHECK_CUDA(cudaEventRecord(start));
  for (int i = 0; i < repeats; ++i) launch();
  CHECK_CUDA(cudaEventRecord(end));
  CHECK_CUDA(cudaEventSynchronize(end));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, end));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(end));
  if (nvml.device != nullptr) {
    nvml.clock_info(nvml.device, 1, &last_clock_mhz);
    unsigned milliwatts = 0;
    nvml.power_usage(nvml.device, &milliwatts);
    last_power_w = milliwatts / 1000;
  }
  return 1000.0f * ms / repeats;
}

// Row-major C[m, n] = A[m, k] op(B): forward is x W^T (B = W [n, k]), input gradient dy W
// (B = W [k, n]). In cuBLAS's column-major terms C^T = op(B)^T A^T.
struct Product {
  std::string name, pass;
  int m, n, k;
  bool b_transposed;  // forward: W is [n, k]
};

}  // namespace

int main() {
  if (const char* s = std::getenv("SUSTAINED_MS")) sustained_ms = std::atoi(s);
  if (sustained_ms > 0 && !nvml.open())
    std::fprintf(stderr, "no NVML: clocks and power not read\n");
  const int tokens = 8 * 512;
  const int hidden = 4096, inter = 11008, vocab = 32000;
  const std::vector<Product> products = {
      {"q/k/v/o", "forward", tokens, hidden, hidden, true},
      {"gate/up", "forward", tokens, inter, hidden, true},
      {"down", "forward", tokens, hidden, inter, true},
      {"lm_head", "forward", tokens, vocab, hidden, true},
      {"q/k/v/o", "input-grad", tokens, hidden, hidden, false},
      {"gate/up", "input-grad", tokens, hidden, inter, false},
      {"down", "input-grad", tokens, inter, hidden, false},
  };
  // The fused products of session 14 (slower than their parts then) only in the short timing.
  const std::vector<Product> fused = {
      {"q+k+v fused", "forward", tokens, 3 * hidden, hidden, true},
      {"gate+up fused", "forward", tokens, 2 * inter, hidden, true},
      {"q+k+v fused", "input-grad", tokens, hidden, 3 * hidden, false},
      {"gate+up fused", "input-grad", tokens, hidden, 2 * inter, false},
  };
  std::vector<Product> all = products;
  if (sustained_ms == 0) all.insert(all.end(), fused.begin(), fused.end());
  size_t workspace_bytes = 32u << 20;
  if (const char* w = std::getenv("WORKSPACE_MB")) workspace_bytes = std::atoi(w) * (1u << 20);
  void* workspace = nullptr;
  CHECK_CUDA(cudaMalloc(&workspace, workspace_bytes));
  cublasLtHandle_t lt;
  CHECK_BLAS(cublasLtCreate(&lt));
  cublasHandle_t blas;
  CHECK_BLAS(cublasCreate(&blas));
  CHECK_BLAS(cublasSetWorkspace(blas, workspace, workspace_bytes));

  for (const Product& p : all) {
    __nv_bfloat16* a = device_random(size_t(p.m) * p.k, 1);
    __nv_bfloat16* b = device_random(size_t(p.n) * p.k, 2);
    __nv_bfloat16* c = device_random(size_t(p.m) * p.n, 3);
    const double flops = 2.0 * p.m * p.n * p.k;
    // Column-major: C^T [n, m] = op(B)^T [n, k] x A^T [k, m].
    const cublasOperation_t op_b = p.b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ld_b = p.b_transposed ? p.k : p.n;
    const float one = 1.0f, zero = 0.0f;

    cublasLtMatmulDesc_t desc;
    CHECK_BLAS(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op_n = CUBLAS_OP_N;
    CHECK_BLAS(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_b, sizeof(op_b)));
    CHECK_BLAS(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof(op_n)));
    cublasLtMatrixLayout_t lb, la, lc;
    CHECK_BLAS(p.b_transposed ? cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, p.k, p.n, ld_b)
                              : cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, p.n, p.k, ld_b));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, p.k, p.m, p.k));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, p.n, p.m, p.n));
    cublasLtMatmulPreference_t pref;
    CHECK_BLAS(cublasLtMatmulPreferenceCreate(&pref));
    CHECK_BLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes, sizeof(workspace_bytes)));
    std::vector<cublasLtMatmulHeuristicResult_t> found(32);
    int returned = 0;
    CHECK_BLAS(cublasLtMatmulAlgoGetHeuristic(
        lt, desc, lb, la, lc, lc, pref, static_cast<int>(found.size()), found.data(), &returned));
    std::vector<float> times;
    std::vector<unsigned> clocks, powers;
    for (int i = 0; i < returned; ++i) {
      const cublasLtMatmulAlgo_t* algo = &found[i].algo;
      times.push_back(time_us([&] {
        CHECK_BLAS(cublasLtMatmul(lt, desc, &one, b, lb, a, la, &zero, c, lc, c, lc, algo,
                                  workspace, workspace_bytes, nullptr));
      }));
      clocks.push_back(last_clock_mhz);
      powers.push_back(last_power_w);
    }
    const float gemm_ex = time_us([&] {
      CHECK_BLAS(cublasGemmEx(blas, op_b, CUBLAS_OP_N, p.n, p.m, p.k, &one, b, CUDA_R_16BF, ld_b, a,
                              CUDA_R_16BF, p.k, &zero, c, CUDA_R_16BF, p.n, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    });
    const unsigned gemm_ex_clock = last_clock_mhz, gemm_ex_power = last_power_w;
    const int best = static_cast<int>(std::min_element(times.begin(), times.end()) - times.begin());
    auto tflops = [&](float us) { return flops / (us * 1e-6) / 1e12; };
    std::printf(
        "{\"product\": \"%s\", \"pass\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"algos\": %d, "
        "\"default_us\": %.1f, \"default_tflops\": %.0f, \"best_us\": %.1f, \"best_tflops\": %.0f, "
        "\"best_index\": %d, \"gemm_ex_us\": %.1f, \"gemm_ex_tflops\": %.0f, \"all_us\": [",
        p.name.c_str(), p.pass.c_str(), p.m, p.n, p.k, returned, times[0], tflops(times[0]),
        times[best], tflops(times[best]), best, gemm_ex, tflops(gemm_ex));
    for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.1f", i ? ", " : "", times[i]);
    std::printf("]");
    if (sustained_ms > 0) {
      std::printf(", \"sustained_ms\": %d, \"gemm_ex_mhz\": %u, \"gemm_ex_w\": %u, \"all_mhz\": [",
                  sustained_ms, gemm_ex_clock, gemm_ex_power);
      for (size_t i = 0; i < clocks.size(); ++i) std::printf("%s%u", i ? ", " : "", clocks[i]);
      std::printf("], \"all_w\": [");
      for (size_t i = 0; i < powers.size(); ++i) std::printf("%s%u", i ? ", " : "", powers[i]);
      std::printf("]");
    }
    std::printf("}\n");
    std::fflush(stdout);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    CHECK_CUDA(cudaFree(a));
    CHECK_CUDA(cudaFree(b));
    CHECK_CUDA(cudaFree(c));
  }
  return 0;
}
