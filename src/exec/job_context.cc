#include "exec/job_context.h"

#include <fmt/format.h>

#include <tbb/info.h>

#include <algorithm>
#include <set>
#include <thread>

#include "core/strings.h"
#include "observe/alerts.h"
#include "sluice/sink.h"
#if SLUICE_WITH_DUCKDB
#include "source/duckdb_util.h"
#endif

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

// A score_psi rule needs the reference of the score column (`column`; empty
// when not known yet, before the model is bound): `ref`, null when the stats
// file has none. Checked at preflight, and again once the column is known.
Status CheckScoreReference(const JobSpec& spec, const Stats& stats, const std::string& column,
                           const ScoreReference* ref) {
  if (ref != nullptr) return Status::OK();
  const std::vector<AlertSpec>& rules = spec.monitoring.alerts;
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].metric != AlertSpec::Metric::kScorePsi) continue;
    const std::string file = spec.stats_path.empty() ? "the stats file" : "'" + spec.stats_path + "'";
    return Status::InvalidArgument(fmt::format(
        "monitoring.alerts[{}] ('{}'): score_psi compares the scores with a reference histogram{} from the stats "
        "file, and {} has {}; run `sluice fit-stats JOB --out STATS` to write one",
        i, rules[i].name, column.empty() ? "" : " of column '" + column + "'", file,
        stats.scores().empty() ? "none" : "only one of '" + stats.scores().front().column + "'"));
  }
  return Status::OK();
}

// The stats file's reference histogram of the score column into
// ctx->score_reference: the column the first score rule names, else the
// file's first one.
Status LoadScoreReference(const JobSpec& spec, JobContext* ctx) {
  const std::vector<AlertSpec>& rules = spec.monitoring.alerts;
  const auto first_score_rule = std::find_if(rules.begin(), rules.end(), WatchesScores);
  const std::string column = first_score_rule == rules.end() ? "" : first_score_rule->column;
  const ScoreReference* ref = column.empty() ? (ctx->stats.scores().empty() ? nullptr : &ctx->stats.scores().front())
                                             : ctx->stats.FindScores(column);
  if (ref != nullptr) ctx->score_reference = *ref;
  return CheckScoreReference(spec, ctx->stats, column, ref);
}

// The score column, and its reference histogram from the stats file.
Status BindScoreColumn(const JobSpec& spec, JobContext* ctx) {
  const bool watched = std::any_of(spec.monitoring.alerts.begin(), spec.monitoring.alerts.end(), WatchesScores);
  Result<ScoreColumn> column = ResolveScoreColumn(spec, ctx->model_info, *ctx->postprocessor);
  if (!column.ok()) {
    if (watched) return column.status();
    return Status::OK();  // nothing watches scores: the report goes without a histogram
  }
  ctx->score_column = *column;
  const ScoreReference* ref = ctx->stats.FindScores(column->name);
  ctx->score_reference.reset();
  if (ref != nullptr) ctx->score_reference = *ref;
  return CheckScoreReference(spec, ctx->stats, column->name, ref);
}

}  // namespace

Result<ScoreColumn> ResolveScoreColumn(const JobSpec& spec, const ModelInfo& info, const Postprocessor& post) {
  const std::vector<Postprocessor::Prediction>& predictions = post.predictions();
  const Postprocessor::Prediction* chosen = nullptr;
  std::string rule_key;
  for (size_t i = 0; i < spec.monitoring.alerts.size() && rule_key.empty(); ++i) {
    const AlertSpec& a = spec.monitoring.alerts[i];
    if (a.column.empty()) continue;
    rule_key = fmt::format("monitoring.alerts[{}].column", i);
    for (const Postprocessor::Prediction& p : predictions) {
      if (p.name == a.column) chosen = &p;
    }
    if (chosen == nullptr) {
      std::vector<std::string> names;
      for (const Postprocessor::Prediction& p : predictions) names.push_back(p.name);
      return Status::InvalidArgument(fmt::format("{}: '{}' is not a prediction column (prediction columns: {})",
                                                 rule_key, a.column, JoinNames(names)));
    }
  }
  if (chosen == nullptr) {
    for (const Postprocessor::Prediction& p : predictions) {
      if (chosen == nullptr && p.output == 0 && p.element == 0) chosen = &p;
    }
  }
  if (chosen == nullptr && !predictions.empty()) chosen = &predictions.front();
  if (chosen == nullptr) return Status::InvalidArgument("model: the model has no outputs to score");
  if (info.outputs[chosen->output].type == DataType::kString) {
    return Status::InvalidArgument(fmt::format("{}: prediction column '{}' holds text, not scores",
                                               rule_key.empty() ? "monitoring.alerts" : rule_key, chosen->name));
  }
  return ScoreColumn{chosen->name, chosen->output, chosen->element};
}

