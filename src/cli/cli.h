// The `sluice` command line over an Env: `main` passes Env::Default(); test
// drivers pass an Env that injects faults (tests/crash).
// Exit codes (DESIGN.md §5): 0 success, 1 units failed, 2 invalid usage/spec/
// preflight, 3 reject limit exceeded, 4 alert, 130 interrupted.
#pragma once

#include "sluice/env.h"

namespace sluice {

int RunCli(int argc, char** argv, Env* env);

}  // namespace sluice
