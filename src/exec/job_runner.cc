// JobSession (sluice/session.h): preflight, the output directory, the memory
// and thread plan once; then, per RunUnits call, the units on `workers`
// parallel workers in a oneTBB arena, and their summary. Each unit is
// processed by RunUnit (unit_runner.h). RunJob and PlanJob are thin users.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/sha256.h"
#include "core/strings.h"
#include "core/tsan_annotations.h"
#include "exec/finalize.h"
#include "exec/job_context.h"
#include "exec/output_dir.h"
#include "exec/unit_runner.h"
#include "observe/log.h"
#include "observe/metrics.h"
#include "observe/monitor.h"
#include "observe/report.h"
#include "observe/resources.h"
#include "sluice/job.h"
#include "sluice/session.h"
#if SLUICE_WITH_DUCKDB
#include "source/duckdb_util.h"
#endif

namespace sluice {
namespace {

// Per worker, outside the batches: the reader's chunk window, the part
// writer's buffers, the rejects writer.
constexpr uint64_t kWorkerFixedBytes = uint64_t{6} << 20;
// batch.size: auto tries no size above a unit's mean rows / this.
constexpr size_t kMinBatchesPerUnit = 8;
// The smallest share of memory a batch slot may have.
constexpr uint64_t kMinTokenBytes = uint64_t{1} << 20;

std::string Mib(uint64_t bytes) { return fmt::format("{:.0f} MiB", static_cast<double>(bytes) / (1 << 20)); }

Result<JobFingerprint> Fingerprint(const JobSpec& spec, Env* env, const JobContext& ctx) {
  JobFingerprint fp;
  fp.spec_json = spec.ToCanonicalJson();
  fp.spec_sha256 = Sha256Hex(fp.spec_json);
  Result<std::string> model_sha = Sha256File(env, spec.model.path);
  if (!model_sha.ok()) return model_sha.status().WithContext("model.path");
  fp.model_sha256 = *model_sha;
  if (spec.model.route) {
    // Every routed model is part of the job.
    Sha256 h;
    h.Update(fp.model_sha256);
    for (const auto& [value, path] : spec.model.route->models) {
      Result<std::string> sha = Sha256File(env, path);
      if (!sha.ok()) return sha.status().WithContext("model.route.models." + value);
      h.Update("\n" + value + "\t" + *sha);
    }
    fp.model_sha256 = h.HexDigest();
  }
  for (const InputFile& f : ctx.plan.files) fp.inputs.push_back({f.path, f.size, f.mtime_ns});
  // A database has no files: its units' slices stand in for them, since their
  // bounds come from the data (a table grown past its last range is a changed
  // input, not a run to resume against progress rows of other slices).
  if (IsDatabase(ctx.plan.format)) {
    for (const WorkUnit& u : ctx.plan.units) fp.inputs.push_back({RedactConnection(u.range.path) + " " + u.range.label, 0, 0});
  }
  return fp;
}

// Batch slots per unit and each slot's share of execution.memory_limit, after
// what the process already holds (runtime, model) and the workers' fixed buffers.
Status PlanMemory(const JobSpec& spec, const JobContext& ctx, Env* env, UnitShared* shared) {
  shared->tokens = spec.execution.async ? 3 : 1;
  // Parquet readers and writers hold DuckDB databases of their own. Before a lazy
  // model is bound the output's width is a guess.
  const size_t out_columns = ctx.postprocessor ? ctx.postprocessor->output_schema().num_fields()
                                               : std::max<size_t>(spec.output.columns.size(), 16);
  const uint64_t per_worker =
      kWorkerFixedBytes + ctx.plan.reader_memory + PartWriterMemory(spec.output.format, out_columns);
  uint64_t reserved = PeakRssBytes() + per_worker * static_cast<uint64_t>(ctx.workers);
  if (spec.model.lazy) {
    // Not loaded yet: reserve the files' size for the models the cache may hold.
    uint64_t largest = 0;
    for (const auto& [key, path] : ModelFiles(spec.model)) {
      if (Result<FileInfo> info = env->Stat(path); info.ok()) largest = std::max(largest, info->size);
    }
    reserved += largest * (spec.model.route ? static_cast<uint64_t>(spec.model.route->cache_size) : 1);
  }
  const uint64_t slots = shared->tokens * static_cast<uint64_t>(ctx.workers);
  const uint64_t limit = spec.execution.memory_limit;
  if (limit < reserved + slots * kMinTokenBytes) {
    return Status::InvalidArgument(fmt::format(
        "execution.memory_limit: {} is too small: the runtime, model and readers/writers take {}, and {} worker(s) with {} batches "
        "in flight need at least {} more; raise the limit or lower execution.workers",
        Mib(limit), Mib(reserved), ctx.workers, slots, Mib(slots * kMinTokenBytes)));
  }
  shared->token_bytes = (limit - reserved) / slots;
  spdlog::info("memory: limit {}, held at start {}, {} batch slot(s) of up to {} each", Mib(limit), Mib(reserved),
               slots, Mib(shared->token_bytes));
  return Status::OK();
}

// The unit's input for messages and records: "data/x.csv bytes [0, 4096)",
// "data/x.parquet rows 0-122879", "postgresql://ann:***@db/x rowid 1-50000".
std::string DescribeUnit(const WorkUnit& unit) {
  if (!unit.range.label.empty()) return RedactConnection(unit.range.path) + " " + unit.range.label;
  return fmt::format("{} bytes [{}, {})", unit.range.path, unit.range.begin, UnitEnd(unit));
}

// Whether `unit_id` is committed. Files: its marker (CommittedUnit). Database
// sinks: its progress row, the commit point; the marker file is a copy, written
// again when a run died between the two and removed when it has no progress row.
Result<std::optional<UnitMarker>> CommittedMarker(Env* env, const std::string& out, TableSink* table_sink,
                                                  const std::string& unit_id) {
  if (table_sink == nullptr) return CommittedUnit(env, out, unit_id);
  ASSIGN_OR_RETURN(std::optional<std::string> text, table_sink->CommittedMarker(unit_id));
  const std::string path = UnitMarkerPath(out, unit_id);
  if (!text) {
    if (env->FileExists(path)) RETURN_IF_ERROR(env->RemoveFile(path));
    return std::optional<UnitMarker>();
  }
  ASSIGN_OR_RETURN(UnitMarker marker, ParseUnitMarker(*text, "sluice_units row of unit " + unit_id));
  if (!env->FileExists(path)) RETURN_IF_ERROR(WriteUnitMarker(env, out, marker));
  return std::optional<UnitMarker>(std::move(marker));
}

// A job-level write (job.json, _SUCCESS), retried on transient failures like units.
Status WithRetries(UnitShared* shared, const std::string& what, const std::function<Status()>& write) {
  const int max_attempts = shared->spec->execution.retries.max_attempts;
  for (int attempt = 1;; ++attempt) {
    Status st = write();
    if (st.ok() || !st.IsTransient() || attempt >= max_attempts) return st;
    shared->CountRetry(st.code());
    const uint64_t wait = shared->BackoffMicros(attempt);
    spdlog::warn("{}: attempt {} of {} failed ({}); retrying in {} ms", what, attempt, max_attempts, st.ToString(),
                 wait / 1000);
    shared->env->SleepForMicros(wait);
  }
}

// Whether a unit whose attempt `attempt` failed with `st` runs again: the error
// is retryable, attempts are left and the run goes on. If so, the retry is
// counted and logged, and the wait before it (full-jitter backoff) returned.
std::optional<uint64_t> RetryWait(UnitShared* shared, const WorkUnit& unit, const Status& st, bool retryable,
                                  int attempt) {
  const int max_attempts = shared->spec->execution.retries.max_attempts;
  if (!retryable || attempt >= max_attempts || shared->interrupted()) return std::nullopt;
  shared->CountRetry(st.code());
  const uint64_t wait = shared->BackoffMicros(attempt);
  spdlog::warn("unit {}: attempt {} of {} failed ({}); retrying in {} ms", unit.id, attempt, max_attempts, st.ToString(),
               wait / 1000);
  return wait;
}

// A unit that failed for good: recorded in _sluice/failed/ with its range and
// last error; the error, naming the unit's input.
Status UnitFailed(UnitShared* shared, const WorkUnit& unit, const Status& st, int attempts) {
  Status recorded = WriteFailedUnit(shared->env, shared->spec->output.path,
                                    FailedUnit{unit.id, RedactConnection(unit.range.path), unit.range.begin,
                                               UnitEnd(unit), st.ToString(), attempts});
  if (!recorded.ok()) spdlog::warn("unit {}: cannot record the failure: {}", unit.id, recorded.ToString());
  return st.WithContext(fmt::format("{}, after {} attempt(s)", DescribeUnit(unit), attempts));
}

// One unit from attempt *attempt on, retried on transient failures; *attempt
// ends as the last attempt made. defer_commit: as RunUnit's.
Result<UnitOutcome> RunUnitWithRetries(UnitShared* shared, const WorkUnit& unit, bool defer_commit, int* attempt) {
  for (;; ++*attempt) {
    bool retryable = false;
    Result<UnitOutcome> r = RunUnit(shared, unit, defer_commit, &retryable);
    if (r.ok()) return r;
    const std::optional<uint64_t> wait = RetryWait(shared, unit, r.status(), retryable, *attempt);
    if (!wait) return UnitFailed(shared, unit, r.status(), *attempt);
    shared->env->SleepForMicros(*wait);
  }
}

// The plan as `sluice plan` shows it; `output_is_this_job` says whether the
// output directory's markers are this job's.
PlanSummary SummarizePlan(const JobContext& ctx, const std::string& fingerprint, Env* env, const std::string& out,
                          const RunOptions& options, bool output_is_this_job) {
  PlanSummary summary;
  summary.format = std::string(InputFormatName(ctx.plan.format));
  summary.fingerprint = fingerprint;
  summary.output_is_this_job = output_is_this_job;
  for (const WorkUnit& u : ctx.plan.units) {
    PlannedUnit p;
    p.id = u.id;
    p.path = RedactConnection(u.range.path);
    p.label = u.range.label;
    p.begin = u.range.begin;
    p.end = UnitEnd(u);
    p.est_bytes = u.est_bytes;
    p.est_rows = u.est_rows;
    p.rows_exact = u.rows_exact;
    p.in_shard = u.index % options.shard_count == options.shard_index;
    p.done = output_is_this_job && env->FileExists(UnitMarkerPath(out, u.id));
    summary.units.push_back(std::move(p));
  }
  return summary;
}

// A unit run by RunUnits: its outcome, or found committed by another attempt.
struct UnitResult {
  UnitOutcome outcome;
  bool found_committed = false;
  std::unique_ptr<FileLock> unit_lock;  // SharesOutputDir: held until the unit is committed
};

// A pending unit for RunUnits' workers: its index in the pending list, the
// attempt it starts at, and the wait before it (both set when an earlier
// attempt's commit failed).
struct UnitWork {
  size_t i = 0;
  int attempt = 1;
  uint64_t wait_us = 0;
};

// A unit written by a worker, for the committer.
struct PendingCommit {
  UnitWork work;
  std::unique_ptr<UnitCommit> commit;
  std::unique_ptr<FileLock> unit_lock;
  std::chrono::steady_clock::time_point start;
};

// Commits the units workers leave written (UnitOutcome::State::kWritten), in
// the order they come, on a thread of its own: a worker goes on to its next
// unit instead of waiting for the disk. Submit blocks while `capacity` units
// wait; the destructor commits what waits and ends the thread.
class Committer {
 public:
  Committer(size_t capacity, std::function<void(PendingCommit)> commit)
      : capacity_(capacity), commit_(std::move(commit)), thread_([this] { Loop(); }) {}
  ~Committer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    ready_.notify_one();
    thread_.join();
  }

