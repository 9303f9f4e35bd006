#include "observe/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>

#include "observe/resources.h"

namespace sluice {

std::string_view StageName(Stage stage) {
  switch (stage) {
    case Stage::kRead: return "read";
    case Stage::kPreprocess: return "preprocess";
    case Stage::kPredict: return "predict";
    case Stage::kPostprocess: return "postprocess";
    case Stage::kWrite: return "write";
    case Stage::kCommit: return "commit";
  }
  return "?";
}

double HistogramData::Quantile(double q) const {
  if (count <= 0 || counts.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(count);
  int64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0 || static_cast<double>(below + counts[i]) < rank) {
      below += counts[i];
      continue;
    }
    // The last bucket is open above: answer its lower bound, as Prometheus does.
    if (i == bounds.size()) return bounds.empty() ? 0 : bounds.back();
    const double lo = i == 0 ? std::min(0.0, bounds[0]) : bounds[i - 1];
    const double hi = bounds[i];
    return lo + (hi - lo) * (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
  }
  return bounds.empty() ? 0 : bounds.back();
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<int64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

HistogramData Histogram::Read() const {
  HistogramData d;
  d.bounds = bounds_;
  d.counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) d.counts[i] = counts_[i].load(std::memory_order_relaxed);
  d.count = 0;
  for (int64_t c : d.counts) d.count += c;
  d.sum = sum_.load(std::memory_order_relaxed);
  return d;
}

std::vector<double> Histogram::LatencyBounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

namespace {

constexpr double kRateWindowSeconds = 10;
constexpr size_t kMaxTimelinePoints = 600;
constexpr size_t kDefaultScoreBins = 20;

using Clock = std::chrono::steady_clock;

// Label values: backslash, double quote and newline escaped (text format 0.0.4).
std::string EscapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// A sample value: Go's float formatting as the Prometheus clients write it.
std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// Writes families in the text exposition format, one HELP/TYPE header each.
class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP sluice_{} {}\n# TYPE sluice_{} {}\n", name, help, name, type);
  }
  // labels: pre-rendered `k="v",…` (escaped), or empty.
  void Sample(std::string_view name, std::string_view labels, double value) {
    if (labels.empty()) {
      out_ += fmt::format("sluice_{} {}\n", name, Number(value));
    } else {
      out_ += fmt::format("sluice_{}{{{}}} {}\n", name, labels, Number(value));
    }
  }
  void Histogram(std::string_view name, std::string_view labels, const HistogramData& h) {
    const std::string sep = labels.empty() ? "" : ",";
    int64_t cumulative = 0;
    for (size_t i = 0; i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      const std::string le = i < h.bounds.size() ? Number(h.bounds[i]) : "+Inf";
      out_ += fmt::format("sluice_{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, le, cumulative);
    }
    if (h.counts.empty()) out_ += fmt::format("sluice_{}_bucket{{{}{}le=\"+Inf\"}} 0\n", name, labels, sep);
    Sample(std::string(name) + "_sum", labels, h.sum);
    Sample(std::string(name) + "_count", labels, static_cast<double>(h.count));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Label(std::string_view key, std::string_view value) {
  return fmt::format("{}=\"{}\"", key, EscapeLabel(value));
}

}  // namespace

struct RunMetrics::Impl {
  const Clock::time_point start = Clock::now();

  std::atomic<int64_t> rows_in{0}, rows_out{0}, rows_rejected{0}, rows_filtered{0};
  std::atomic<int64_t> bytes_read{0}, bytes_written{0};
  std::atomic<int64_t> units_total{0}, units_done{0}, units_failed{0}, units_running{0};
  std::atomic<int64_t> rows_estimated{0};
  std::atomic<int64_t> in_flight{0};
  std::array<std::atomic<int64_t>, kStageCount> queued{};
  std::atomic<int64_t> model_loads{0}, model_evictions{0};
  std::array<std::unique_ptr<Histogram>, kStageCount> stages;
  Histogram batch{Histogram::LatencyBounds()};

  mutable std::mutex mu;
  std::string job_name;                           // guarded by mu
  std::string fingerprint;                        // guarded by mu
  std::map<std::string, int64_t, std::less<>> retries;  // guarded by mu
  std::map<std::string, int64_t, std::less<>> rejects;  // guarded by mu
  std::map<std::string, double> unit_seconds;     // guarded by mu
  std::deque<std::pair<double, int64_t>> window;  // guarded by mu: (seconds, rows_in) samples
  std::vector<TimelinePoint> timeline;            // guarded by mu
  uint64_t rss = 0, peak_rss = 0;                 // guarded by mu
  double cpu = 0;                                 // guarded by mu

  // The score column's histogram: bounds fixed by SetScoreColumn (a
  // reference) or by the first batch observed.
  mutable std::mutex score_mu;
  std::string score_column;      // guarded by score_mu
  std::vector<double> score_bounds;  // guarded by score_mu; empty until known
  std::vector<int64_t> score_counts;  // guarded by score_mu
  int64_t score_count = 0;       // guarded by score_mu
  double score_sum = 0;          // guarded by score_mu

  Impl() {
    for (auto& h : stages) h = std::make_unique<Histogram>(Histogram::LatencyBounds());
    for (auto& q : queued) q.store(0, std::memory_order_relaxed);
    window.emplace_back(0.0, 0);
  }

  double Elapsed() const { return std::chrono::duration<double>(Clock::now() - start).count(); }

  // Input rows per second: from the newest sample at least 10 s old (or the
  // start) to now.
  double RowsPerSecond(double now, int64_t rows_now) const {
    std::pair<double, int64_t> base = window.front();
    for (const auto& sample : window) {
      if (sample.first > now - kRateWindowSeconds) break;
      base = sample;
    }
    const double dt = now - base.first;
    return dt > 0 ? static_cast<double>(rows_now - base.second) / dt : 0;
  }
};

RunMetrics::RunMetrics() : impl_(std::make_unique<Impl>()) {}
RunMetrics::~RunMetrics() = default;

void RunMetrics::SetJob(std::string job_name, std::string fingerprint) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->job_name = std::move(job_name);
  impl_->fingerprint = std::move(fingerprint);
}

void RunMetrics::SetPlanned(int64_t units_total, int64_t rows_estimated) {
  impl_->units_total.fetch_add(units_total, std::memory_order_relaxed);
  impl_->rows_estimated.fetch_add(rows_estimated, std::memory_order_relaxed);
}

void RunMetrics::SetScoreColumn(std::string column, const ScoreReference* reference) {
  std::lock_guard<std::mutex> lock(impl_->score_mu);
  impl_->score_column = std::move(column);
  if (reference != nullptr && !reference->edges.empty() && impl_->score_count == 0) {
    impl_->score_bounds = reference->edges;
    impl_->score_counts.assign(reference->edges.size() + 1, 0);
  }
}

void RunMetrics::AddRows(int64_t in, int64_t out, int64_t rejected, int64_t filtered) {
  impl_->rows_in.fetch_add(in, std::memory_order_relaxed);
  impl_->rows_out.fetch_add(out, std::memory_order_relaxed);
  impl_->rows_rejected.fetch_add(rejected, std::memory_order_relaxed);
  impl_->rows_filtered.fetch_add(filtered, std::memory_order_relaxed);
}

void RunMetrics::AddBytes(int64_t read, int64_t written) {
  impl_->bytes_read.fetch_add(read, std::memory_order_relaxed);
  impl_->bytes_written.fetch_add(written, std::memory_order_relaxed);
}

void RunMetrics::AddReject(std::string_view reason, int64_t n) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->rejects.find(reason);
  if (it == impl_->rejects.end()) it = impl_->rejects.emplace(std::string(reason), 0).first;
  it->second += n;
}

