// Logging setup: spdlog to stderr, human text or JSON lines.
// Call InitLogging once from main before any work starts; later calls replace
// the logger (not safe while other threads log). Logging itself is thread-safe.
#pragma once

#include <string_view>

#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

// level: trace, debug, info, warn, error, off.
Status InitLogging(std::string_view level, LogFormat format);

}  // namespace sluice