  void Submit(PendingCommit p) {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] { return queue_.size() < capacity_; });
    queue_.push_back(std::move(p));
    ready_.notify_one();
  }

 private:
  void Loop() {
    while (true) {
      PendingCommit p;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [&] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) return;
        p = std::move(queue_.front());
        queue_.pop_front();
      }
      room_.notify_one();
      commit_(std::move(p));
    }
  }

  const size_t capacity_;
  const std::function<void(PendingCommit)> commit_;
  std::mutex mu_;
  std::condition_variable ready_;  // a unit came, or closed_
  std::condition_variable room_;   // a unit left the queue
  std::deque<PendingCommit> queue_;  // guarded by mu_
  bool closed_ = false;              // guarded by mu_
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace

struct JobSession::State {
  JobSpec spec;
  Env* env = nullptr;
  RunOptions options;
  std::unique_ptr<JobContext> ctx;
  JobFingerprint fp;
  std::string digest;
  size_t tokens = 1;
  uint64_t token_bytes = 0;
  OutputLock lock;
  std::unique_ptr<TableSink> table_sink;
  std::unique_ptr<BatchSizer> batch_sizer;  // batch.size: auto; shared by every RunUnits call
  std::unordered_map<std::string, size_t> unit_index;  // unit id -> index in ctx->plan.units
  // Retries made while opening (job.json, the database); the first RunUnits reports them.
  std::map<std::string, int64_t> open_retries;  // guarded by mu
  std::mutex mu;
  bool bind_tried = false;  // guarded by mu
  Status bind;              // guarded by mu
  RunMetrics metrics;
  // RequestStop: units stop as on an interrupt; RunUnits answers stop_code.
  std::atomic<bool> stop_requested{false};
  std::mutex stop_mu;
  ExitCode stop_code = ExitCode::kSuccess;  // guarded by stop_mu
  std::string stop_reason;                  // guarded by stop_mu

