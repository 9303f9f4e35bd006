// Monitor: the thread that watches a running job (DESIGN.md §6). Every
// monitoring.interval it samples RunMetrics (RunMetrics::Sample), rewrites
// <out>/_sluice/metrics.prom (Prometheus textfile, atomically through the
// Env), evaluates the alert rules and prints a plain progress line; on a
// terminal the live bar on stderr redraws every 200 ms instead of the lines.
// When monitoring.metrics_addr is set it serves GET /metrics (the same
// exposition text, from RunMetrics at the moment of the request) over HTTP
// with cpp-httplib.
//
// Progress (stderr): a bar "[#####     ] 41% 1.2M/2.9M rows  812k rows/s
// ETA 2m03s  units 3/8 (1 failed)" redrawn in place ("\r", clearing the line),
// or without a terminal one such line per interval; Stop ends either with one
// summary line. ProgressMode::kOff (monitoring.progress: off, or --quiet)
// prints neither.
//
// While the live bar is shown, the default spdlog logger's sinks are wrapped
// so that a log line first erases the bar (Start wraps them, Stop restores
// them; both while no other thread logs).
//
// Thread-safety: Start and Stop from one thread (the run's); the monitor's own
// thread and the HTTP server's threads only read RunMetrics.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "observe/alerts.h"
#include "observe/metrics.h"
#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

struct MonitorOptions {
  const MonitoringSpec* spec = nullptr;  // borrowed; interval, metrics_addr
  std::string textfile;                  // <out>/_sluice/metrics.prom; empty = none
  ProgressMode progress = ProgressMode::kAuto;  // kOff for --quiet
  bool tty = false;                      // stderr is a terminal (kAuto: the live bar)
  AlertEngine* alerts = nullptr;         // borrowed; null = no rules
  // Called once, from the monitor's thread, when a `fail` rule fires.
  std::function<void(const std::string& reason)> on_fail;
};

class Monitor {
 public:
  // Starts the thread and, with metrics_addr, the HTTP server: kUnavailable
  // naming monitoring.metrics_addr when it cannot listen there (exit 2).
  static Result<std::unique_ptr<Monitor>> Start(RunMetrics* metrics, Env* env, MonitorOptions options);
  ~Monitor();  // Stop()

  // "HOST:PORT" the HTTP server listens on (port 0 resolved); empty when none.
  std::string metrics_address() const;

  // A last sample, textfile and alert evaluation, the progress summary line;
  // stops the server and the thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit Monitor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
