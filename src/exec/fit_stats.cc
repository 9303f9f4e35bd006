// `sluice fit-stats`: one streaming pass over every input unit into a StatsFitter.
#include <fmt/format.h>
#include <spdlog/spdlog.h>


#include "core/strings.h"
#include "exec/job_context.h"
#include "preprocess/stats_fitter.h"
#include "sluice/job.h"

namespace sluice {
namespace {

// Counts rows the reader could not parse; fitting skips them.
class CountingRejectSink final : public RejectSink {
 public:
  void Add(Reject r) override {
    if (count_++ == 0) spdlog::warn("fit-stats: skipping unreadable rows, first: {}:{}: {}", r.file, r.line, r.message);
  }
  int64_t count() const { return count_; }

 private:
  int64_t count_ = 0;
};

}  // namespace

Result<FitStatsReport> FitStats(const JobSpec& spec, Env* env, const std::string& out_path) {
  JobContext ctx;
  RETURN_IF_ERROR(PrepareInput(spec, env, &ctx));
  // Read only the feature columns.
  std::vector<std::string> columns;
  for (const FeatureSpec& f : spec.features) {
    if (!ctx.file_schema.FieldIndex(f.column)) {
      return Status::InvalidArgument(fmt::format("features: no input column '{}' in '{}'", f.column,
                                                 ctx.input_name));
    }
    if (std::find(columns.begin(), columns.end(), f.column) == columns.end()) columns.push_back(f.column);
  }
  const Schema projected = SelectSourceColumns(&ctx, std::move(columns));
  ASSIGN_OR_RETURN(auto fitter, StatsFitter::Make(spec.features, projected));

  FitStatsReport report;
  CountingRejectSink rejects;
  Batch batch;
  for (const WorkUnit& unit : ctx.plan.units) {
    ASSIGN_OR_RETURN(auto source, OpenSource(env, unit.range, ctx.file_schema, ctx.source_options, &rejects));
    while (true) {
      Result<bool> more = source->Next(&batch);
      if (!more.ok()) return more.status().WithContext(RedactConnection(unit.range.path));
      if (!*more) break;
      fitter->Add(batch);
      report.rows += static_cast<int64_t>(batch.num_rows());
    }
  }
  report.rows_rejected = rejects.count();
  ASSIGN_OR_RETURN(Stats stats, fitter->Finish());
  RETURN_IF_ERROR(WriteFileAtomic(env, out_path, stats.ToJson()));
  return report;
}

}  // namespace sluice
