#pragma once

namespace llmhost {

// Parses the command line, loads plugins, runs the task. Returns the process exit code:
// 0 success, 2 bad input (one line on stderr naming the file or flag), 1 internal error.
int run_cli(int argc, char** argv);

}  // namespace llmhost
