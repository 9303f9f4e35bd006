// RunJob: the one place that knows every stage. For each unit, in plan order:
//   source.Next -> preprocess -> model.Predict -> postprocess -> part.Write
// then commit the part, the unit's rejects and its marker. One unit at a time on
// the calling thread in this version.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/sha256.h"
#include "exec/job_context.h"
#include "exec/output_dir.h"
#include "sink/rejects_writer.h"
#include "sluice/job.h"
#include "sluice/sink.h"

namespace sluice {
namespace {

bool RejectLimitExceeded(const RejectLimit& limit, int64_t rejected, int64_t rows_in) {
  if (limit.count) return rejected > *limit.count;
  if (limit.fraction) return rows_in > 0 && static_cast<double>(rejected) > *limit.fraction * rows_in;
  return false;
}

std::string DescribeLimit(const RejectLimit& limit) {
  if (limit.count) return fmt::format("errors.max_rejected is {}", *limit.count);
  return fmt::format("errors.max_rejected is {}%", *limit.fraction * 100);
}

struct UnitOutcome {
  UnitMarker marker;
  bool stopped_by_reject_limit = false;
};

class UnitRunner {
 public:
  UnitRunner(const JobSpec& spec, Env* env, JobContext* ctx, JobReport* report)
      : spec_(spec), env_(env), ctx_(ctx), report_(report) {}

  // Processes one unit to a committed part, or returns why not. Rejects count
  // toward the job-wide limit as they happen.
  Result<UnitOutcome> Run(const WorkUnit& unit) {
    const std::string& out = spec_.output.path;
    const std::string& file = unit.range.path;
    ASSIGN_OR_RETURN(auto rejects, RejectsWriter::Open(env_, RejectsPath(out, unit.index)));
    ASSIGN_OR_RETURN(auto source, OpenSource(env_, unit.range, ctx_->file_schema, ctx_->source_options, rejects.get()));
    PartOptions part_options;
    part_options.format = spec_.output.format;
    part_options.dir = out;
    part_options.part_index = unit.index;
    part_options.schema = ctx_->postprocessor->output_schema();
    ASSIGN_OR_RETURN(auto part, OpenPartWriter(env_, part_options));
    UnitOutcome outcome;
    UnitMarker& m = outcome.marker;
    m.unit_id = unit.id;
    m.input = file;
    const size_t width = ctx_->preprocessor->num_outputs();
    int64_t rows_read = 0;
    int64_t featurize_rejects = 0;
    while (true) {
      Result<bool> more = source->Next(&in_);
      if (!more.ok()) return more.status().WithContext(file);
      if (!*more) break;
      const size_t n = in_.num_rows();
      rows_read += static_cast<int64_t>(n);
      const bool with_text = ctx_->preprocessor->has_text_features();
      const size_t n_ok =
          ctx_->preprocessor->Apply(in_, file, &matrix_, &row_ok_, rejects.get(), with_text ? &text_ : nullptr);
      featurize_rejects += static_cast<int64_t>(n - n_ok);
      if (n_ok > 0) {
        Status st = Status::OK();
        if (with_text) {
          // n_ok > 0: a text feature's column has n_ok values, the others none.
          text_ptrs_.assign(text_.size(), nullptr);
          for (size_t i = 0; i < text_.size(); ++i) {
            if (text_[i].size() > 0) text_ptrs_[i] = &text_[i];
          }
          st = ctx_->model->PredictWithText(matrix_.data(), n_ok, width, text_ptrs_, &outputs_);
        } else {
          st = ctx_->model->Predict(matrix_.data(), n_ok, width, &outputs_);
        }
        if (!st.ok()) {
          return st.WithContext(fmt::format("{}: rows starting at line {}", file,
                                            in_.row_lines.empty() ? 0 : in_.row_lines.front()));
        }
      }
      RETURN_IF_ERROR(ctx_->postprocessor->Apply(in_, row_ok_, outputs_, &out_, &m.rows_filtered));
      RETURN_IF_ERROR(part->Write(out_));
      if (RejectLimitCountExceeded(rejects->count())) {
        part->Abort();
        outcome.stopped_by_reject_limit = true;
        m.rows_rejected = rejects->count();
        RETURN_IF_ERROR(rejects->Commit());
        return outcome;
      }
    }
    RETURN_IF_ERROR(part->Commit());
    m.rows_rejected = rejects->count();
    m.rows_in = rows_read + (m.rows_rejected - featurize_rejects);  // rows the reader rejected were read too
    m.rows_out = part->rows_written();
    m.files = part->files();
    if (m.rows_rejected > 0) {
      RETURN_IF_ERROR(rejects->Commit());
      m.rejects = "_sluice/rejects/" + fmt::format("part-{:05d}.jsonl", unit.index);
    }
    if (m.rows_in != m.rows_out + m.rows_rejected + m.rows_filtered) {
      return Status::Internal(fmt::format("row accounting broken for unit {}: in {} != out {} + rejected {} + filtered {}",
                                          unit.id, m.rows_in, m.rows_out, m.rows_rejected, m.rows_filtered));
    }
    for (const auto& [reason, count] : rejects->counts_by_reason()) report_->rejects_by_reason[reason] += count;
    RETURN_IF_ERROR(WriteUnitMarker(env_, out, m));
    return outcome;
  }

