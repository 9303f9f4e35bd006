// AlertEngine: evaluates monitoring.alerts rules against metric snapshots and
// carries out their actions (DESIGN.md §6).
//
// A rule's value comes from the snapshot (AlertSpec::Metric says how). A value
// that cannot be computed yet is not evaluated: error_rate before 1000 rows
// are read, score_mean / score_psi before 1000 scores, batch_latency_p99
// before 10 batches, rows_per_sec during the first 10 seconds. score_psi
// needs the reference histogram (ScoreReference) from the stats file; Create
// fails (exit 2, naming the rule) when a score_psi rule has none.
//
// PSI = sum over bins of (a - e) * ln(a / e), a and e the observed and
// reference fractions, each floored at 1e-4.
//
// A rule whose condition holds continuously for its `for` duration fires once
// (a rule without `for` on the first evaluation that holds). It re-arms after
// its condition has been false for one evaluation, and may then fire again.
// Actions:
//   log      a warning line: alert NAME fired: METRIC VALUE OP THRESHOLD
//   webhook  that line too, and an HTTP POST of a JSON body (AlertEvent as
//            JSON, plus job name and fingerprint) to the rule's url, through
//            cpp-httplib, off the evaluating thread, retried with backoff
//            (5 attempts, 0.5 s doubling, 5 s timeout each) on connection
//            errors and 5xx/429 answers; a final failure is logged, never
//            fails the job
//   fail     that line too, and fail_requested() becomes true: the monitor
//            stops the session (units in flight stop without committing, the
//            run exits 4, and running the job again resumes it)
//
// Thread-safety: Evaluate is called from one thread (the monitor's); the
// accessors are safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "observe/metrics.h"
#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

struct AlertEvent {
  std::string name;
  std::string metric;     // AlertMetricName
  std::string condition;  // as written: "error_rate > 0.01"
  double value = 0;
  double threshold = 0;
  std::string action;     // AlertActionName
  double at_seconds = 0;  // MetricsSnapshot::elapsed_seconds when it fired
  std::string delivery;   // webhook: "delivered", "failed: …", "pending"; else empty
  nlohmann::json ToJson() const;
};

class AlertEngine {
 public:
  // `reference`: the stats file's reference histogram of the score column
  // (null when there is none). `job_name` and `fingerprint` go in webhook bodies.
  static Result<std::unique_ptr<AlertEngine>> Create(const std::vector<AlertSpec>& rules,
                                                     const ScoreReference* reference, std::string job_name,
                                                     std::string fingerprint);
  ~AlertEngine();

  void Evaluate(const MetricsSnapshot& snapshot);
  // Waits up to `timeout_ms` for webhook deliveries in progress (end of run).
  void Flush(int64_t timeout_ms);

  bool fail_requested() const;
  std::string fail_reason() const;     // "alert NAME fired: …"
  std::vector<AlertEvent> fired() const;  // in firing order

 private:
  struct Impl;
  explicit AlertEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether the rule watches the score column (score_mean, score_psi).
bool WatchesScores(const AlertSpec& rule);

// The rule's condition as text, as AlertEvent::condition: "error_rate > 0.01".
std::string AlertCondition(const AlertSpec& rule);

// The population stability index of `observed` counts against reference
// `fractions` (same number of bins), as above.
double PopulationStabilityIndex(const std::vector<int64_t>& observed, const std::vector<double>& fractions);

}  // namespace sluice
