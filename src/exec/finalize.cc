#include "exec/finalize.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "sluice/session.h"

namespace sluice {

void AddUnitTotals(const UnitMarker& m, JobReport* report) {
  report->rows_rejected += m.rows_rejected;
  report->rows_in += m.rows_in;
  report->rows_out += m.rows_out;
  report->rows_filtered += m.rows_filtered;
  report->rows_sampled_out += m.rows_sampled_out;
  ++report->units_done;
  for (const PartFile& f : m.files) report->parts.push_back(f.path);
}

bool RejectLimitExceeded(const RejectLimit& limit, int64_t rejected, int64_t rows_in) {
  if (limit.count) return rejected > *limit.count;
  if (limit.fraction) return rows_in > 0 && static_cast<double>(rejected) > *limit.fraction * rows_in;
  return false;
}

std::string DescribeLimit(const RejectLimit& limit) {
  if (limit.count) return fmt::format("errors.max_rejected is {}", *limit.count);
  return fmt::format("errors.max_rejected is {}%", *limit.fraction * 100);
}

Result<Completion> ReadCompletion(Env* env, const std::string& out, const std::vector<std::string>& unit_ids,
                                  bool stop_at_missing) {
  Completion c;
  for (const std::string& id : unit_ids) {
    bool stale = false;
    ASSIGN_OR_RETURN(std::optional<UnitMarker> marker, ReadValidMarker(env, out, id, &stale));
    if (!marker) {
      c.missing.push_back(id);
      if (stale) c.stale.push_back(id);
      if (stop_at_missing) break;
      continue;
    }
    if (c.missing.empty()) {
      AddUnitTotals(*marker, &c.totals);
      c.markers.push_back(std::move(*marker));
    }
  }
  if (!c.missing.empty()) {
    c.markers.clear();
    c.totals = JobReport();
  }
  return c;
}

Result<FinalizeReport> FinalizeOutput(Env* env, const std::string& out) {
  ASSIGN_OR_RETURN(const JobRecord record, ReadJobRecord(env, out));
  std::vector<std::string> ids;
  for (const PlannedRange& u : record.units) ids.push_back(u.id);
  ASSIGN_OR_RETURN(const Completion c, ReadCompletion(env, out, ids, /*stop_at_missing=*/false));

  FinalizeReport report;
  report.units_total = static_cast<int64_t>(ids.size());
  if (!c.missing.empty()) {
    report.units_done = report.units_total - static_cast<int64_t>(c.missing.size());
    const std::set<std::string> stale(c.stale.begin(), c.stale.end());
    for (const std::string& id : c.missing) {
      if (stale.count(id)) {
        report.missing.push_back(id + ": stale marker (it does not parse, or its files differ from it)");
      } else if (env->FileExists(FailedUnitPath(out, id))) {
        ASSIGN_OR_RETURN(FailedUnit f, ReadFailedUnit(env, FailedUnitPath(out, id)));
        report.missing.push_back(fmt::format("{}: failed after {} attempt(s): {}", id, f.attempts, f.error));
      } else {
        report.missing.push_back(id + ": pending");
      }
    }
    report.exit_code = ExitCode::kUnitsFailed;
    report.error = fmt::format("'{}': {} of {} unit(s) not committed; run them (sluice run, the same --shard, or the "
                               "Dask runner) and finalize again",
                               out, c.missing.size(), ids.size());
    return report;
  }
  report.units_done = c.totals.units_done;
  report.rows_in = c.totals.rows_in;
  report.rows_out = c.totals.rows_out;
  report.rows_rejected = c.totals.rows_rejected;
  report.rows_filtered = c.totals.rows_filtered;
  if (RejectLimitExceeded(record.max_rejected, c.totals.rows_rejected, c.totals.rows_in)) {
    report.exit_code = ExitCode::kRejectLimit;
    report.error = fmt::format("'{}': {} of {} rows rejected, over the limit ({}); see {}", out,
                               c.totals.rows_rejected, c.totals.rows_in, DescribeLimit(record.max_rejected),
                               RejectsDir(out));
    return report;
  }
  // Temporaries of killed attempts go first, so that _SUCCESS marks a clean
  // directory; only while no run holds it, as a run's temporaries cannot be
  // told from a dead one's.
  Result<OutputLock> alone = LockOutputDir(env, out, RunOptions{});
  if (alone.ok()) {
    RETURN_IF_ERROR(RemoveOrphanTemporaries(env, out, std::set<std::string>(ids.begin(), ids.end()),
                                            /*whole_job=*/true));
  } else {
    spdlog::info("finalize: '{}' is in use by a run; its temporaries are left to it", out);
  }
  RETURN_IF_ERROR(WriteSuccessManifest(env, out, c.markers, c.totals));
  return report;
}

}  // namespace sluice
