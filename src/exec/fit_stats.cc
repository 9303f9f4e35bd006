// `sluice fit-stats`: one streaming pass over every input unit into a StatsFitter.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <random>

#include "core/strings.h"
#include "exec/job_context.h"
#include "observe/alerts.h"
#include "preprocess/stats_fitter.h"
#include "sluice/job.h"

namespace sluice {
namespace {

// Counts rows that are skipped (`what`): the reader could not parse them, or
// (when scoring) they could not be featurized.
class CountingRejectSink final : public RejectSink {
 public:
  explicit CountingRejectSink(const char* what) : what_(what) {}
  void Add(Reject r) override {
    if (count_++ == 0) spdlog::warn("fit-stats: {}, first: {}:{}: {}", what_, r.file, r.line, r.message);
  }
  int64_t count() const { return count_; }

 private:
  const char* what_;
  int64_t count_ = 0;
};

// The reference histogram is fitted on a uniform sample of at most this many
// scores (all of them below), so memory stays bounded on any input.
constexpr size_t kMaxScoreSample = 1000000;

// Scores every input row with the job's model, its features prepared with
// `stats`, and fits the score column's reference histogram.
Result<ScoreReference> FitScores(const JobSpec& spec, Env* env, const Stats& stats, const ModelRegistry& models,
                                 int64_t* scored) {
  JobSpec scoring = spec;
  scoring.stats_path.clear();
  scoring.stats_inline_json = stats.ToJson();
  scoring.model.lazy = false;
  // There is no reference yet: score_psi rules name their column as score_mean ones do.
  for (AlertSpec& a : scoring.monitoring.alerts) {
    if (a.metric == AlertSpec::Metric::kScorePsi) a.metric = AlertSpec::Metric::kScoreMean;
  }
  RunOptions options;
  options.models = &models;
  ASSIGN_OR_RETURN(std::unique_ptr<JobContext> ctx, PrepareJob(scoring, env, options));
  if (!ctx->score_column) {
    return Status::InvalidArgument(
        fmt::format("fit-stats --scores: the model '{}' has no numeric prediction column", spec.model.path));
  }
  const ScoreColumn& column = *ctx->score_column;
  const size_t width = ctx->preprocessor->num_outputs();
  const bool with_text = ctx->preprocessor->has_text_features();

  CountingRejectSink rejects("scoring skips rows it cannot read or featurize");
  std::mt19937_64 rng(20240601);  // fixed: the same input gives the same file
  std::vector<double> sample;
  int64_t seen = 0;
  auto keep = [&](double v) {
    ++seen;
    if (sample.size() < kMaxScoreSample) {
      sample.push_back(v);
    } else if (const uint64_t slot = rng() % static_cast<uint64_t>(seen); slot < kMaxScoreSample) {
      sample[slot] = v;
    }
  };
  Batch batch;
  std::vector<float> matrix;
  std::vector<uint8_t> row_ok;
  std::vector<Column> text;
  std::vector<const Column*> text_ptrs;
  std::vector<OutputTensor> outputs;
  for (const WorkUnit& unit : ctx->plan.units) {
    const std::string file = RedactConnection(unit.range.path);
    ASSIGN_OR_RETURN(auto source, OpenSource(env, unit.range, ctx->file_schema, ctx->source_options, &rejects));
    while (true) {
      Result<bool> more = source->Next(&batch);
      if (!more.ok()) return more.status().WithContext(file);
      if (!*more) break;
      const size_t n_ok =
          ctx->preprocessor->Apply(batch, file, &matrix, &row_ok, &rejects, with_text ? &text : nullptr);
      if (n_ok == 0) continue;
      text_ptrs.clear();
      for (const Column& c : text) text_ptrs.push_back(c.size() > 0 ? &c : nullptr);
      Status st;
      if (ctx->router) {
        st = ctx->router->Predict(batch.columns[*ctx->route_column], row_ok, matrix.data(), width, text_ptrs, &outputs,
                                  [](size_t) {});
      } else if (with_text) {
        st = ctx->model->PredictWithText(matrix.data(), n_ok, width, text_ptrs, &outputs);
      } else {
        st = ctx->model->Predict(matrix.data(), n_ok, width, &outputs);
      }
      if (!st.ok()) return st.WithContext("fit-stats: scoring " + file);
      const OutputTensor& out = outputs[column.output];
      const Column& values = out.values;
      const size_t rows = values.size() / out.width;
      for (size_t row = 0; row < rows; ++row) {
        const size_t at = row * out.width + column.element;
        switch (values.type()) {
          case DataType::kFloat32: keep(values.float32s()[at]); break;
          case DataType::kFloat64: keep(values.float64s()[at]); break;
          case DataType::kInt64: keep(static_cast<double>(values.int64s()[at])); break;
          default: break;
        }
      }
    }
  }
  // NaN scores have no bin.
  sample.erase(std::remove_if(sample.begin(), sample.end(), [](double v) { return std::isnan(v); }), sample.end());
  *scored = seen;
  std::optional<ScoreReference> ref = FitScoreReference(column.name, std::move(sample));
  if (!ref) {
    return Status::InvalidArgument(fmt::format("fit-stats --scores: no row of '{}' could be scored", ctx->input_name));
  }
  return *ref;
}

}  // namespace

Result<FitStatsReport> FitStats(const JobSpec& spec, Env* env, const std::string& out_path,
                                const FitStatsOptions& options) {
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
  CountingRejectSink rejects("skipping unreadable rows");
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
  const std::vector<AlertSpec>& rules = spec.monitoring.alerts;
  if (options.scores || std::any_of(rules.begin(), rules.end(), WatchesScores)) {
    if (options.models == nullptr) return Status::Internal("FitStatsOptions.models is not set");
    ASSIGN_OR_RETURN(ScoreReference ref, FitScores(spec, env, stats, *options.models, &report.scores));
    report.score_column = ref.column;
    stats.SetScores(std::move(ref));
  }
  RETURN_IF_ERROR(WriteFileAtomic(env, out_path, stats.ToJson()));
  return report;
}

}  // namespace sluice
