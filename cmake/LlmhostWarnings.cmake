# Warnings on everywhere; third-party headers come in as SYSTEM so they stay quiet.
function(llmhost_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
  if(LLMHOST_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# Reuse the SDK's precompiled LibTorch header. GCC accepts a PCH only when -fPIC/-fPIE and the
# pedantic setting match, so executables are compiled -fPIC (valid in a PIE) instead of -fPIE.
function(llmhost_use_pch target)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
  target_precompile_headers(${target} REUSE_FROM llmsdk_pch)
endfunction()

# The PyTorch wheel's libtorch_cpu.so exports its own copies of some libstdc++ symbols
# (std::filesystem among them); whichever library comes first in the executable's dependency list
# wins for the whole process, and the wheel's copies crash when called with the system
# libstdc++'s objects. Listing libstdc++ first makes the system's copies win. Harmless elsewhere.
function(llmhost_prefer_system_libstdcxx target)
  target_link_options(${target} PRIVATE "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
endfunction()

# Unity batches (LLMHOST_UNITY_BUILD). Files with their own compile definitions are compiled
# alone (CMake leaves them out of the batches).
function(llmhost_use_unity_build target)
  if(LLMHOST_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
  endif()
endfunction()