 private:
  // Only a count limit can be decided mid-run; a percentage needs all rows.
  bool RejectLimitCountExceeded(int64_t unit_rejects) const {
    const RejectLimit& limit = spec_.max_rejected;
    return limit.count && report_->rows_rejected + unit_rejects > *limit.count;
  }

  const JobSpec& spec_;
  Env* env_;
  JobContext* ctx_;
  JobReport* report_;
  // Reused across batches and units.
  Batch in_;
  Batch out_;
  std::vector<float> matrix_;
  std::vector<Column> text_;  // text features' columns, when the model takes some
  std::vector<const Column*> text_ptrs_;
  std::vector<uint8_t> row_ok_;
  std::vector<OutputTensor> outputs_;
};

Result<JobFingerprint> Fingerprint(const JobSpec& spec, Env* env, const JobContext& ctx) {
  JobFingerprint fp;
  fp.spec_json = spec.ToCanonicalJson();
  fp.spec_sha256 = Sha256Hex(fp.spec_json);
  Result<std::string> model_sha = Sha256File(env, spec.model.path);
  if (!model_sha.ok()) return model_sha.status().WithContext("model.path");
  fp.model_sha256 = *model_sha;
  for (const InputFile& f : ctx.plan.files) fp.inputs.push_back({f.path, f.size, f.mtime_ns});
  return fp;
}

}  // namespace

Status ValidateJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  return PrepareJob(spec, env, options).status();
}

Result<JobReport> RunJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  const uint64_t start_us = env->NowMicros();
  ASSIGN_OR_RETURN(std::unique_ptr<JobContext> ctx, PrepareJob(spec, env, options));
  ASSIGN_OR_RETURN(JobFingerprint fp, Fingerprint(spec, env, *ctx));
  RETURN_IF_ERROR(PrepareOutputDir(env, spec.output.path, fp, options.restart));

  JobReport report;
  report.units_total = static_cast<int64_t>(ctx->plan.units.size());
  spdlog::info("job: {} unit(s) from '{}', model {} ({}), output '{}'", ctx->plan.units.size(), spec.input.path,
               spec.model.path, ctx->model_kind, spec.output.path);
  UnitRunner runner(spec, env, ctx.get(), &report);
  std::vector<UnitMarker> markers;
  for (const WorkUnit& unit : ctx->plan.units) {
    Result<UnitOutcome> outcome = runner.Run(unit);
    if (!outcome.ok()) {
      ++report.units_failed;
      spdlog::error("unit {}: {}", unit.id, outcome.status().ToString());
      if (report.error.empty()) report.error = fmt::format("unit {}: {}", unit.id, outcome.status().message());
      continue;
    }
    const UnitMarker& m = outcome->marker;
    if (outcome->stopped_by_reject_limit) {
      // The unit is not committed; its rows count nowhere, but its rejects are kept for inspection.
      report.exit_code = ExitCode::kRejectLimit;
      report.error = fmt::format("unit {}: {} rows rejected, over the limit ({}); stopped; see {}", unit.id,
                                 report.rows_rejected + m.rows_rejected, DescribeLimit(spec.max_rejected),
                                 RejectsDir(spec.output.path));
      break;
    }
    report.rows_rejected += m.rows_rejected;
    report.rows_in += m.rows_in;
    report.rows_out += m.rows_out;
    report.rows_filtered += m.rows_filtered;
    ++report.units_done;
    for (const PartFile& f : m.files) report.parts.push_back(f.path);
    spdlog::info("unit {}: committed {} file(s) ({} rows in, {} out, {} rejected, {} filtered)", unit.id, m.files.size(), m.rows_in,
                 m.rows_out, m.rows_rejected, m.rows_filtered);
    markers.push_back(m);
  }
  report.seconds = static_cast<double>(env->NowMicros() - start_us) / 1e6;

  if (report.exit_code == ExitCode::kSuccess) {
    if (report.units_failed > 0) {
      report.exit_code = ExitCode::kUnitsFailed;
    } else if (RejectLimitExceeded(spec.max_rejected, report.rows_rejected, report.rows_in)) {
      report.exit_code = ExitCode::kRejectLimit;
      report.error = fmt::format("{} of {} rows rejected, over the limit ({}); see {}", report.rows_rejected,
                                 report.rows_in, DescribeLimit(spec.max_rejected), RejectsDir(spec.output.path));
    } else {
      RETURN_IF_ERROR(WriteSuccessManifest(env, spec.output.path, markers, report));
    }
  }
  return report;
}

}  // namespace sluice
