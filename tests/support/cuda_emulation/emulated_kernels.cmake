# Included by tests/CMakeLists.txt (paths relative to tests/).
# The CUDA kernels tested on the CPU (tests/support/cuda_emulation): each .cu file compiled as C++
# against the emulated CUDA, its launches rewritten by a small tool, so CI, which has no GPU, runs
# the kernels themselves. No LibTorch: the binary builds in seconds. -fno-strict-aliasing: the
# kernels read bf16 packs through other types, as CUDA allows.
add_executable(llmhost_rewrite_launches support/cuda_emulation/rewrite_launches.cpp)
llmhost_set_warnings(llmhost_rewrite_launches)
set(LLMHOST_EMULATED_KERNEL_SOURCES)
foreach(kernel low_rank_kernels fused_kernels cross_entropy_kernels nf4_dequantize)
  set(rewritten "${CMAKE_CURRENT_BINARY_DIR}/cuda_emulation/${kernel}.cpp")
  add_custom_command(OUTPUT "${rewritten}"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${CMAKE_CURRENT_BINARY_DIR}/cuda_emulation"
    COMMAND llmhost_rewrite_launches "${PROJECT_SOURCE_DIR}/sdk/src/nn/${kernel}.cu" "${rewritten}"
    DEPENDS llmhost_rewrite_launches "${PROJECT_SOURCE_DIR}/sdk/src/nn/${kernel}.cu"
    COMMENT "Rewriting ${kernel}.cu's launches for the CUDA emulation" VERBATIM)
  list(APPEND LLMHOST_EMULATED_KERNEL_SOURCES "${rewritten}")
endforeach()
add_library(llmhost_cuda_emulation STATIC support/cuda_emulation/cuda_emulation.cpp)
target_include_directories(llmhost_cuda_emulation PUBLIC support/cuda_emulation)
target_compile_options(llmhost_cuda_emulation PRIVATE -ffp-contract=off)
llmhost_set_warnings(llmhost_cuda_emulation)
add_library(llmhost_emulated_kernels STATIC ${LLMHOST_EMULATED_KERNEL_SOURCES})
target_include_directories(llmhost_emulated_kernels
  PUBLIC "${PROJECT_SOURCE_DIR}/sdk/src/nn" PRIVATE support/cuda_emulation/include)
target_link_libraries(llmhost_emulated_kernels PUBLIC llmhost_cuda_emulation)
llmhost_set_warnings(llmhost_emulated_kernels)
# No contraction into FMA where a -march allows it: the tests' exact bits assume each operation
# rounds, as the references do.
target_compile_options(llmhost_emulated_kernels PRIVATE -fno-strict-aliasing -Wno-unknown-pragmas
  -ffp-contract=off)
file(GLOB_RECURSE LLMHOST_EMULATED_TEST_SOURCES CONFIGURE_DEPENDS sdk/*_emulated_test.cpp
  support/cuda_emulation/*_test.cpp)
add_executable(llmhost_emulated_kernel_tests ${LLMHOST_EMULATED_TEST_SOURCES} test_main.cpp)
target_include_directories(llmhost_emulated_kernel_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(llmhost_emulated_kernel_tests PRIVATE llmhost_emulated_kernels GTest::gtest)
target_compile_options(llmhost_emulated_kernel_tests PRIVATE -ffp-contract=off)
llmhost_set_warnings(llmhost_emulated_kernel_tests)
include(GoogleTest)
gtest_discover_tests(llmhost_emulated_kernel_tests DISCOVERY_TIMEOUT 120 DISCOVERY_MODE PRE_TEST)
# The kernel bench (bench/low_rank_kernels_bench.cu, run on the GPU machine) in --smoke mode:
# every variant once on a small shape, each agreeing with today's kernel. It includes the kernel
# file's source, so both are rewritten, side by side as in the tree.
set(LLMHOST_EMULATED_BENCH "${CMAKE_CURRENT_BINARY_DIR}/cuda_emulation/bench/low_rank_kernels_bench.cpp")
set(LLMHOST_EMULATED_BENCH_KERNEL
  "${CMAKE_CURRENT_BINARY_DIR}/cuda_emulation/sdk/src/nn/low_rank_kernels.cu")
add_custom_command(OUTPUT "${LLMHOST_EMULATED_BENCH}" "${LLMHOST_EMULATED_BENCH_KERNEL}"
  COMMAND "${CMAKE_COMMAND}" -E make_directory "${CMAKE_CURRENT_BINARY_DIR}/cuda_emulation/bench"
    "${CMAKE_CURRENT_BINARY_DIR}/cuda_emulation/sdk/src/nn"
  COMMAND llmhost_rewrite_launches "${PROJECT_SOURCE_DIR}/bench/low_rank_kernels_bench.cu"
    "${LLMHOST_EMULATED_BENCH}"
  COMMAND llmhost_rewrite_launches "${PROJECT_SOURCE_DIR}/sdk/src/nn/low_rank_kernels.cu"
    "${LLMHOST_EMULATED_BENCH_KERNEL}"
  DEPENDS llmhost_rewrite_launches "${PROJECT_SOURCE_DIR}/bench/low_rank_kernels_bench.cu"
    "${PROJECT_SOURCE_DIR}/sdk/src/nn/low_rank_kernels.cu"
  COMMENT "Rewriting the low-rank kernel bench's launches for the CUDA emulation" VERBATIM)
add_executable(llmhost_emulated_kernel_bench "${LLMHOST_EMULATED_BENCH}")
target_include_directories(llmhost_emulated_kernel_bench PRIVATE support/cuda_emulation/include
  "${PROJECT_SOURCE_DIR}/sdk/src/nn")
target_link_libraries(llmhost_emulated_kernel_bench PRIVATE llmhost_cuda_emulation)
target_compile_options(llmhost_emulated_kernel_bench PRIVATE -fno-strict-aliasing
  -Wno-unknown-pragmas -ffp-contract=off)
llmhost_set_warnings(llmhost_emulated_kernel_bench)
add_dependencies(llmhost_tests llmhost_emulated_kernel_tests llmhost_emulated_kernel_bench)
add_test(NAME EmulatedKernelBench.EveryVariantRunsAndAgreesWithTodaysKernel
  COMMAND llmhost_emulated_kernel_bench --smoke)