void RunMetrics::ObserveStage(Stage stage, double seconds) { impl_->stages[static_cast<size_t>(stage)]->Observe(seconds); }

void RunMetrics::ObserveBatch(double seconds) { impl_->batch.Observe(seconds); }

void RunMetrics::AddInFlight(int64_t delta) { impl_->in_flight.fetch_add(delta, std::memory_order_relaxed); }

void RunMetrics::AddQueued(Stage stage, int64_t delta) {
  impl_->queued[static_cast<size_t>(stage)].fetch_add(delta, std::memory_order_relaxed);
}

void RunMetrics::ObserveScores(const float* values, size_t n, size_t stride) {
  if (n == 0) return;
  stride = std::max<size_t>(stride, 1);
  Impl& m = *impl_;
  std::vector<double> bounds;
  {
    std::lock_guard<std::mutex> lock(m.score_mu);
    if (m.score_bounds.empty()) {
      // No reference: equal bins over this first batch's range.
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (size_t i = 0; i < n; ++i) {
        const double v = values[i * stride];
        if (!std::isfinite(v)) continue;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      if (!std::isfinite(lo)) return;  // nothing finite to bin yet
      if (hi <= lo) {
        lo -= 0.5;
        hi += 0.5;
      }
      for (size_t b = 1; b < kDefaultScoreBins; ++b) {
        m.score_bounds.push_back(lo + (hi - lo) * static_cast<double>(b) / kDefaultScoreBins);
      }
      m.score_counts.assign(kDefaultScoreBins, 0);
    }
    bounds = m.score_bounds;
  }
  // Binned outside the lock, added under it once.
  std::vector<int64_t> counts(bounds.size() + 1, 0);
  int64_t count = 0;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double v = values[i * stride];
    if (!std::isfinite(v)) continue;
    // The bin is the number of bounds below v (lower_bound), counted without
    // branches: few bounds, and scores fall in them unpredictably.
    size_t bin = 0;
    for (const double bound : bounds) bin += bound < v ? 1 : 0;
    ++counts[bin];
    ++count;
    sum += v;
  }
  std::lock_guard<std::mutex> lock(m.score_mu);
  for (size_t b = 0; b < counts.size(); ++b) m.score_counts[b] += counts[b];
  m.score_count += count;
  m.score_sum += sum;
}

