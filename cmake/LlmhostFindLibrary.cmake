# llmhost_find_library(<name> HEADER <file> NAMES <lib...> [DEFINES <def...>])
# Finds a C/C++ library by header + library file and defines the imported target llmhost::<name>.
function(llmhost_find_library name)
  cmake_parse_arguments(L "" "HEADER" "NAMES;DEFINES" ${ARGN})
  string(TOUPPER "${name}" upper)
  find_path(${upper}_INCLUDE_DIR ${L_HEADER})
  find_library(${upper}_LIBRARY NAMES ${L_NAMES})
  if(NOT ${upper}_INCLUDE_DIR OR NOT ${upper}_LIBRARY)
    message(FATAL_ERROR "${name} not found (header ${L_HEADER}, library ${L_NAMES}); "
                        "run scripts/setup.sh to install the Debian packages")
  endif()
  add_library(llmhost::${name} UNKNOWN IMPORTED)
  set_target_properties(llmhost::${name} PROPERTIES
    IMPORTED_LOCATION "${${upper}_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${${upper}_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "${L_DEFINES}")
endfunction()