  const std::string& out() const { return spec.output.path; }

  // Binds the models (model.load: lazy loads them here, on the first unit to
  // run) and prepares a database sink's table, once; later calls return the
  // first answer. A failure fails every unit that needs it.
  Status EnsureBound(UnitShared* shared) {
    std::lock_guard<std::mutex> guard(mu);
    if (!bind_tried) {
      bind_tried = true;
      bind = BindModels(spec, ctx.get());
      if (bind.ok()) BindScoreColumn();
      if (bind.ok() && table_sink) {
        bind = WithRetries(shared, "output.table",
                           [&] { return table_sink->PrepareTable(ctx->postprocessor->output_schema()); });
      }
      if (!bind.ok()) spdlog::error("{}", bind.ToString());
    }
    if (bind.ok() && ctx->score_column) {
      shared->score_element.store(ctx->score_column->element, std::memory_order_relaxed);
      shared->score_output.store(static_cast<int>(ctx->score_column->output), std::memory_order_release);
    }
    return bind;
  }

  // The metrics' score histogram, once the models are bound (BindModels picks
  // the score column and its reference). Caller holds mu (or is Open).
  void BindScoreColumn() {
    if (!ctx->score_column) return;
    metrics.SetScoreColumn(ctx->score_column->name, ctx->score_reference ? &*ctx->score_reference : nullptr);
  }

