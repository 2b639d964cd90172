// Compiled only to produce the shared precompiled header (see sdk/CMakeLists.txt).