void RunMetrics::UnitStarted() { impl_->units_running.fetch_add(1, std::memory_order_relaxed); }

void RunMetrics::UnitFinished(const std::string& unit_id, bool committed, double seconds) {
  impl_->units_running.fetch_sub(1, std::memory_order_relaxed);
  (committed ? impl_->units_done : impl_->units_failed).fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->unit_seconds[unit_id] = seconds;
}

void RunMetrics::UnitStopped() { impl_->units_running.fetch_sub(1, std::memory_order_relaxed); }

std::map<std::string, double> RunMetrics::UnitSeconds() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->unit_seconds;
}

void RunMetrics::CountRetry(std::string_view code) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->retries.find(code);
  if (it == impl_->retries.end()) it = impl_->retries.emplace(std::string(code), 0).first;
  ++it->second;
}

void RunMetrics::SetModelCounts(int64_t loads, int64_t evictions) {
  impl_->model_loads.store(loads, std::memory_order_relaxed);
  impl_->model_evictions.store(evictions, std::memory_order_relaxed);
}

void RunMetrics::Sample() {
  Impl& m = *impl_;
  const uint64_t rss = CurrentRssBytes();
  const uint64_t peak = PeakRssBytes();
  const double cpu = CpuSeconds();
  const double now = m.Elapsed();
  TimelinePoint p;
  p.seconds = now;
  p.rows_in = m.rows_in.load(std::memory_order_relaxed);
  p.rows_out = m.rows_out.load(std::memory_order_relaxed);
  p.rss_bytes = rss;
  std::lock_guard<std::mutex> lock(m.mu);
  m.rss = rss;
  m.peak_rss = std::max({m.peak_rss, peak, rss});
  m.cpu = cpu;
  p.rows_per_sec = m.RowsPerSecond(now, p.rows_in);
  m.window.emplace_back(now, p.rows_in);
  // Keep one sample older than the window as its base.
  while (m.window.size() > 2 && m.window[1].first <= now - kRateWindowSeconds) m.window.pop_front();
  m.timeline.push_back(p);
  if (m.timeline.size() > kMaxTimelinePoints) {
    // Thin to every other point, keeping the last.
    std::vector<TimelinePoint> kept;
    kept.reserve(m.timeline.size() / 2 + 1);
    for (size_t i = 0; i < m.timeline.size(); i += 2) kept.push_back(m.timeline[i]);
    if (kept.back().seconds != m.timeline.back().seconds) kept.push_back(m.timeline.back());
    m.timeline = std::move(kept);
  }
}

MetricsSnapshot RunMetrics::Snapshot() const {
  const Impl& m = *impl_;
  MetricsSnapshot s;
  s.elapsed_seconds = m.Elapsed();
  s.rows_in = m.rows_in.load(std::memory_order_relaxed);
  s.rows_out = m.rows_out.load(std::memory_order_relaxed);
  s.rows_rejected = m.rows_rejected.load(std::memory_order_relaxed);
  s.rows_filtered = m.rows_filtered.load(std::memory_order_relaxed);
  s.bytes_read = m.bytes_read.load(std::memory_order_relaxed);
  s.bytes_written = m.bytes_written.load(std::memory_order_relaxed);
  s.units_total = m.units_total.load(std::memory_order_relaxed);
  s.units_done = m.units_done.load(std::memory_order_relaxed);
  s.units_failed = m.units_failed.load(std::memory_order_relaxed);
  s.units_running = m.units_running.load(std::memory_order_relaxed);
  s.rows_estimated = m.rows_estimated.load(std::memory_order_relaxed);
  s.batches_in_flight = m.in_flight.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kStageCount; ++i) {
    s.queue_depth[i] = m.queued[i].load(std::memory_order_relaxed);
    s.stage_seconds[i] = m.stages[i]->Read();
  }
  s.model_loads = m.model_loads.load(std::memory_order_relaxed);
  s.model_evictions = m.model_evictions.load(std::memory_order_relaxed);
  s.batch_seconds = m.batch.Read();
  s.batches = s.batch_seconds.count;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    s.retries.insert(m.retries.begin(), m.retries.end());
    s.rejects_by_reason.insert(m.rejects.begin(), m.rejects.end());
    s.rss_bytes = m.rss;
    s.peak_rss_bytes = m.peak_rss;
    s.cpu_seconds = m.cpu;
    s.rows_per_sec = m.RowsPerSecond(s.elapsed_seconds, s.rows_in);
  }
  {
    std::lock_guard<std::mutex> lock(m.score_mu);
    s.score_column = m.score_column;
    s.scores.bounds = m.score_bounds;
    s.scores.counts = m.score_counts;
    s.scores.count = m.score_count;
    s.scores.sum = m.score_sum;
  }
  return s;
}

