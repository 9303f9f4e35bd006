// BatchSizer: batch.size: auto. One controller per job session, shared by all
// its workers and units, that picks the batch size while the run goes.
//
// Closed loop on measured throughput: every finished (written) batch reports
// the rows it was asked for, the rows it got and when it finished. A size's
// throughput is the rows of its batches finished while it is tried, over the
// wall time since its first batch finished (that first one grows the tokens'
// buffers and is not counted), across all workers. Wall time, not the
// batches' stage times: those leave out the per-batch costs between stages
// that make small batches slow. The controller tries kAutoBatchSizes by hill
// climbing: the start size first, then larger
// sizes while the rows per second of the batches improve, then smaller ones
// if going up did not help; it keeps the best size measured and logs the
// choice. A size whose batches come out short (the reader caps batches in
// bytes so that a batch stays within its token's share of
// execution.memory_limit, and units end) is as large as it gets: the climb
// stops there, so memory never decides against the limit.
//
// The batch size never changes what is written: rows keep input order within a
// part whatever the batches' sizes (unit_runner.h).
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {

class BatchSizer {
 public:
  struct Options {
    std::vector<size_t> sizes;   // candidates, ascending; empty = kAutoBatchSizes
    size_t start = 4096;         // the first size tried (the candidate nearest to it)
    // Sizes above this are not tried (the smallest candidate always is); 0 = no bound.
    size_t max_size = 0;
    // A size is measured once this many batches (after its first) have
    // finished while it is tried ...
    int64_t min_batches = 3;
    // ... over at least this long.
    uint64_t min_window_us = 50000;
  };

  explicit BatchSizer(Options options);

  // Rows the next batch should have. The reader may make it shorter.
  size_t Next();
  // A batch asked for `target` rows (a value Next returned) got `rows` rows and
  // was written at `now_us` (Env::NowMicros). Batches of a size not being
  // tried (still in flight from the last one) are ignored.
  void Record(size_t target, size_t rows, uint64_t now_us);

  bool decided() const;
  // The chosen size; before the choice, the best measured so far (or the start).
  size_t best() const;
  // "16384 rows (rows/s: 4096 1.21M, 16384 1.43M, 65536 1.39M)"; a size
  // still being measured when the run ended has a "?".
  std::string Describe() const;

 private:
  struct Trial {
    int64_t batches = 0;  // counted batches (the first at this size is not)
    int64_t short_batches = 0;
    int64_t rows = 0;
    bool seen = false;      // the first batch of this size finished, at start_us
    uint64_t start_us = 0;
    uint64_t end_us = 0;    // the last counted batch finished
    bool measured = false;  // enough batches and time to compare
    uint64_t window_us() const { return end_us > start_us ? end_us - start_us : 0; }
    double RowsPerSec() const {
      return window_us() == 0 ? 0 : static_cast<double>(rows) * 1e6 / static_cast<double>(window_us());
    }
  };

  // Moves to the next size to try, or decides. Requires mu_ held.
  void Advance();
  std::string DescribeLocked() const;

  const Options options_;
  const size_t start_;  // index into options_.sizes
  mutable std::mutex mu_;
  std::vector<Trial> trials_;  // guarded by mu_; one per size
  size_t current_;             // guarded by mu_: index being measured, or chosen
  size_t best_;                // guarded by mu_
  bool going_up_ = true;       // guarded by mu_
  bool decided_ = false;       // guarded by mu_
};

}  // namespace sluice
