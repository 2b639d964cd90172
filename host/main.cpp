#include "cli.hpp"

int main(int argc, char** argv) { return llmhost::run_cli(argc, argv); }
