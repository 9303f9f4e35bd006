// RunJob: preflight, the output directory, the memory and thread plan, then
// the units of this run on `workers` parallel workers in a oneTBB arena, and
// the run summary. Each unit is processed by RunUnit (unit_runner.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <atomic>
#include <functional>
#include <optional>
#include <set>

#include "core/sha256.h"
#include "core/strings.h"
#include "core/tsan_annotations.h"
#include "exec/job_context.h"
#include "exec/output_dir.h"
#include "exec/unit_runner.h"
#include "observe/resources.h"
#include "sluice/job.h"

namespace sluice {
namespace {

// Per worker, outside the batches: the reader's chunk window, the part
// writer's buffers, the rejects writer.
constexpr uint64_t kWorkerFixedBytes = uint64_t{6} << 20;
// The smallest share of memory a batch slot may have.
constexpr uint64_t kMinTokenBytes = uint64_t{1} << 20;

bool RejectLimitExceeded(const RejectLimit& limit, int64_t rejected, int64_t rows_in) {
  if (limit.count) return rejected > *limit.count;
  if (limit.fraction) return rows_in > 0 && static_cast<double>(rejected) > *limit.fraction * rows_in;
  return false;
}

std::string DescribeLimit(const RejectLimit& limit) {
  if (limit.count) return fmt::format("errors.max_rejected is {}", *limit.count);
  return fmt::format("errors.max_rejected is {}%", *limit.fraction * 100);
}

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
  uint64_t reserved = PeakRssBytes() + kWorkerFixedBytes * static_cast<uint64_t>(ctx.workers);
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
        "execution.memory_limit: {} is too small: the runtime and model take {}, and {} worker(s) with {} batches "
        "in flight need at least {} more; raise the limit or lower execution.workers",
        Mib(limit), Mib(reserved), ctx.workers, slots, Mib(slots * kMinTokenBytes)));
  }
  shared->token_bytes = (limit - reserved) / slots;
  spdlog::info("memory: limit {}, held at start {}, {} batch slot(s) of up to {} each", Mib(limit), Mib(reserved),
               slots, Mib(shared->token_bytes));
  return Status::OK();
}

// Adds a committed unit to the run's totals.
void AddUnitTotals(const UnitMarker& m, JobReport* report) {
  report->rows_rejected += m.rows_rejected;
  report->rows_in += m.rows_in;
  report->rows_out += m.rows_out;
  report->rows_filtered += m.rows_filtered;
  report->rows_sampled_out += m.rows_sampled_out;
  ++report->units_done;
  for (const PartFile& f : m.files) report->parts.push_back(f.path);
}

// The unit's input for messages and records: "data/x.csv bytes [0, 4096)",
// "data/x.parquet rows 0-122879", "postgresql://ann:***@db/x rowid 1-50000".
std::string DescribeUnit(const WorkUnit& unit) {
  if (!unit.range.label.empty()) return RedactConnection(unit.range.path) + " " + unit.range.label;
  return fmt::format("{} bytes [{}, {})", unit.range.path, unit.range.begin, std::min(unit.range.end, unit.file_size));
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

// Every unit's marker, when every unit of the plan is committed.
Result<std::optional<std::vector<UnitMarker>>> AllMarkers(Env* env, const JobSpec& spec, const JobContext& ctx) {
  std::vector<UnitMarker> markers;
  for (const WorkUnit& u : ctx.plan.units) {
    const std::string path = UnitMarkerPath(spec.output.path, u.id);
    if (!env->FileExists(path)) return std::optional<std::vector<UnitMarker>>();
    ASSIGN_OR_RETURN(UnitMarker m, ReadUnitMarker(env, path));
    markers.push_back(std::move(m));
  }
  return std::optional<std::vector<UnitMarker>>(std::move(markers));
}

}  // namespace

Status ValidateJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<JobContext> ctx, PrepareJob(spec, env, options));
  return BindModels(spec, ctx.get());
}