std::vector<TimelinePoint> RunMetrics::Timeline() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->timeline;
}

std::string RunMetrics::ExpositionText() const {
  const MetricsSnapshot s = Snapshot();
  std::string job, fingerprint;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    job = impl_->job_name;
    fingerprint = impl_->fingerprint;
  }
  Exposition e;
  auto counter = [&](std::string_view name, std::string_view help, double value) {
    e.Family(name, "counter", help);
    e.Sample(name, "", value);
  };
  auto gauge = [&](std::string_view name, std::string_view help, double value) {
    e.Family(name, "gauge", help);
    e.Sample(name, "", value);
  };
  auto by_label = [&](std::string_view name, std::string_view type, std::string_view help, std::string_view key,
                      const std::map<std::string, int64_t>& values) {
    e.Family(name, type, help);
    for (const auto& [label, value] : values) e.Sample(name, Label(key, label), static_cast<double>(value));
  };
  e.Family("job_info", "gauge", "The job this process runs (value 1).");
  e.Sample("job_info", Label("fingerprint", fingerprint) + "," + Label("job", job), 1);
  counter("rows_read_total", "Input rows read, rejected ones included.", static_cast<double>(s.rows_in));
  counter("rows_written_total", "Output rows written (committed or not yet).", static_cast<double>(s.rows_out));
  by_label("rows_rejected_total", "counter", "Input rows rejected, by reason.", "reason", s.rejects_by_reason);
  counter("rows_filtered_total", "Scored rows output.filter dropped.", static_cast<double>(s.rows_filtered));
  counter("bytes_read_total", "Input bytes read.", static_cast<double>(s.bytes_read));
  counter("bytes_written_total", "Output bytes written.", static_cast<double>(s.bytes_written));
  counter("batches_total", "Batches through the pipeline.", static_cast<double>(s.batches));
  e.Family("stage_seconds", "histogram", "Time per batch in each stage (commit: per unit), in seconds.");
  for (size_t i = 0; i < kStageCount; ++i) {
    e.Histogram("stage_seconds", Label("stage", StageName(static_cast<Stage>(i))), s.stage_seconds[i]);
  }
  e.Family("batch_seconds", "histogram", "Time of a batch from its read to its write, in seconds.");
  e.Histogram("batch_seconds", "", s.batch_seconds);
  gauge("batches_in_flight", "Batches between their read and their write.", static_cast<double>(s.batches_in_flight));
  e.Family("queue_depth", "gauge", "Batches waiting before a stage.");
  for (Stage stage : {Stage::kPredict, Stage::kPostprocess}) {
    e.Sample("queue_depth", Label("stage", StageName(stage)), static_cast<double>(s.queue_depth[static_cast<size_t>(stage)]));
  }
  counter("model_loads_total", "Models loaded.", static_cast<double>(s.model_loads));
  counter("model_evictions_total", "Models dropped from the model cache.", static_cast<double>(s.model_evictions));
  by_label("retries_total", "counter", "Attempts retried, by error code.", "code", s.retries);
  const int64_t pending = std::max<int64_t>(0, s.units_total - s.units_done - s.units_failed - s.units_running);
  by_label("units", "gauge", "Work units of this process's runs, by state.", "state",
           {{"done", s.units_done}, {"failed", s.units_failed}, {"pending", pending}, {"running", s.units_running}});
  gauge("resident_memory_bytes", "Resident set size at the last sample.", static_cast<double>(s.rss_bytes));
  gauge("peak_resident_memory_bytes", "Peak resident set size so far.", static_cast<double>(s.peak_rss_bytes));
  counter("cpu_seconds_total", "User and system CPU time at the last sample.", s.cpu_seconds);
  gauge("rows_per_second", "Input rows per second over the last 10 seconds.", s.rows_per_sec);
  if (!s.score_column.empty() && !s.scores.counts.empty()) {
    e.Family("score", "histogram", "Predictions of the score column.");
    e.Histogram("score", Label("column", s.score_column), s.scores);
  }
  return e.Take();
}

}  // namespace sluice
