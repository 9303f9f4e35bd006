// Logging setup: spdlog to stderr, human text or JSON lines.
// Call InitLogging once from main before any work starts; later calls replace
// the logger (not safe while other threads log). Logging itself is thread-safe.
//
// The unit a line is about: while a thread works on a unit it holds a
// ScopedLogUnit, and JSON lines logged on that thread carry the unit id as
// "unit" ({"level", "msg", "ts", "unit"}). Text lines name the unit in the
// message ("unit 00003: ..."), as every message about a unit does.
#pragma once

#include <string>
#include <string_view>

#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

// level: trace, debug, info, warn, error, off.
Status InitLogging(std::string_view level, LogFormat format);

// Marks the calling thread as working on unit `unit_id` until destroyed; the
// previous unit (nesting: a pipeline stage run by a thread that waits for
// another unit) is restored then. Thread-local; not movable.
class ScopedLogUnit {
 public:
  explicit ScopedLogUnit(const std::string& unit_id);
  ~ScopedLogUnit();
  ScopedLogUnit(const ScopedLogUnit&) = delete;
  ScopedLogUnit& operator=(const ScopedLogUnit&) = delete;

 private:
  const std::string* previous_;
};

// The calling thread's unit id, or empty.
std::string_view CurrentLogUnit();

}  // namespace sluice
