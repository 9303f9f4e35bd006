// Process resource readings for memory planning, the run summary and the
// live metrics (observe/metrics.h).
// Thread-safety: safe from any thread.
#pragma once

#include <cstdint>

namespace sluice {

// Peak resident set size of this process so far, in bytes (getrusage).
uint64_t PeakRssBytes();

// Starts PeakRssBytes over from the current resident set size (Linux: writes
// 5 to /proc/self/clear_refs), so that a later reading is the peak of what ran
// in between. False when the system does not allow it (the peak then stays the
// process's).
bool ResetPeakRss();

// Resident set size of this process now, in bytes (/proc/self/statm); 0 when
// it cannot be read.
uint64_t CurrentRssBytes();

// User plus system CPU time of this process so far, in seconds (getrusage).
double CpuSeconds();

}  // namespace sluice
