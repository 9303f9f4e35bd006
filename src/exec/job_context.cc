#include "exec/job_context.h"

#include <fmt/format.h>

#include <set>

#include "core/strings.h"

namespace sluice {
namespace {

Status LoadStats(const JobSpec& spec, Env* env, Stats* stats) {
  if (!spec.stats_inline_json.empty()) {
    ASSIGN_OR_RETURN(*stats, Stats::Parse(spec.stats_inline_json, "stats (inline)"));
  } else if (!spec.stats_path.empty()) {
    Result<std::string> text = ReadFileToString(env, spec.stats_path);
    if (!text.ok()) return text.status().WithContext("stats");
    ASSIGN_OR_RETURN(*stats, Stats::Parse(*text, spec.stats_path));
  }
  return Status::OK();
}

// The model must take exactly the features the spec produces, in that order.
Status CheckModelInputs(const ModelInfo& info, const Preprocessor& pre, const std::string& model_path) {
  const std::vector<std::string>& names = pre.output_names();
  if (info.num_features != names.size()) {
    return Status::InvalidArgument(fmt::format(
        "features: the model '{}' takes {} inputs but the features list produces {} ({})", model_path,
        info.num_features, names.size(), JoinNames(names)));
  }
  if (info.feature_names.empty()) return Status::OK();
  const std::set<std::string> known(info.feature_names.begin(), info.feature_names.end());
  for (size_t i = 0; i < names.size(); ++i) {
    if (!known.count(names[i])) {
      return Status::InvalidArgument(fmt::format("features: the model does not know feature '{}' (model features: {})",
                                                 names[i], JoinNames(info.feature_names)));
    }
    if (info.feature_names[i] != names[i]) {
      return Status::InvalidArgument(fmt::format(
          "features: input {} is '{}' but the model expects '{}' there; list features in the model's order", i,
          names[i], info.feature_names[i]));
    }
  }
  return Status::OK();
}

// Features the model takes as text: those whose model input is a string tensor,
// which needs one model input per feature (no one-hot feature shifting positions).
Result<std::set<size_t>> TextFeatures(const ModelInfo& info, size_t num_features) {
  std::set<size_t> text;
  for (size_t i = 0; i < info.inputs.size(); ++i) {
    if (info.inputs[i].type == DataType::kString) text.insert(i);
  }
  if (!text.empty() && (info.inputs.size() != info.num_features || info.inputs.size() != num_features)) {
    return Status::InvalidArgument(fmt::format(
        "features: model input '{}' is a string tensor, which needs one feature per model input "
        "(the model has {} inputs, the features list has {} entries)",
        info.inputs[*text.begin()].name, info.inputs.size(), num_features));
  }
  return text;
}

}  // namespace

Status PrepareInput(const JobSpec& spec, Env* env, JobContext* ctx) {
  ASSIGN_OR_RETURN(ctx->plan, PlanUnits(env, spec.input, spec.partition));
  SourceOptions& so = ctx->source_options;
  so.format = ctx->plan.format;
  so.csv = spec.input.csv;
  so.declared_types = spec.input.schema;
  so.batch_rows = spec.batch_size;
  Result<Schema> schema = InferSchema(env, ctx->plan.files.front().path, so);
  if (!schema.ok()) return schema.status().WithContext("input");
  ctx->file_schema = std::move(*schema);
  for (const auto& [col, type] : spec.input.schema) {
    if (!ctx->file_schema.FieldIndex(col)) {
      return Status::InvalidArgument(fmt::format("input.schema.{}: no such column in '{}'", col,
                                                 ctx->plan.files.front().path));
    }
  }
  return Status::OK();
}

Schema SelectSourceColumns(JobContext* ctx, std::vector<std::string> columns) {
  Schema projected;
  for (const std::string& c : columns) projected.AddField(ctx->file_schema.field(*ctx->file_schema.FieldIndex(c)));
  ctx->source_options.columns = std::move(columns);
  return projected;
}

Result<std::unique_ptr<JobContext>> PrepareJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  if (options.models == nullptr) return Status::Internal("RunOptions.models is not set");
  auto ctx = std::make_unique<JobContext>();
  RETURN_IF_ERROR(PrepareInput(spec, env, ctx.get()));
  RETURN_IF_ERROR(LoadStats(spec, env, &ctx->stats));

  ModelOptions mo;
  mo.path = spec.model.path;
  mo.threads = spec.model.threads;
  // Optional outputs (e.g. XGBoost's "margin") are computed only when model.outputs names them.
  for (const auto& [column, ref] : spec.model.outputs) {
    std::string name = ref.substr(0, ref.find('['));
    if (std::find(mo.requested_outputs.begin(), mo.requested_outputs.end(), name) == mo.requested_outputs.end()) {
      mo.requested_outputs.push_back(std::move(name));
    }
  }
  ASSIGN_OR_RETURN(ctx->model, options.models->Load(env, spec.model.kind, mo));
  ctx->model_kind = ctx->model->info().backend;

  ASSIGN_OR_RETURN(const std::set<size_t> text_features, TextFeatures(ctx->model->info(), spec.features.size()));
  ASSIGN_OR_RETURN(ctx->preprocessor,
                   Preprocessor::Make(spec.features, ctx->stats, ctx->file_schema, text_features));
  RETURN_IF_ERROR(CheckModelInputs(ctx->model->info(), *ctx->preprocessor, spec.model.path));
  ASSIGN_OR_RETURN(ctx->postprocessor,
                   Postprocessor::Make(spec.output, spec.model, ctx->model->info(), ctx->file_schema));

  // Read only the columns some stage uses, in first-use order.
  std::vector<std::string> columns = ctx->preprocessor->input_columns();
  for (const std::string& c : ctx->postprocessor->input_columns()) {
    if (std::find(columns.begin(), columns.end(), c) == columns.end()) columns.push_back(c);
  }
  const Schema projected = SelectSourceColumns(ctx.get(), std::move(columns));
  ASSIGN_OR_RETURN(ctx->preprocessor, Preprocessor::Make(spec.features, ctx->stats, projected, text_features));
  ASSIGN_OR_RETURN(ctx->postprocessor, Postprocessor::Make(spec.output, spec.model, ctx->model->info(), projected));
  return ctx;
}

}  // namespace sluice