  // One pending unit, from attempt *attempt on (RunUnitWithRetries). When the
  // directory is shared, under the unit's lock: another attempt may have
  // committed it since the caller looked.
  Result<UnitResult> RunOne(UnitShared* shared, const WorkUnit& unit, bool defer_commit, int* attempt) {
    std::unique_ptr<FileLock> unit_lock;
    if (SharesOutputDir(options)) {
      ASSIGN_OR_RETURN(unit_lock, LockUnit(env, out(), unit.id, options.interrupt));
      ASSIGN_OR_RETURN(std::optional<UnitMarker> committed, CommittedMarker(env, out(), table_sink.get(), unit.id));
      if (committed) {
        spdlog::info("unit {}: committed by another attempt meanwhile; nothing to do", unit.id);
        return UnitResult{UnitOutcome{UnitOutcome::State::kCommitted, std::move(*committed), nullptr}, true, nullptr};
      }
    }
    RETURN_IF_ERROR(EnsureBound(shared));
    ASSIGN_OR_RETURN(UnitOutcome outcome, RunUnitWithRetries(shared, unit, defer_commit, attempt));
    return UnitResult{std::move(outcome), false, std::move(unit_lock)};
  }
};

JobSession::JobSession(std::unique_ptr<State> state) : state_(std::move(state)) {}
JobSession::~JobSession() = default;

Result<std::unique_ptr<JobSession>> JobSession::Open(const JobSpec& spec, Env* env, const RunOptions& options) {
  if (options.shared_output && options.restart) {
    return Status::InvalidArgument(
        "--restart replaces output.path, which other processes share in this run; restart with a run of the whole "
        "job (sluice run --restart) or choose a new output.path");
  }
  auto s = std::make_unique<State>();
  s->spec = spec;
  s->env = env;
  s->options = options;
  ASSIGN_OR_RETURN(s->ctx, PrepareJob(s->spec, env, options));
  ASSIGN_OR_RETURN(s->fp, Fingerprint(s->spec, env, *s->ctx));
  for (const WorkUnit& u : s->ctx->plan.units) {
    s->fp.units.push_back(
        {u.id, RedactConnection(u.range.path), u.range.begin, UnitEnd(u), u.range.label});
    s->unit_index.emplace(u.id, s->unit_index.size());
  }
  s->digest = s->fp.Digest();
  if (s->ctx->bound) s->BindScoreColumn();  // model.load: preload
  s->metrics.SetJob(JobName(s->spec), s->digest);
  UnitShared shared;
  shared.spec = &s->spec;
  shared.env = env;
  shared.ctx = s->ctx.get();
  RETURN_IF_ERROR(PlanMemory(s->spec, *s->ctx, env, &shared));
  s->tokens = shared.tokens;
  s->token_bytes = shared.token_bytes;
  if (s->spec.batch_size_auto) {
    BatchSizer::Options sizing;
    sizing.start = s->spec.batch_size;
    // Each unit fills and drains its pipeline: batches much larger than a
    // unit's share of rows leave cores idle for much of it.
    int64_t rows = 0;
    for (const WorkUnit& u : s->ctx->plan.units) rows += u.est_rows;
    const size_t units = std::max<size_t>(s->ctx->plan.units.size(), 1);
    sizing.max_size = static_cast<size_t>(rows / static_cast<int64_t>(units)) / kMinBatchesPerUnit;
    s->batch_sizer = std::make_unique<BatchSizer>(sizing);
  }

  const std::string& out = s->out();
  RETURN_IF_ERROR(CheckOutputDir(env, out, s->fp, options.restart));
  ASSIGN_OR_RETURN(s->lock, LockOutputDir(env, out, options));
  // Sessions of one job opening at once all find the directory fresh or this
  // job's, and write the same job.json (each through its own temporary).
  RETURN_IF_ERROR(WithRetries(&shared, "output directory",
                              [&] { return PrepareOutputDir(env, out, s->fp, options.restart); }));
  if (!SharesOutputDir(options)) {
    // Temporaries of job.json and _SUCCESS: only a run alone on the directory may remove them.
    RETURN_IF_ERROR(RemoveOrphanTemporaries(env, out, {}, /*whole_job=*/true));
  }
  if (IsDatabase(s->spec.output.format)) {
    RETURN_IF_ERROR(WithRetries(&shared, "output.database", [&]() -> Status {
      ASSIGN_OR_RETURN(s->table_sink, OpenTableSink(s->spec.output, s->digest));
      return Status::OK();
    }));
  }
  s->open_retries = shared.Retries();
  return std::unique_ptr<JobSession>(new JobSession(std::move(s)));
}