Status PrepareInput(const JobSpec& spec, Env* env, JobContext* ctx) {
#if SLUICE_WITH_DUCKDB
  // Before planning: the planner's database (Parquet input) is the one schema
  // inference and then the first Source take again.
  ctx->duckdb_pool = std::make_shared<DuckDbPool>();
#endif
  ASSIGN_OR_RETURN(ctx->plan, PlanUnits(env, spec.input, spec.partition, ctx->duckdb_pool.get()));
  SourceOptions& so = ctx->source_options;
  so.format = ctx->plan.format;
  so.csv = spec.input.csv;
  so.declared_types = spec.input.schema;
  so.batch_rows = spec.batch_size;
  so.table = spec.input.table;
  so.query = spec.input.query;
  so.duckdb_pool = ctx->duckdb_pool;
  // Databases: the schema of the table or query; files: of the first file.
  const std::string& first = IsDatabase(so.format) ? spec.input.database : ctx->plan.files.front().path;
  ctx->input_name = IsDatabase(so.format)
                        ? RedactConnection(first) + (so.table.empty() ? " query" : " table " + so.table)
                        : first;
  Result<Schema> schema = InferSchema(env, first, so);
  if (!schema.ok()) return schema.status().WithContext("input");
  ctx->file_schema = std::move(*schema);
  for (const auto& [col, type] : spec.input.schema) {
    if (!ctx->file_schema.FieldIndex(col)) {
      return Status::InvalidArgument(fmt::format("input.schema.{}: no such column in '{}'", col, ctx->input_name));
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

std::vector<std::pair<std::string, std::string>> ModelFiles(const ModelSpec& model) {
  std::vector<std::pair<std::string, std::string>> files = {{"model.path", model.path}};
  if (model.route) {
    for (const auto& [value, path] : model.route->models) files.emplace_back("model.route.models." + value, path);
    if (!model.route->default_path.empty()) files.emplace_back("model.route.default", model.route->default_path);
  }
  return files;
}

namespace {

// Units of this run and the thread split: workers x intra-op threads <= cores
// unless the spec asks for more.
Status PlanThreads(const JobSpec& spec, const RunOptions& options, JobContext* ctx) {
  if (options.shard_count < 1 || options.shard_index < 0 || options.shard_index >= options.shard_count) {
    return Status::InvalidArgument(
        fmt::format("--shard {}/{}: expected I/N with 0 <= I < N", options.shard_index, options.shard_count));
  }
  for (size_t i = 0; i < ctx->plan.units.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(options.shard_count)) == options.shard_index) {
      ctx->run_units.push_back(i);
    }
  }
  const int cores = std::max(1, tbb::info::default_concurrency());
  int workers = spec.execution.workers > 0 ? spec.execution.workers : cores;
  workers = std::max(1, std::min<int>(workers, static_cast<int>(ctx->run_units.size())));
  ctx->workers = workers;
  ctx->model_threads = spec.model.threads > 0 ? spec.model.threads : std::max(1, cores / workers);
  return Status::OK();
}

Status CheckColumn(const JobContext& ctx, const std::string& column, const std::string& key) {
  if (ctx.file_schema.FieldIndex(column)) return Status::OK();
  std::vector<std::string> names;
  for (const Field& f : ctx.file_schema.fields()) names.push_back(f.name);
  return Status::InvalidArgument(fmt::format("{}: no input column '{}' in '{}' (columns: {})", key, column,
                                             ctx.input_name, JoinNames(names)));
}

}  // namespace

Result<std::unique_ptr<JobContext>> PrepareJob(const JobSpec& spec, Env* env, const RunOptions& options) {
  if (options.models == nullptr) return Status::Internal("RunOptions.models is not set");
#if !SLUICE_WITH_DUCKDB
  if (spec.output.format == OutputFormat::kParquet) {
    return Status::NotSupported("output.format: parquet is not supported by this build (built without DuckDB; run scripts/bootstrap)");
  }
#endif
  const ModelRegistry* registry = options.models;
  // The model backend's runtime is made beside the planning (which, for Parquet
  // and databases, keeps one core); the load below waits for it if need be.
  std::jthread warm;
  if (!spec.model.lazy) {
    warm = std::jthread([registry, env, &spec] { registry->Warm(env, spec.model.kind, spec.model.path); });
  }
  auto ctx = std::make_unique<JobContext>();
  RETURN_IF_ERROR(PrepareInput(spec, env, ctx.get()));
  RETURN_IF_ERROR(LoadStats(spec, env, &ctx->stats));
  RETURN_IF_ERROR(LoadScoreReference(spec, ctx.get()));
  RETURN_IF_ERROR(PlanThreads(spec, options, ctx.get()));
  // CSV and JSON Lines cannot be read by time or value: such partitions become
  // the first output level instead (Parquet and databases make them units).
  const bool key_is_layout = ctx->plan.format == InputFormat::kCsv || ctx->plan.format == InputFormat::kJsonl;
  const std::optional<PartitionKey> input_key = spec.partition.OutputKey();
  if (input_key) RETURN_IF_ERROR(CheckColumn(*ctx, spec.partition.column, "partition.column"));
  if (!IsDatabase(spec.output.format)) {  // a table has no directory layout
    if (input_key && key_is_layout) ctx->partition_by.push_back(*input_key);
    ctx->partition_by.insert(ctx->partition_by.end(), spec.output.partition_by.begin(), spec.output.partition_by.end());
  }
  if (spec.model.route) RETURN_IF_ERROR(CheckColumn(*ctx, spec.model.route->column, "model.route.by"));

  ModelOptions mo;
  mo.threads = ctx->model_threads;
  mo.batch_timeout_ms = spec.execution.batch_timeout_ms;
  // Optional outputs (e.g. XGBoost's "margin") are computed only when model.outputs names them.
  for (const auto& [column, ref] : spec.model.outputs) {
    std::string name = ref.substr(0, ref.find('['));
    if (std::find(mo.requested_outputs.begin(), mo.requested_outputs.end(), name) == mo.requested_outputs.end()) {
      mo.requested_outputs.push_back(std::move(name));
    }
  }
  const std::string kind = spec.model.kind;
  const size_t capacity = spec.model.route ? static_cast<size_t>(spec.model.route->cache_size) : 1;
  ctx->models = std::make_unique<ModelCache>(
      [env, registry, kind, mo](const std::string& path) {
        ModelOptions options = mo;
        options.path = path;
        return registry->Load(env, kind, options);
      },
      capacity);

  if (!spec.model.lazy) {
    RETURN_IF_ERROR(BindModels(spec, ctx.get()));
  } else {
    for (const auto& [key, path] : ModelFiles(spec.model)) {
      Result<std::string> backend = registry->Detect(env, path);
      if (!backend.ok()) return backend.status().WithContext(key);
    }
  }
  return ctx;
}

Status BindModels(const JobSpec& spec, JobContext* ctx) {
  if (ctx->bound) return Status::OK();
  Result<std::shared_ptr<Model>> signature = ctx->models->Get(spec.model.path);
  if (!signature.ok()) return signature.status().WithContext("model.path");
  ctx->model_info = (*signature)->info();
  ctx->model_kind = ctx->model_info.backend;
  if (spec.model.route) {
    ctx->router = std::make_unique<ModelRouter>(*spec.model.route, ctx->model_info, ctx->models.get());
    if (!spec.model.lazy) {
      // Fail fast: every routed model loads and has the signature.
      for (const auto& [key, path] : ModelFiles(spec.model)) {
        Result<std::shared_ptr<Model>> m = ctx->models->Get(path);
        if (!m.ok()) return m.status().WithContext(key);
        std::string why;
        if (!SameSignature(ctx->model_info, (*m)->info(), &why)) {
          return Status::InvalidArgument(fmt::format("{}: model '{}' cannot stand in for '{}': {}", key, path,
                                                     spec.model.path, why));
        }
      }
    }
  } else {
    ctx->model = *signature;
  }

  ASSIGN_OR_RETURN(const std::set<size_t> text_features, TextFeatures(ctx->model_info, spec.features.size()));
  ASSIGN_OR_RETURN(ctx->preprocessor,
                   Preprocessor::Make(spec.features, ctx->stats, ctx->file_schema, text_features));
  RETURN_IF_ERROR(CheckModelInputs(ctx->model_info, *ctx->preprocessor, spec.model.path));
  ASSIGN_OR_RETURN(ctx->postprocessor,
                   Postprocessor::Make(spec.output, spec.model, ctx->model_info, ctx->file_schema));

  // Partition columns the output does not carry are added for the writer, which leaves them out of the files.
  OutputSpec output = spec.output;
  for (const PartitionKey& key : ctx->partition_by) {
    if (ctx->postprocessor->output_schema().FieldIndex(key.column)) continue;
    if (std::find(ctx->layout_only_columns.begin(), ctx->layout_only_columns.end(), key.column) !=
        ctx->layout_only_columns.end()) {
      continue;
    }
    if (output.columns.empty()) {
      for (const Field& f : ctx->postprocessor->output_schema().fields()) output.columns.push_back(f.name);
    }
    output.columns.push_back(key.column);
    ctx->layout_only_columns.push_back(key.column);
  }
  if (!ctx->layout_only_columns.empty()) {
    Result<std::unique_ptr<Postprocessor>> post =
        Postprocessor::Make(output, spec.model, ctx->model_info, ctx->file_schema);
    if (!post.ok()) return post.status().WithContext("output.partition_by");
    ctx->postprocessor = std::move(*post);
  }

  // Read only the columns some stage uses, in first-use order.
  std::vector<std::string> columns = ctx->preprocessor->input_columns();
  auto add = [&columns](const std::string& c) {
    if (std::find(columns.begin(), columns.end(), c) == columns.end()) columns.push_back(c);
  };
  for (const std::string& c : ctx->postprocessor->input_columns()) add(c);
  if (spec.model.route) add(spec.model.route->column);
  for (const std::string& k : spec.output.keys) add(k);
  const Schema projected = SelectSourceColumns(ctx, std::move(columns));
  if (spec.model.route) ctx->route_column = *projected.FieldIndex(spec.model.route->column);
  ctx->source_options.sample = spec.partition.sample;
  ctx->source_options.sample_keys = spec.output.keys;
  ASSIGN_OR_RETURN(ctx->preprocessor, Preprocessor::Make(spec.features, ctx->stats, projected, text_features));
  ASSIGN_OR_RETURN(ctx->postprocessor, Postprocessor::Make(output, spec.model, ctx->model_info, projected));
  if (IsDatabase(spec.output.format)) RETURN_IF_ERROR(CheckTableSink(spec.output, ctx->postprocessor->output_schema()));
  RETURN_IF_ERROR(BindScoreColumn(spec, ctx));
  ctx->bound = true;
  return Status::OK();
}

}  // namespace sluice
