# Sanitizer and fuzzing builds.
#   -DLLMHOST_SANITIZE=address,undefined   instruments every target of the tree (LibTorch stays
#                                          uninstrumented: run with ASAN_OPTIONS=detect_leaks=0)
#   -DLLMHOST_FUZZ=ON                      adds the libFuzzer targets of tests/fuzz (clang only)
set(LLMHOST_SANITIZE "" CACHE STRING "Comma-separated sanitizers for every target, e.g. address,undefined")
option(LLMHOST_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)

if(LLMHOST_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "LLMHOST_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
endif()

if(LLMHOST_SANITIZE)
  add_compile_options(-fsanitize=${LLMHOST_SANITIZE} -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=${LLMHOST_SANITIZE})
  if(LLMHOST_SANITIZE MATCHES "undefined")
    # A UB report fails the run instead of scrolling past. vptr/function checks compare type_info
    # across libraries, which hidden visibility (SDK, plugins) makes distinct: false reports.
    add_compile_options(-fno-sanitize-recover=all -fno-sanitize=vptr)
    if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      add_compile_options(-fno-sanitize=function)
    endif()
  endif()
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang" AND LLMHOST_SANITIZE MATCHES "address")
    # Clang links the ASan runtime statically into executables only; the SDK and the plugins
    # (-Wl,--no-undefined) need the shared runtime, found through the rpath.
    add_link_options(-shared-libasan)
    execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libclang_rt.asan-x86_64.so
      OUTPUT_VARIABLE LLMHOST_ASAN_RUNTIME OUTPUT_STRIP_TRAILING_WHITESPACE)
    get_filename_component(LLMHOST_ASAN_RUNTIME_DIR "${LLMHOST_ASAN_RUNTIME}" DIRECTORY)
    add_link_options("-Wl,-rpath,${LLMHOST_ASAN_RUNTIME_DIR}")
  endif()
endif()

if(LLMHOST_FUZZ)
  # Coverage feedback for libFuzzer in every library the fuzz targets reach.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
