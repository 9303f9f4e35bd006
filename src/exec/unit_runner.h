// One work unit, from its input range to a committed part:
//   read + preprocess  ->  predict  ->  postprocess + write
// over a fixed set of batch slots ("tokens") that are reused for the whole
// unit. mode: sync runs the three stages one batch at a time on the calling
// thread; mode: async runs them as a oneTBB parallel_pipeline, so the next
// batches are read and preprocessed while the current one is scored; the
// number of live tokens bounds the batches in flight.
//
// Memory: each token's share of execution.memory_limit is `token_bytes`. The
// reader's batches are capped in input bytes so that a token (input batch,
// feature matrix, outputs, output batch) stays within its share: the cap starts
// conservative and follows the measured bytes per input byte of earlier batches.
//
// Batch sizes: spec batch.size, or with batch.size: auto the session's
// BatchSizer, told when each batch was written. Every batch's time in each
// stage goes to the session's RunMetrics (UnitShared::metrics).
//
// Output is deterministic: rows keep input order within the part, and rejects
// are buffered per token and written in batch order, so sync, async and any
// number of workers or batch size give the same bytes.
//
// Thread-safety: RunUnit may run concurrently for different units sharing one
// UnitShared.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "exec/batch_sizer.h"
#include "exec/job_context.h"
#include "exec/output_dir.h"
#include "observe/metrics.h"
#include "sluice/job.h"
#include "sluice/sink.h"

namespace sluice {

struct UnitShared {
  const JobSpec* spec = nullptr;
  Env* env = nullptr;
  const JobContext* ctx = nullptr;
  size_t tokens = 1;           // batches in flight per unit (1 in sync mode)
  uint64_t token_bytes = 0;    // memory share of one token
  // batch.size: auto: the session's controller, which sets each batch's size
  // and is told how each batch went (borrowed). Null: spec->batch_size.
  BatchSizer* batch_sizer = nullptr;
  // Rejected rows seen so far in all units (for errors.max_rejected as a count).
  std::atomic<int64_t> rejected{0};
  // Set when the reject limit is crossed: other units stop at their next batch.
  std::atomic<bool> stop{false};
  const std::atomic<bool>* interrupt = nullptr;  // RunOptions::interrupt
  // JobSession::RequestStop: stops like an interrupt. Null when none.
  const std::atomic<bool>* stop_request = nullptr;
  // The session's live metrics: units update them per batch (rows, bytes,
  // rejects by reason, stage times, batches in flight, queue depths, scores)
  // and per unit (commit time); retries are counted here too. Null: none.
  RunMetrics* metrics = nullptr;
  // The score column's model output and element within it (ObserveScores);
  // score_output < 0 when there is none (yet: a lazy model binds it when the
  // first unit runs). Element is stored before output, and read after it.
  std::atomic<int> score_output{-1};
  std::atomic<size_t> score_element{0};
  // Database sinks (output.format sqlite | postgres): the job's table sink,
  // prepared (PrepareTable) before units run. Null for file outputs.
  TableSink* table_sink = nullptr;

  // Retried attempts by error code name.
  void CountRetry(StatusCode code);
  std::map<std::string, int64_t> Retries() const;
  // Full-jitter backoff before attempt `attempt + 1` (attempt >= 1), from spec->execution.retries.
  uint64_t BackoffMicros(int attempt);
  bool interrupted() const {
    return (interrupt != nullptr && interrupt->load()) || (stop_request != nullptr && stop_request->load());
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int64_t> retries_;  // guarded by mu_
  std::mt19937_64 rng_{std::random_device{}()};  // guarded by mu_
};

// The commit of a unit whose part is complete but not yet durable nor visible
// (UnitOutcome::State::kWritten): syncs, renames, the rejects and the marker,
// mostly waiting for the disk. Destroyed without a successful Commit, it drops
// the unit's output. May run on another thread than RunUnit, one at a time.
class UnitCommit {
 public:
  virtual ~UnitCommit() = default;
  // Errors: as RunUnit's; nothing of the unit is left visible, and running the
  // unit again may help when the error is transient.
  virtual Result<UnitMarker> Commit() = 0;
};

struct UnitOutcome {
  enum class State {
    kCommitted,    // part and marker written (database sinks: rows and progress row, then the marker file)
    kWritten,      // defer_commit: the part is complete; `commit` makes it durable and visible
    kRejectLimit,  // this unit crossed errors.max_rejected; not committed, its rejects kept
    kStopped,      // stopped because another unit crossed the limit, or interrupted; nothing kept
  };
  State state = State::kCommitted;
  UnitMarker marker;
  std::unique_ptr<UnitCommit> commit;  // kWritten only; holds no batch memory
};

// Errors: the unit failed (I/O, model, …); the message names the file and the
// rows or bytes concerned. Nothing of the unit is left visible. *retryable
// tells whether running the unit again may help: the error is transient and
// was not already retried as a prediction (execution.retries applies once).
// defer_commit: a unit writing files stops before its commit (kWritten), with
// its part finished (Parquet encoded) and its batches freed; a database sink's
// unit commits as usual.
Result<UnitOutcome> RunUnit(UnitShared* shared, const WorkUnit& unit, bool defer_commit, bool* retryable);

}  // namespace sluice
