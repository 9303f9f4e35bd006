// Planner: the input, expanded into an ordered list of work units.
// In this version every input file is one unit (byte-range splitting, time and
// hash partitioning come with the parallel executor). Order = sorted paths, so
// unit ids ("00000", "00001", …) are stable across runs of the same input.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/source.h"

namespace sluice {

struct WorkUnit {
  int index = 0;
  std::string id;   // zero-padded index
  FileRange range;  // the file (whole)
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

// Errors: "input.path: no file matches 'data/*.csv'"; directories and unreadable
// entries are named.
Result<std::vector<WorkUnit>> PlanUnits(Env* env, const InputSpec& input);

// "00007".
std::string UnitId(int index);

}  // namespace sluice