const JobSpec& JobSession::spec() const { return state_->spec; }
const std::string& JobSession::fingerprint() const { return state_->digest; }
int64_t JobSession::model_loads() const { return state_->ctx->models->loads(); }
RunMetrics* JobSession::metrics() { return &state_->metrics; }
const JobFingerprint& JobSession::job_fingerprint() const { return state_->fp; }
const ScoreReference* JobSession::score_reference() const {
  return state_->ctx->score_reference ? &*state_->ctx->score_reference : nullptr;
}

void JobSession::RequestStop(ExitCode code, std::string reason) {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.stop_mu);
    if (s.stop_requested.load()) return;  // the first request stands
    s.stop_code = code;
    s.stop_reason = std::move(reason);
  }
  s.stop_requested.store(true);
}

std::vector<std::string> JobSession::ShardUnitIds() const {
  std::vector<std::string> ids;
  for (size_t i : state_->ctx->run_units) ids.push_back(state_->ctx->plan.units[i].id);
  return ids;
}

void JobSession::LeaveIdleDatabasesToExit() {
#if SLUICE_WITH_DUCKDB
  if (state_->ctx->duckdb_pool) state_->ctx->duckdb_pool->LeaveIdleToExit();
#endif
}

Result<PlanSummary> JobSession::Plan() {
  const State& s = *state_;
  return SummarizePlan(*s.ctx, s.digest, s.env, s.out(), s.options, /*output_is_this_job=*/true);
}

