// Loader test plugin: a shared library without the llmhost entry points.
extern "C" __attribute__((visibility("default"))) int some_unrelated_function() { return 42; }
