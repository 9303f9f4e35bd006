// JobSession: a job opened once (preflight, the output directory, the models)
// whose units then run on request, in one call or in many. RunJob is a session
// that runs the units of its --shard in one call. A scale-out runner keeps one
// session per worker process and runs the units it is handed, so each process
// plans, fingerprints and loads the model once (python/sluice/dask.py).
//
// Sharing an output directory (DESIGN.md §4, docs/scale-out.md). A session
// holds, from Open until it is destroyed:
// - alone (shard_count 1, shared_output false): <out>/_sluice/lock exclusively;
// - --shard I/N: that lock shared, and <out>/_sluice/locks/shard-I-of-N exclusively;
// - RunOptions::shared_output: that lock shared only; processes run any units.
// When the lock is shared, each unit runs under <out>/_sluice/locks/unit-<id>,
// held exclusively from before the unit's marker is checked until its output
// is committed or dropped: attempts of one unit (in any process or thread) take
// turns, and an attempt that finds the marker reports the committed unit and
// writes nothing. The first commit wins; a task that runs twice (a worker lost
// after committing, a retry, two attempts at once) never duplicates output.
// Database sinks commit in the database (TableSink, "first commit wins" there too).
//
// Thread-safety: Plan and RunUnits may be called from several threads at once.
// Each RunUnits call runs up to execution.workers units in parallel;
// execution.memory_limit is planned for execution.workers units in flight per
// process, so concurrent calls should not run more than that together.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

class RunMetrics;
struct JobFingerprint;
struct ScoreReference;

class JobSession {
 public:
  // Preflight as RunJob (plan, schema, statistics; model.load: preload loads
  // the models here, lazy on the first unit run), then the output directory:
  // checked, locked as above, and prepared (_sluice/job.json written, or
  // matched: processes opening sessions of one job at once all succeed). A run
  // of the whole job also removes what killed runs left. The spec is copied;
  // `env`, options.models and options.interrupt are borrowed and must outlive
  // the session. kInvalidArgument for shared_output with restart. Errors here
  // are exit 2: nothing of the job was written.
  static Result<std::unique_ptr<JobSession>> Open(const JobSpec& spec, Env* env, const RunOptions& options);
  ~JobSession();
  JobSession(const JobSession&) = delete;
  JobSession& operator=(const JobSession&) = delete;

  const JobSpec& spec() const;
  // The job's fingerprint digest (spec, model files, inputs); job.json records it.
  const std::string& fingerprint() const;
  // Ids of the units of this session's --shard (every unit without one), in plan order.
  std::vector<std::string> ShardUnitIds() const;
  // The plan and which units are committed now (PlanJob's answer).
  Result<PlanSummary> Plan();
  // Models loaded by this session so far (routing: per segment model): one
  // for a session without model.route, however many units it ran.
  int64_t model_loads() const;

  // Runs the units `unit_ids` (each once; any order: they run in plan order)
  // that are not committed, up to execution.workers at a time, with
  // execution.retries. The report covers these units: units_total is their
  // number, units_skipped those found committed (by an earlier run, or by
  // another attempt meanwhile), and rows and parts count every committed one,
  // in plan order. model_loads is the session's model_loads(). exit_code:
  // kUnitsFailed when some unit failed (recorded in _sluice/failed/),
  // kRejectLimit when a unit alone crossed an errors.max_rejected count,
  // kInterrupted on options.interrupt. A percentage limit is the caller's to
  // check (RunJob for its run, FinalizeOutput for the job). Never writes
  // _SUCCESS. kInvalidArgument (nothing run) for an id that is not a unit of
  // the plan, or given twice.
  Result<JobReport> RunUnits(const std::vector<std::string>& unit_ids);

  // Stops the session's runs: no new unit starts, units in flight stop at
  // their next batch without committing (as on RunOptions::interrupt), and
  // RunUnits returns `code` with `reason` as its error. For alert `fail`
  // rules (exit 4); running the job again resumes it. Any thread.
  void RequestStop(ExitCode code, std::string reason);

  // Leaves the DuckDB databases the session keeps between units (Parquet
  // input and output) to the end of the process, never closed (DuckDbPool::
  // LeaveIdleToExit): for a process that exits after its run. Units run later
  // open new ones. Any thread, while no RunUnits call runs.
  void LeaveIdleDatabasesToExit();

  // The session's live metrics (observe/metrics.h), for the monitor and the
  // run report; counts every unit this session ran.
  RunMetrics* metrics();
  // What job.json records (exec/output_dir.h), for the run report.
  const JobFingerprint& job_fingerprint() const;
  // The stats file's reference histogram of the score column, or null
  // (observe/metrics.h); for the alert rules and the run report.
  const ScoreReference* score_reference() const;

 private:
  struct State;
  explicit JobSession(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// `sluice finalize OUT_DIR`: completes an output directory whose units were run
// by several processes (array-job shards, Dask workers). Reads the plan that
// _sluice/job.json records and checks that every unit has a valid marker (it
// parses; its files are there with their sizes). Complete, and within
// errors.max_rejected over the whole job: writes _SUCCESS (the manifest a run
// of the whole job writes, totals from the markers), and removes temporaries
// that killed attempts left when no run holds the directory. Otherwise writes
// nothing. Idempotent.
struct FinalizeReport {
  int64_t units_total = 0;
  int64_t units_done = 0;
  // Units without a valid marker, in plan order: "00007: pending",
  // "00007: failed after 3 attempt(s): io_error: …", "00007: stale marker (…)".
  std::vector<std::string> missing;
  int64_t rows_in = 0;
  int64_t rows_out = 0;
  int64_t rows_rejected = 0;
  int64_t rows_filtered = 0;
  // kSuccess (_SUCCESS written), kUnitsFailed (units missing), kRejectLimit.
  ExitCode exit_code = ExitCode::kSuccess;
  std::string error;  // why, when exit_code != kSuccess
};
// kNotFound / kCorruption when `out` holds no readable job.json (exit 2).
Result<FinalizeReport> FinalizeOutput(Env* env, const std::string& out);

}  // namespace sluice