Result<JobReport> JobSession::RunUnits(const std::vector<std::string>& unit_ids) {
  State& s = *state_;
  Env* const env = s.env;
  const JobSpec& spec = s.spec;
  const JobContext& ctx = *s.ctx;
  const std::string& out = s.out();
  const uint64_t start_us = env->NowMicros();

  std::vector<size_t> units;  // indices into ctx.plan.units, in plan order
  for (const std::string& id : unit_ids) {
    auto it = s.unit_index.find(id);
    if (it == s.unit_index.end()) {
      return Status::InvalidArgument(fmt::format("unit '{}' is not a unit of this job (its plan has {} unit(s))", id,
                                                 ctx.plan.units.size()));
    }
    units.push_back(it->second);
  }
  std::sort(units.begin(), units.end());
  if (auto dup = std::adjacent_find(units.begin(), units.end()); dup != units.end()) {
    return Status::InvalidArgument(fmt::format("unit '{}' is listed twice", ctx.plan.units[*dup].id));
  }

  UnitShared shared;
  shared.spec = &spec;
  shared.env = env;
  shared.ctx = &ctx;
  shared.tokens = s.tokens;
  shared.token_bytes = s.token_bytes;
  shared.interrupt = s.options.interrupt;
  shared.stop_request = &s.stop_requested;
  shared.metrics = &s.metrics;
  // The report's time per stage is this call's share of the session's histograms.
  const std::array<HistogramData, kStageCount> stages_before = s.metrics.Snapshot().stage_seconds;
  shared.table_sink = s.table_sink.get();
  shared.batch_sizer = s.batch_sizer.get();

  // Resume: units committed earlier are kept. A run that owns these units
  // (alone, or its shard) removes what killed runs left of the others; with
  // shared_output, other processes' temporaries cannot be told from those of
  // dead ones, and FinalizeOutput removes them.
  JobReport report;
  std::vector<size_t> pending;
  std::vector<UnitMarker> markers;
  std::set<std::string> pending_ids;
  for (size_t i : units) {
    const WorkUnit& unit = ctx.plan.units[i];
    ASSIGN_OR_RETURN(std::optional<UnitMarker> committed, CommittedMarker(env, out, s.table_sink.get(), unit.id));
    if (committed) {
      ++report.units_skipped;
      markers.push_back(std::move(*committed));
    } else {
      pending.push_back(i);
      pending_ids.insert(unit.id);
    }
  }
  if (!s.options.shared_output) {
    RETURN_IF_ERROR(RemoveOrphanTemporaries(env, out, pending_ids, /*whole_job=*/false));
  }
  int64_t pending_rows = 0;
  for (size_t i : pending) pending_rows += ctx.plan.units[i].est_rows;
  s.metrics.SetPlanned(static_cast<int64_t>(pending.size()), pending_rows);

  report.units_total = static_cast<int64_t>(units.size());
  report.workers = ctx.workers;
  report.model_threads = ctx.model_threads;
  spdlog::info("job: {} unit(s){}{} from '{}', {} worker(s) x {} model thread(s), {} mode, output '{}'", units.size(),
               s.options.shard_count > 1 ? fmt::format(" (shard {}/{} of {})", s.options.shard_index,
                                                       s.options.shard_count, ctx.plan.units.size())
                                         : "",
               report.units_skipped > 0 ? fmt::format(", {} already committed", report.units_skipped) : "",
               spec.input.database.empty() ? spec.input.path : RedactConnection(spec.input.database), ctx.workers,
               ctx.model_threads, spec.execution.async ? "async" : "sync", out);

  const size_t n = pending.size();
  std::vector<std::optional<Result<UnitResult>>> outcomes(n);
  // A unit's end: the metrics, its log line, its outcome.
  auto finish = [&](const UnitWork& w, Result<UnitResult> r, std::chrono::steady_clock::time_point start) {
    const WorkUnit& unit = ctx.plan.units[pending[w.i]];
    const double unit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!r.ok()) {
      s.metrics.UnitFinished(unit.id, /*committed=*/false, unit_seconds);
      spdlog::error("unit {}: {}", unit.id, r.status().ToString());
    } else if (r->outcome.state == UnitOutcome::State::kCommitted) {
      s.metrics.UnitFinished(unit.id, /*committed=*/true, unit_seconds);
      if (!r->found_committed) {
        (void)env->RemoveFile(FailedUnitPath(out, unit.id));  // an earlier run's failure
        const UnitMarker& m = r->outcome.marker;
        spdlog::info("unit {}: committed {} file(s) ({} rows in, {} out, {} rejected, {} filtered)", unit.id,
                     m.files.size(), m.rows_in, m.rows_out, m.rows_rejected, m.rows_filtered);
      }
    } else {
      s.metrics.UnitStopped();
    }
    s.metrics.SetModelCounts(ctx.models->loads(), ctx.models->evictions());
    if (r.ok()) r->unit_lock.reset();
    outcomes[w.i] = std::move(r);
  };
  // Units whose commit failed and that run again (after the others).
  std::mutex retry_mu;
  std::vector<UnitWork> retries;  // guarded by retry_mu
  auto commit = [&](PendingCommit p) {
    const WorkUnit& unit = ctx.plan.units[pending[p.work.i]];
    ScopedLogUnit log_unit(unit.id);
    Result<UnitMarker> marker = p.commit->Commit();
    p.commit.reset();  // a failed commit's output goes
    if (marker.ok()) {
      finish(p.work, UnitResult{UnitOutcome{UnitOutcome::State::kCommitted, std::move(*marker), nullptr}, false,
                                std::move(p.unit_lock)},
             p.start);
      return;
    }
    const Status& st = marker.status();
    if (std::optional<uint64_t> wait = RetryWait(&shared, unit, st, st.IsTransient(), p.work.attempt)) {
      s.metrics.UnitStopped();
      std::lock_guard<std::mutex> lock(retry_mu);
      retries.push_back(UnitWork{p.work.i, p.work.attempt + 1, *wait});
      return;
    }
    finish(p.work, UnitFailed(&shared, unit, st, p.work.attempt), p.start);
  };

  const int cores = std::max(1, tbb::info::default_concurrency());
  // Async units overlap their stages on all cores; workers may exceed the cores when asked to.
  const int threads = std::max(ctx.workers, spec.execution.async ? cores : 1);
  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
  tbb::task_arena arena(threads);
  // Runs `work` on the workers; with a committer, units writing files leave
  // their commit to it (the others commit as before).
  auto run_workers = [&](const std::vector<UnitWork>& work, Committer* committer) {
    std::atomic<size_t> next{0};
    // Worker tasks acquire what this thread prepared and release what they did (tsan_annotations.h).
    void* const handoff = &shared;
    TsanRelease(handoff);
    arena.execute([&] {
      tbb::task_group workers;
      for (int worker = 0; worker < ctx.workers; ++worker) {
        workers.run([&] {
          TsanAcquire(handoff);
          for (size_t k = next++; k < work.size(); k = next++) {
            const UnitWork& w = work[k];
            const WorkUnit& unit = ctx.plan.units[pending[w.i]];
            if (shared.stop || shared.interrupted()) {  // reject limit crossed, or a signal: start no more units
              outcomes[w.i] = UnitResult{UnitOutcome{UnitOutcome::State::kStopped, {}, nullptr}, false, nullptr};
              continue;
            }
            ScopedLogUnit log_unit(unit.id);
            s.metrics.UnitStarted();
            const auto start = std::chrono::steady_clock::now();
            if (w.wait_us > 0) env->SleepForMicros(w.wait_us);
            int attempt = w.attempt;
            Result<UnitResult> r = s.RunOne(&shared, unit, committer != nullptr, &attempt);
            if (r.ok() && r->outcome.state == UnitOutcome::State::kWritten) {
              committer->Submit(PendingCommit{UnitWork{w.i, attempt, 0}, std::move(r->outcome.commit),
                                              std::move(r->unit_lock), start});
            } else {
              finish(w, std::move(r), start);
            }
          }
          TsanRelease(handoff);
        });
      }
      workers.wait();
    });
    TsanAcquire(handoff);
  };
  std::vector<UnitWork> work(n);
  for (size_t i = 0; i < n; ++i) work[i].i = i;
  {
    // Each worker has at most one unit waiting for the disk. Database sinks
    // commit in their unit's transaction, on the worker.
    std::optional<Committer> committer;
    if (!s.table_sink) committer.emplace(static_cast<size_t>(ctx.workers), commit);
    run_workers(work, committer ? &*committer : nullptr);
  }
  // Units whose commit failed run again, committing as they go.
  std::sort(retries.begin(), retries.end(), [](const UnitWork& a, const UnitWork& b) { return a.i < b.i; });
  if (!retries.empty()) run_workers(retries, nullptr);

  // The summary, in plan order (units committed earlier included).
  for (size_t i = 0; i < n; ++i) {
    const WorkUnit& unit = ctx.plan.units[pending[i]];
    const Result<UnitResult>& r = *outcomes[i];
    if (!r.ok()) {
      ++report.units_failed;
      if (report.error.empty()) report.error = fmt::format("unit {}: {}", unit.id, r.status().message());
      continue;
    }
    if (r->outcome.state == UnitOutcome::State::kRejectLimit) {
      report.exit_code = ExitCode::kRejectLimit;
      report.error = fmt::format("unit {}: {} rows rejected, over the limit ({}); stopped; see {}", unit.id,
                                 shared.rejected.load(), DescribeLimit(spec.max_rejected), RejectsDir(out));
      continue;
    }
    if (r->outcome.state == UnitOutcome::State::kCommitted) {
      if (r->found_committed) ++report.units_skipped;
      markers.push_back(r->outcome.marker);
    }
  }
  std::sort(markers.begin(), markers.end(),
            [](const UnitMarker& a, const UnitMarker& b) { return a.unit_id < b.unit_id; });
  for (const UnitMarker& m : markers) AddUnitTotals(m, &report);
  report.retries = shared.Retries();
  {
    std::lock_guard<std::mutex> guard(s.mu);
    for (const auto& [code, count] : s.open_retries) report.retries[code] += count;
    s.open_retries.clear();
  }
  report.batch_size_auto = s.batch_sizer != nullptr;
  report.batch_size = s.batch_sizer ? s.batch_sizer->best() : spec.batch_size;
  if (s.batch_sizer && !s.batch_sizer->decided() && n > 0) {
    spdlog::info("batch.size auto: the units ended before a choice; best so far {}", s.batch_sizer->Describe());
  }
  {
    const std::array<HistogramData, kStageCount> stages = s.metrics.Snapshot().stage_seconds;
    auto seconds = [&](Stage stage) {
      const size_t i = static_cast<size_t>(stage);
      return stages[i].sum - stages_before[i].sum;
    };
    report.read_seconds = seconds(Stage::kRead) + seconds(Stage::kPreprocess);
    report.predict_seconds = seconds(Stage::kPredict);
    report.write_seconds = seconds(Stage::kPostprocess) + seconds(Stage::kWrite);
  }
  report.model_loads = ctx.models->loads();
  report.model_evictions = ctx.models->evictions();
  report.peak_rss_bytes = PeakRssBytes();
  report.seconds = static_cast<double>(env->NowMicros() - start_us) / 1e6;

  if (report.exit_code != ExitCode::kSuccess) return report;
  if (s.stop_requested.load()) {
    std::lock_guard<std::mutex> lock(s.stop_mu);
    report.exit_code = s.stop_code;
    report.error = fmt::format("{}; {} of {} unit(s) committed; run the same command again to resume", s.stop_reason,
                               report.units_done, report.units_total);
  } else if (shared.interrupted()) {
    report.exit_code = ExitCode::kInterrupted;
    report.error = fmt::format("interrupted: {} of {} unit(s) committed; run the same command again to resume",
                               report.units_done, report.units_total);
  } else if (report.units_failed > 0) {
    report.exit_code = ExitCode::kUnitsFailed;
  }
  return report;
}

