# llmhost_add_plugin(NAME <name> SOURCES <files...>)
# Builds libllm_<name>.so as a MODULE: hidden visibility (two plugins never shadow each other's
# symbols), --no-undefined (a plugin may depend on the SDK and libtorch only, never on the host),
# output in the build tree's plugin directory, installed next to the others.
function(llmhost_add_plugin)
  cmake_parse_arguments(P "" "NAME" "SOURCES" ${ARGN})
  set(target llm_${P_NAME})
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE llm::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${LLMHOST_BUILD_PLUGIN_DIR}")
  target_link_options(${target} PRIVATE "-Wl,--no-undefined")
  if(TARGET llmsdk_pch)
    llmhost_use_pch(${target})
  endif()
  if(COMMAND llmhost_use_unity_build)
    llmhost_use_unity_build(${target})
  endif()
  if(COMMAND llmhost_set_warnings)
    llmhost_set_warnings(${target})
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION "${LLMHOST_INSTALL_PLUGIN_DIR}")
  set_property(GLOBAL APPEND PROPERTY LLMHOST_PLUGIN_TARGETS ${target})
endfunction()
