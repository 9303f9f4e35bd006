// The job-wide end of a run, shared by RunJob (the run that finds every unit of
// the plan committed writes _SUCCESS) and FinalizeOutput (`sluice finalize`):
// the markers of all units, their totals, and the job's reject limit.
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <vector>

#include "exec/output_dir.h"
#include "sluice/job.h"

namespace sluice {

// Adds a committed unit's rows and files to `report` (and counts it done).
void AddUnitTotals(const UnitMarker& marker, JobReport* report);

// Whether `rejected` of `rows_in` rows is over errors.max_rejected, and the
// limit as messages name it ("errors.max_rejected is 1%").
bool RejectLimitExceeded(const RejectLimit& limit, int64_t rejected, int64_t rows_in);
std::string DescribeLimit(const RejectLimit& limit);

struct Completion {
  // Units without a valid marker (ReadValidMarker), in the order given; with
  // stop_at_missing only the first.
  std::vector<std::string> missing;
  std::vector<std::string> stale;  // those of `missing` whose marker is stale
  // When nothing is missing: every marker, in the order given, and their totals.
  std::vector<UnitMarker> markers;
  JobReport totals;
};

// Reads the markers of `unit_ids` (read-only). I/O errors only; a missing or
// stale marker is reported in Completion::missing.
Result<Completion> ReadCompletion(Env* env, const std::string& out, const std::vector<std::string>& unit_ids,
                                  bool stop_at_missing);

}  // namespace sluice