namespace {

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

// One unit, retried on transient failures with full-jitter backoff; a unit that
// still fails is recorded in _sluice/failed/ with its range and last error.
Result<UnitOutcome> RunUnitWithRetries(UnitShared* shared, const WorkUnit& unit) {
  const JobSpec& spec = *shared->spec;
  const int max_attempts = spec.execution.retries.max_attempts;
  for (int attempt = 1;; ++attempt) {
    bool retryable = false;
    Result<UnitOutcome> r = RunUnit(shared, unit, &retryable);
    if (r.ok()) {
      if (r->state == UnitOutcome::State::kCommitted) {
        (void)shared->env->RemoveFile(FailedUnitPath(spec.output.path, unit.id));  // an earlier run's failure
      }
      return r;
    }
    const Status& st = r.status();
    if (retryable && attempt < max_attempts && !shared->interrupted()) {
      shared->CountRetry(st.code());
      const uint64_t wait = shared->BackoffMicros(attempt);
      spdlog::warn("unit {}: attempt {} of {} failed ({}); retrying in {} ms", unit.id, attempt, max_attempts,
                   st.ToString(), wait / 1000);
      shared->env->SleepForMicros(wait);
      continue;
    }
    const uint64_t end = std::min(unit.range.end, unit.file_size);
    Status failed = st.WithContext(fmt::format("{}, after {} attempt(s)", DescribeUnit(unit), attempt));
    Status recorded = WriteFailedUnit(shared->env, spec.output.path,
                                      FailedUnit{unit.id, RedactConnection(unit.range.path), unit.range.begin, end,
                                                 st.ToString(), attempt});
    if (!recorded.ok()) spdlog::warn("unit {}: cannot record the failure: {}", unit.id, recorded.ToString());
    return failed;
  }
}

}  // namespace

