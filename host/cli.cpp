#include "cli.hpp"

#include <iostream>

namespace llmhost {

int run_cli(int argc, char** argv) {
  (void)argc;
  (void)argv;
  std::cerr << "llmhost: not implemented yet\n";
  return 1;
}

}  // namespace llmhost