Status ValidateJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<JobContext> ctx, PrepareJob(spec, env, options));
  return BindModels(spec, ctx.get());
}

namespace {

// How long the end of a run waits for webhook deliveries still in progress.
constexpr int64_t kWebhookFlushMs = 15000;

uint64_t UnixMicros() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// A run whose units all went well: the run that finds every unit of the plan
// committed (of any shard) checks errors.max_rejected over the whole job and
// writes _SUCCESS. A shard that does not complete the job leaves a percentage
// limit to the one that does, or to sluice finalize: a shard's own share says
// nothing about the job's.
Status CompleteJob(const JobSpec& spec, Env* env, JobSession* session, JobReport* report) {
  const std::string& out = spec.output.path;
  std::vector<std::string> all_ids;
  ASSIGN_OR_RETURN(PlanSummary plan, session->Plan());
  for (const PlannedUnit& u : plan.units) all_ids.push_back(u.id);
  ASSIGN_OR_RETURN(const Completion done, ReadCompletion(env, out, all_ids, /*stop_at_missing=*/true));
  if (!done.missing.empty()) return Status::OK();
  if (RejectLimitExceeded(spec.max_rejected, done.totals.rows_rejected, done.totals.rows_in)) {
    report->exit_code = ExitCode::kRejectLimit;
    report->error = fmt::format("{} of {} rows rejected, over the limit ({}); see {}", done.totals.rows_rejected,
                                done.totals.rows_in, DescribeLimit(spec.max_rejected), RejectsDir(out));
    return Status::OK();
  }
  UnitShared shared;
  shared.spec = &spec;
  shared.env = env;
  Status st = WithRetries(&shared, "_SUCCESS", [&] { return WriteSuccessManifest(env, out, done.markers, done.totals); });
  for (const auto& [code, count] : shared.Retries()) report->retries[code] += count;
  if (!st.ok()) {
    // Every unit is committed; only the manifest is missing, and the next run (or sluice finalize) writes it.
    report->exit_code = ExitCode::kUnitsFailed;
    report->error = "writing _SUCCESS: " + st.ToString();
  }
  return Status::OK();
}

// _sluice/report.json and report.html (report-shard-I-of-N with --shard) of a
// run that ended with `report`, whatever its exit code: its rows are the
// committed units' markers.
Status WriteRunReport(const JobSpec& spec, Env* env, const RunOptions& options, JobSession* session,
                      const JobReport& report, const AlertEngine* alerts, uint64_t started_unix_micros) {
  ReportInput in;
  in.spec = &spec;
  in.fingerprint = &session->job_fingerprint();
  in.report = &report;
  for (const std::string& id : session->ShardUnitIds()) {
    ASSIGN_OR_RETURN(std::optional<UnitMarker> marker, CommittedUnit(env, spec.output.path, id));
    if (marker) in.markers.push_back(std::move(*marker));
  }
  in.unit_seconds = session->metrics()->UnitSeconds();
  in.metrics = session->metrics()->Snapshot();
  in.timeline = session->metrics()->Timeline();
  if (alerts != nullptr) in.alerts = alerts->fired();
  in.score_reference = session->score_reference();
  in.started_unix_micros = started_unix_micros;
  in.finished_unix_micros = UnixMicros();
  return WriteReport(env, spec.output.path, ReportBaseName(options.shard_index, options.shard_count),
                     BuildReportJson(in));
}

}  // namespace

