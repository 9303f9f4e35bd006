// RunMetrics: the live counters, gauges and histograms of one job session
// (DESIGN.md §6), updated by the units as they run and read by the monitor
// (Prometheus exposition, the textfile, the progress bar, alerts) and by the
// run report.
//
// Updating is cheap and lock-free on the hot path (relaxed atomics; a batch
// updates a handful of them); the units update per batch, never per row.
// Snapshot() copies everything into a plain MetricsSnapshot; its values are
// each consistent, not one instant across all of them (the exposition format
// does not promise more either).
//
// Prometheus names (ExpositionText), all prefixed sluice_:
//   rows_read_total, rows_written_total, rows_rejected_total{reason},
//   rows_filtered_total, bytes_read_total, bytes_written_total, batches_total,
//   stage_seconds{stage} (histogram; stage = read, preprocess, predict,
//   postprocess, write, commit), batch_seconds (histogram, a batch from its read
//   to its write), batches_in_flight, queue_depth{stage}, model_loads_total,
//   model_evictions_total, retries_total{code}, units{state} (done, failed,
//   pending, running), resident_memory_bytes, peak_resident_memory_bytes,
//   cpu_seconds_total, rows_per_second, score (histogram of the score column),
//   and job_info{fingerprint, job} = 1.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

enum class Stage { kRead, kPreprocess, kPredict, kPostprocess, kWrite, kCommit };
inline constexpr size_t kStageCount = 6;
std::string_view StageName(Stage stage);

// A histogram's state: counts[i] observations in (bounds[i-1], bounds[i]],
// counts.back() those above bounds.back() (so counts.size() == bounds.size() + 1).
struct HistogramData {
  std::vector<double> bounds;
  std::vector<int64_t> counts;
  int64_t count = 0;
  double sum = 0;
  // Linear interpolation within the bucket holding the q-quantile (0 <= q <= 1),
  // as Prometheus' histogram_quantile; 0 when empty.
  double Quantile(double q) const;
  double Mean() const { return count > 0 ? sum / static_cast<double>(count) : 0; }
};

// Fixed bucket bounds, lock-free observations.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // ascending
  void Observe(double value);
  HistogramData Read() const;
  // Latency buckets for seconds, 100 µs to 60 s.
  static std::vector<double> LatencyBounds();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<int64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// The score column's predictions. Bins: the reference histogram's edges when
// the stats file has one for the column (so PSI compares like with like),
// otherwise 20 equal bins over the first observed batch's [min, max], widened
// to the values seen later through the open-ended first and last bins.
struct ScoreReference {
  std::string column;
  std::vector<double> edges;      // ascending inner edges: bins (-inf, e0], (e0, e1], …, (e_last, +inf)
  std::vector<double> fractions;  // edges.size() + 1 fractions summing to 1
};

struct TimelinePoint {
  double seconds = 0;       // since the session opened
  int64_t rows_in = 0;      // cumulative
  int64_t rows_out = 0;     // cumulative
  double rows_per_sec = 0;  // input rows per second over the last window
  uint64_t rss_bytes = 0;
};

struct MetricsSnapshot {
  double elapsed_seconds = 0;
  int64_t rows_in = 0, rows_out = 0, rows_rejected = 0, rows_filtered = 0;
  int64_t bytes_read = 0, bytes_written = 0, batches = 0;
  int64_t units_total = 0, units_done = 0, units_failed = 0, units_running = 0;
  int64_t rows_estimated = 0;  // planned input rows of the units run (estimates where not counted)
  int64_t batches_in_flight = 0;
  std::array<int64_t, kStageCount> queue_depth{};  // batches waiting before each stage
  int64_t model_loads = 0, model_evictions = 0;
  std::map<std::string, int64_t> retries;            // by error code name
  std::map<std::string, int64_t> rejects_by_reason;  // by reject reason
  std::array<HistogramData, kStageCount> stage_seconds;
  HistogramData batch_seconds;
  uint64_t rss_bytes = 0, peak_rss_bytes = 0;
  double cpu_seconds = 0;
  double rows_per_sec = 0;  // over the last 10 s
  std::string score_column;  // empty until the score column is known
  HistogramData scores;      // bounds = the ScoreReference edges when there is one
};

class RunMetrics {
 public:
  RunMetrics();
  ~RunMetrics();

  // Set once by the session: labels of job_info.
  void SetJob(std::string job_name, std::string fingerprint);
  // Per RunUnits call: adds the units it will run and their planned input rows.
  void SetPlanned(int64_t units_total, int64_t rows_estimated);
  // The score column and its reference (null: none; bins from the first batch).
  void SetScoreColumn(std::string column, const ScoreReference* reference);

  // Per batch, from the unit runner.
  void AddRows(int64_t in, int64_t out, int64_t rejected, int64_t filtered);
  void AddBytes(int64_t read, int64_t written);
  void AddReject(std::string_view reason, int64_t n = 1);
  void ObserveStage(Stage stage, double seconds);
  void ObserveBatch(double seconds);  // also counts batches_total
  void AddInFlight(int64_t delta);
  void AddQueued(Stage stage, int64_t delta);
  void ObserveScores(const float* values, size_t n, size_t stride);

  // Per unit / session.
  void UnitStarted();
  // A unit run by this session ended: committed (done) or failed, after
  // `seconds` of wall time (all attempts).
  void UnitFinished(const std::string& unit_id, bool committed, double seconds);
  // A unit that started and then stopped without committing or failing
  // (interrupted, another unit crossed the reject limit, a stop request):
  // pending again.
  void UnitStopped();
  std::map<std::string, double> UnitSeconds() const;
  void CountRetry(std::string_view code);
  void SetModelCounts(int64_t loads, int64_t evictions);

  // Called by the monitor once per tick: samples RSS, CPU time and the
  // throughput window, appends a timeline point (kept for the report, thinned
  // to at most 600 points).
  void Sample();

  MetricsSnapshot Snapshot() const;
  std::vector<TimelinePoint> Timeline() const;
  // Prometheus text exposition format 0.0.4 of Snapshot().
  std::string ExpositionText() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
