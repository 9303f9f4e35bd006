// Datetime parts of timestamps (internal to preprocess).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "sluice/job.h"

namespace sluice {

// The part of `micros` (microseconds since the Unix epoch, UTC) as a number:
// kHour 0-23, kDayOfWeek 0 (Monday) - 6 (Sunday), kDay 1-31, kMonth 1-12,
// kYear (e.g. 2024), kEpoch whole seconds since the epoch (rounded down, so
// -1 us is -1 s). Works for timestamps before 1970 too.
double DatetimePartOf(int64_t micros, DatetimePart part);

}  // namespace sluice
