// The `sluice` command line over an Env: `main` passes Env::Default(); test
// drivers pass an Env that injects faults (tests/crash).
// Exit codes (DESIGN.md §5): 0 success, 1 units failed, 2 invalid usage/spec/
// preflight, 3 reject limit exceeded, 4 alert, 130 interrupted.
//
// ParseShard and LoadJobFile are shared with the Python package (python/), so
// that both take a job and --shard the same way.
#pragma once

#include <string>
#include <vector>

#include "sluice/env.h"
#include "sluice/job.h"

namespace sluice {

int RunCli(int argc, char** argv, Env* env);

// "I/N" (0 <= I < N) into options->shard_index / shard_count; empty text
// leaves them. kInvalidArgument naming --shard otherwise.
Status ParseShard(const std::string& text, RunOptions* options);

// Loads the job file, its path made absolute first: paths in the spec resolve
// against the job file's directory, so the same job run from another working
// directory (or host) is the same job.
Result<JobSpec> LoadJobFile(Env* env, const std::string& job_path, const std::vector<std::string>& overrides);

}  // namespace sluice
