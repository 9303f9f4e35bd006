// Process resource readings for memory planning, the run summary and the
// live metrics (observe/metrics.h).
// Thread-safety: safe from any thread.
#pragma once

#include <cstdint>

namespace sluice {

// Peak resident set size of this process so far, in bytes (getrusage).
uint64_t PeakRssBytes();

// Resident set size of this process now, in bytes (/proc/self/statm); 0 when
// it cannot be read.
uint64_t CurrentRssBytes();

// User plus system CPU time of this process so far, in seconds (getrusage).
double CpuSeconds();

}  // namespace sluice
