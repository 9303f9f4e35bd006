// Calendar windows of partition.by: time (1h, 1d, 1w, 1mo), UTC, on
// microseconds since the Unix epoch. The same buckets as the output layout's
// time levels (sink/value_format.h AppendTimeBucketText): hours, days, ISO
// weeks starting Monday, calendar months. Instants before 1970 work too.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "sluice/job.h"

namespace sluice {

// Start of the window holding `micros`.
int64_t WindowStart(int64_t micros, TimeWindow window);
// Start of the window after the one starting at `start` (a WindowStart).
int64_t NextWindowStart(int64_t start, TimeWindow window);
// Starts of every window that meets [min_micros, max_micros], in order
// (empty when min > max). kInvalidArgument past `limit` windows, naming the
// span, so a misconfigured column (epoch 0 to 2100, hourly) cannot explode a plan.
Result<std::vector<int64_t>> WindowsBetween(int64_t min_micros, int64_t max_micros, TimeWindow window,
                                            size_t limit = 100000);

}  // namespace sluice