Result<JobReport> RunJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  const uint64_t start_us = env->NowMicros();
  ASSIGN_OR_RETURN(std::unique_ptr<JobContext> ctx, PrepareJob(spec, env, options));
  ASSIGN_OR_RETURN(JobFingerprint fp, Fingerprint(spec, env, *ctx));
  for (const WorkUnit& u : ctx->plan.units) {
    fp.units.push_back(
        {u.id, RedactConnection(u.range.path), u.range.begin, std::min(u.range.end, u.file_size), u.range.label});
  }
  UnitShared shared;
  shared.spec = &spec;
  shared.env = env;
  shared.ctx = ctx.get();
  shared.interrupt = options.interrupt;
  RETURN_IF_ERROR(PlanMemory(spec, *ctx, env, &shared));
  const std::string& out = spec.output.path;
  RETURN_IF_ERROR(CheckOutputDir(env, out, fp, options.restart));
  ASSIGN_OR_RETURN(OutputLock lock, LockOutputDir(env, out, options.shard_index, options.shard_count));
  RETURN_IF_ERROR(WithRetries(&shared, "output directory",
                              [&] { return PrepareOutputDir(env, out, fp, options.restart); }));
  std::unique_ptr<TableSink> table_sink;
  if (IsDatabase(spec.output.format)) {
    RETURN_IF_ERROR(WithRetries(&shared, "output.database", [&]() -> Status {
      ASSIGN_OR_RETURN(table_sink, OpenTableSink(spec.output, fp.Digest()));
      return Status::OK();
    }));
  }

  // Resume: units committed by an earlier run of this job are kept; what the
  // others left behind (temporaries of a killed run) goes.
  JobReport report;
  std::vector<size_t> pending;
  std::vector<UnitMarker> markers;
  std::set<std::string> pending_ids;
  for (size_t i : ctx->run_units) {
    const WorkUnit& unit = ctx->plan.units[i];
    ASSIGN_OR_RETURN(std::optional<UnitMarker> committed, CommittedMarker(env, out, table_sink.get(), unit.id));
    if (committed) {
      ++report.units_skipped;
      markers.push_back(std::move(*committed));
    } else {
      pending.push_back(i);
      pending_ids.insert(unit.id);
    }
  }
  RETURN_IF_ERROR(RemoveOrphanTemporaries(env, out, pending_ids, /*whole_job=*/options.shard_count <= 1));

  report.units_total = static_cast<int64_t>(ctx->run_units.size());
  report.workers = ctx->workers;
  report.model_threads = ctx->model_threads;
  spdlog::info("job: {} unit(s){}{} from '{}', {} worker(s) x {} model thread(s), {} mode, output '{}'",
               ctx->run_units.size(),
               options.shard_count > 1 ? fmt::format(" (shard {}/{} of {})", options.shard_index, options.shard_count,
                                                     ctx->plan.units.size())
                                       : "",
               report.units_skipped > 0 ? fmt::format(", {} already committed", report.units_skipped) : "",
               spec.input.database.empty() ? spec.input.path : RedactConnection(spec.input.database), ctx->workers, ctx->model_threads, spec.execution.async ? "async" : "sync", out);

  // model.load: lazy binds here, when the first unit starts; a failure then fails the units.
  Status bind = pending.empty() ? Status::OK() : BindModels(spec, ctx.get());
  if (bind.ok() && table_sink && !pending.empty()) {
    bind = WithRetries(&shared, "output.table",
                       [&] { return table_sink->PrepareTable(ctx->postprocessor->output_schema()); });
    shared.table_sink = table_sink.get();
  }
  if (!bind.ok()) spdlog::error("{}", bind.ToString());

  const size_t n = pending.size();
  std::vector<std::optional<Result<UnitOutcome>>> outcomes(n);
  {
    const int cores = std::max(1, tbb::info::default_concurrency());
    // Async units overlap their stages on all cores; workers may exceed the cores when asked to.
    const int threads = std::max(ctx->workers, spec.execution.async ? cores : 1);
    tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(threads));
    tbb::task_arena arena(threads);
    std::atomic<size_t> next{0};
    // Worker tasks acquire what this thread prepared and release what they did (tsan_annotations.h).
    void* const handoff = &shared;
    TsanRelease(handoff);
    arena.execute([&] {
      tbb::task_group workers;
      for (int w = 0; w < ctx->workers; ++w) {
        workers.run([&] {
          TsanAcquire(handoff);
          for (size_t i = next++; i < n; i = next++) {
            const WorkUnit& unit = ctx->plan.units[pending[i]];
            if (shared.stop || shared.interrupted()) {  // reject limit crossed, or a signal: start no more units
              outcomes[i] = UnitOutcome{UnitOutcome::State::kStopped, {}};
              continue;
            }
            outcomes[i] = bind.ok() ? RunUnitWithRetries(&shared, unit) : Result<UnitOutcome>(bind);
            const Result<UnitOutcome>& r = *outcomes[i];
            if (!r.ok()) {
              spdlog::error("unit {}: {}", unit.id, r.status().ToString());
            } else if (r->state == UnitOutcome::State::kCommitted) {
              const UnitMarker& m = r->marker;
              spdlog::info("unit {}: committed {} file(s) ({} rows in, {} out, {} rejected, {} filtered)", unit.id,
                           m.files.size(), m.rows_in, m.rows_out, m.rows_rejected, m.rows_filtered);
            }
          }
          TsanRelease(handoff);
        });
      }
      workers.wait();
    });
    TsanAcquire(handoff);
  }

  // The summary, in plan order (units committed earlier included).
  for (size_t i = 0; i < n; ++i) {
    const WorkUnit& unit = ctx->plan.units[pending[i]];
    const Result<UnitOutcome>& r = *outcomes[i];
    if (!r.ok()) {
      ++report.units_failed;
      if (report.error.empty()) report.error = fmt::format("unit {}: {}", unit.id, r.status().message());
      continue;
    }
    if (r->state == UnitOutcome::State::kRejectLimit) {
      report.exit_code = ExitCode::kRejectLimit;
      report.error = fmt::format("unit {}: {} rows rejected, over the limit ({}); stopped; see {}", unit.id,
                                 shared.rejected.load(), DescribeLimit(spec.max_rejected), RejectsDir(out));
      continue;
    }
    if (r->state == UnitOutcome::State::kCommitted) markers.push_back(r->marker);
  }
  std::sort(markers.begin(), markers.end(),
            [](const UnitMarker& a, const UnitMarker& b) { return a.unit_id < b.unit_id; });
  for (const UnitMarker& m : markers) AddUnitTotals(m, &report);
  report.retries = shared.Retries();
  report.model_loads = ctx->models->loads();
  report.model_evictions = ctx->models->evictions();
  report.peak_rss_bytes = PeakRssBytes();
  report.seconds = static_cast<double>(env->NowMicros() - start_us) / 1e6;

  if (report.exit_code != ExitCode::kSuccess) return report;
  if (shared.interrupted()) {
    report.exit_code = ExitCode::kInterrupted;
    report.error = fmt::format("interrupted: {} of {} unit(s) committed; run the same command again to resume",
                               report.units_done, report.units_total);
  } else if (report.units_failed > 0) {
    report.exit_code = ExitCode::kUnitsFailed;
  } else if (RejectLimitExceeded(spec.max_rejected, report.rows_rejected, report.rows_in)) {
    report.exit_code = ExitCode::kRejectLimit;
    report.error = fmt::format("{} of {} rows rejected, over the limit ({}); see {}", report.rows_rejected,
                               report.rows_in, DescribeLimit(spec.max_rejected), RejectsDir(out));
  } else {
    // The run that commits the last unit of the plan (of any shard) writes _SUCCESS;
    // a run of the whole job has every marker at hand already.
    std::optional<std::vector<UnitMarker>> all;
    if (markers.size() == ctx->plan.units.size()) {
      all = std::move(markers);
    } else {
      ASSIGN_OR_RETURN(all, AllMarkers(env, spec, *ctx));
    }
    if (all) {
      JobReport totals;
      for (const UnitMarker& m : *all) AddUnitTotals(m, &totals);
      Status st = WithRetries(&shared, "_SUCCESS", [&] { return WriteSuccessManifest(env, out, *all, totals); });
      if (!st.ok()) {
        // Every unit is committed; only the manifest is missing, and the next run writes it.
        report.exit_code = ExitCode::kUnitsFailed;
        report.error = "writing _SUCCESS: " + st.ToString();
      }
    }
  }
  return report;
}

Result<PlanSummary> PlanJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  JobContext ctx;
  RETURN_IF_ERROR(PrepareInput(spec, env, &ctx));
  PlanSummary summary;
  summary.format = std::string(InputFormatName(ctx.plan.format));
  if (Result<JobFingerprint> fp = Fingerprint(spec, env, ctx); fp.ok()) {
    summary.output_is_this_job = OutputDirHoldsJob(env, spec.output.path, *fp);
  }
  for (const WorkUnit& u : ctx.plan.units) {
    PlannedUnit p;
    p.id = u.id;
    p.path = RedactConnection(u.range.path);
    p.label = u.range.label;
    p.begin = u.range.begin;
    p.end = std::min<uint64_t>(u.range.end, u.file_size);
    p.est_bytes = u.est_bytes;
    p.est_rows = u.est_rows;
    p.rows_exact = u.rows_exact;
    p.in_shard = u.index % options.shard_count == options.shard_index;
    p.done = summary.output_is_this_job && env->FileExists(UnitMarkerPath(spec.output.path, u.id));
    summary.units.push_back(std::move(p));
  }
  return summary;
}

}  // namespace sluice
