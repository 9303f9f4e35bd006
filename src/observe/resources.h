// Process resource readings for memory planning and the run summary.
// Thread-safety: safe from any thread.
#pragma once

#include <cstdint>

namespace sluice {

// Peak resident set size of this process so far, in bytes (getrusage).
uint64_t PeakRssBytes();

}  // namespace sluice