Result<JobReport> RunJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  const uint64_t start_us = env->NowMicros();
  const uint64_t started_unix_micros = UnixMicros();
  ASSIGN_OR_RETURN(std::unique_ptr<JobSession> session, JobSession::Open(spec, env, options));
  const std::string& out = spec.output.path;
  ASSIGN_OR_RETURN(std::unique_ptr<AlertEngine> alerts,
                   AlertEngine::Create(spec.monitoring.alerts, session->score_reference(), JobName(spec),
                                       session->fingerprint()));
  MonitorOptions monitor_options;
  monitor_options.spec = &spec.monitoring;
  // Shards of one job write their own textfile, as their own report.
  monitor_options.textfile =
      out + (options.shard_count > 1
                 ? fmt::format("/_sluice/metrics-shard-{}-of-{}.prom", options.shard_index, options.shard_count)
                 : std::string("/_sluice/metrics.prom"));
  monitor_options.progress = options.quiet ? ProgressMode::kOff : spec.monitoring.progress;
  monitor_options.tty = options.stderr_tty;
  monitor_options.alerts = alerts.get();
  JobSession* const s = session.get();
  monitor_options.on_fail = [s](const std::string& reason) { s->RequestStop(ExitCode::kAlert, reason); };
  ASSIGN_OR_RETURN(std::unique_ptr<Monitor> monitor, Monitor::Start(session->metrics(), env, std::move(monitor_options)));
  Result<JobReport> run = session->RunUnits(session->ShardUnitIds());
  if (options.exits_after_run) session->LeaveIdleDatabasesToExit();
  monitor->Stop();
  alerts->Flush(kWebhookFlushMs);
  ASSIGN_OR_RETURN(JobReport report, std::move(run));
  if (report.exit_code == ExitCode::kSuccess) RETURN_IF_ERROR(CompleteJob(spec, env, session.get(), &report));
  report.seconds = static_cast<double>(env->NowMicros() - start_us) / 1e6;
  // The report explains the run; failing to write it does not undo the run.
  if (Status st = WriteRunReport(spec, env, options, session.get(), report, alerts.get(), started_unix_micros); !st.ok()) {
    spdlog::warn("run report: {}", st.ToString());
  }
  return report;
}

Result<PlanSummary> PlanJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  JobContext ctx;
  RETURN_IF_ERROR(PrepareInput(spec, env, &ctx));
  std::string fingerprint;  // empty when a model file cannot be read (validate tells why)
  bool output_is_this_job = false;
  if (Result<JobFingerprint> fp = Fingerprint(spec, env, ctx); fp.ok()) {
    fingerprint = fp->Digest();
    output_is_this_job = OutputDirHoldsJob(env, spec.output.path, *fp);
  }
  return SummarizePlan(ctx, fingerprint, env, spec.output.path, options, output_is_this_job);
}

}  // namespace sluice
