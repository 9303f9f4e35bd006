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
#include <optional>

#include "core/sha256.h"
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
    std::vector<std::string> paths = {spec.model.path};
    if (spec.model.route) {
      for (const auto& [value, path] : spec.model.route->models) paths.push_back(path);
    }
    for (const std::string& p : paths) {
      if (Result<FileInfo> info = env->Stat(p); info.ok()) largest = std::max(largest, info->size);
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

// With --shard, the run that commits the last unit of the plan writes _SUCCESS
// from every unit's marker.
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

Result<JobReport> RunJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  const uint64_t start_us = env->NowMicros();
  ASSIGN_OR_RETURN(std::unique_ptr<JobContext> ctx, PrepareJob(spec, env, options));
  ASSIGN_OR_RETURN(JobFingerprint fp, Fingerprint(spec, env, *ctx));
  UnitShared shared;
  shared.spec = &spec;
  shared.env = env;
  shared.ctx = ctx.get();
  RETURN_IF_ERROR(PlanMemory(spec, *ctx, env, &shared));
  RETURN_IF_ERROR(PrepareOutputDir(env, spec.output.path, fp, options.restart));

  JobReport report;
  report.units_total = static_cast<int64_t>(ctx->run_units.size());
  report.workers = ctx->workers;
  report.model_threads = ctx->model_threads;
  spdlog::info("job: {} unit(s){} from '{}', {} worker(s) x {} model thread(s), {} mode, output '{}'",
               ctx->run_units.size(),
               options.shard_count > 1 ? fmt::format(" (shard {}/{} of {})", options.shard_index, options.shard_count,
                                                     ctx->plan.units.size())
                                       : "",
               spec.input.path, ctx->workers, ctx->model_threads, spec.execution.async ? "async" : "sync",
               spec.output.path);

  // model.load: lazy binds here, when the first unit starts; a failure then fails the units.
  Status bind = BindModels(spec, ctx.get());
  if (!bind.ok()) spdlog::error("model: {}", bind.ToString());

  const size_t n = ctx->run_units.size();
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
            const WorkUnit& unit = ctx->plan.units[ctx->run_units[i]];
            if (shared.stop) {  // the reject limit was crossed: start no more units
              outcomes[i] = UnitOutcome{UnitOutcome::State::kStopped, {}};
              continue;
            }
            outcomes[i] = bind.ok() ? RunUnit(&shared, unit) : Result<UnitOutcome>(bind);
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

  // The summary, in plan order.
  std::vector<UnitMarker> markers;
  for (size_t i = 0; i < n; ++i) {
    const WorkUnit& unit = ctx->plan.units[ctx->run_units[i]];
    const Result<UnitOutcome>& r = *outcomes[i];
    if (!r.ok()) {
      ++report.units_failed;
      if (report.error.empty()) report.error = fmt::format("unit {}: {}", unit.id, r.status().message());
      continue;
    }
    const UnitMarker& m = r->marker;
    if (r->state == UnitOutcome::State::kRejectLimit) {
      report.exit_code = ExitCode::kRejectLimit;
      report.error = fmt::format("unit {}: {} rows rejected, over the limit ({}); stopped; see {}", unit.id,
                                 shared.rejected.load(), DescribeLimit(spec.max_rejected), RejectsDir(spec.output.path));
      continue;
    }
    if (r->state == UnitOutcome::State::kStopped) continue;
    report.rows_rejected += m.rows_rejected;
    report.rows_in += m.rows_in;
    report.rows_out += m.rows_out;
    report.rows_filtered += m.rows_filtered;
    report.rows_sampled_out += m.rows_sampled_out;
    ++report.units_done;
    for (const PartFile& f : m.files) report.parts.push_back(f.path);
    markers.push_back(m);
  }
  report.model_loads = ctx->models->loads();
  report.model_evictions = ctx->models->evictions();
  report.peak_rss_bytes = PeakRssBytes();
  report.seconds = static_cast<double>(env->NowMicros() - start_us) / 1e6;

  if (report.exit_code == ExitCode::kSuccess) {
    if (report.units_failed > 0) {
      report.exit_code = ExitCode::kUnitsFailed;
    } else if (RejectLimitExceeded(spec.max_rejected, report.rows_rejected, report.rows_in)) {
      report.exit_code = ExitCode::kRejectLimit;
      report.error = fmt::format("{} of {} rows rejected, over the limit ({}); see {}", report.rows_rejected,
                                 report.rows_in, DescribeLimit(spec.max_rejected), RejectsDir(spec.output.path));
    } else if (options.shard_count <= 1) {
      RETURN_IF_ERROR(WriteSuccessManifest(env, spec.output.path, markers, report));
    } else {
      ASSIGN_OR_RETURN(std::optional<std::vector<UnitMarker>> all, AllMarkers(env, spec, *ctx));
      if (all) {
        JobReport totals;
        for (const UnitMarker& m : *all) {
          totals.rows_in += m.rows_in;
          totals.rows_out += m.rows_out;
          totals.rows_rejected += m.rows_rejected;
          totals.rows_filtered += m.rows_filtered;
        }
        RETURN_IF_ERROR(WriteSuccessManifest(env, spec.output.path, *all, totals));
      }
    }
  }
  return report;
}

Result<PlanSummary> PlanJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  JobContext ctx;
  RETURN_IF_ERROR(PrepareInput(spec, env, &ctx));
  PlanSummary summary;
  summary.format = ctx.plan.format == InputFormat::kCsv ? "csv" : "jsonl";
  if (Result<JobFingerprint> fp = Fingerprint(spec, env, ctx); fp.ok()) {
    summary.output_is_this_job = OutputDirHoldsJob(env, spec.output.path, *fp);
  }
  for (const WorkUnit& u : ctx.plan.units) {
    PlannedUnit p;
    p.id = u.id;
    p.path = u.range.path;
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
