// Everything a run needs, resolved and checked once at preflight: the plan, the
// input schema, statistics, the thread split, and (bound by BindModels) the
// models and the pre/postprocessors bound to them. Building it writes nothing.
//
// model.load: preload binds at preflight, so a bad model fails the job before
// any output (exit 2); lazy checks only that the model files exist and binds on
// first use (the first unit), so model problems then fail units instead.
//
// Thread-safety: immutable once bound; the models are safe for concurrent
// Predict (wrapped with ThreadSafeModel), the cache and router are thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/model_cache.h"
#include "plan/planner.h"
#include "postprocess/postprocessor.h"
#include "preprocess/preprocessor.h"
#include "preprocess/stats.h"
#include "sluice/job.h"

namespace sluice {

// The score column (DESIGN.md §6): what score_mean / score_psi alerts, the
// report's prediction histogram and fit-stats' reference histogram watch. It
// is the column the first score rule names (monitoring.alerts[].column), else
// the prediction column holding the model's first output's first element,
// else the first prediction column. kInvalidArgument naming the rule when its
// column is not a prediction column, or when the column is not numeric.
struct ScoreColumn {
  std::string name;
  size_t output = 0;   // index into ModelInfo::outputs
  size_t element = 0;  // within the output's row
};

struct JobContext {
  Plan plan;
  std::vector<size_t> run_units;  // indices into plan.units this run processes (its --shard)
  Schema file_schema;             // full schema of the input files (or table/query)
  std::string input_name;         // in messages: the first file, or the database (redacted) and table/query
  SourceOptions source_options;   // columns are set by BindModels
  // The DuckDB databases the Parquet planner, sources and writers reuse (also
  // in source_options); null in builds without DuckDB.
  std::shared_ptr<DuckDbPool> duckdb_pool;
  Stats stats;
  // The reference histogram of the score column from the stats file ("scores"):
  // the column a score_mean / score_psi rule names, else the file's first one.
  // Unset when the file has none (a score_psi rule then fails preflight).
  // BindModels narrows it to score_column's reference.
  std::optional<ScoreReference> score_reference;
  int workers = 1;        // units in parallel
  int model_threads = 1;  // intra-op threads per worker
  // The output layout: partition.OutputKey() (file inputs), then output.partition_by.
  std::vector<PartitionKey> partition_by;

  // Set by BindModels.
  bool bound = false;
  std::unique_ptr<ModelCache> models;   // every model of the job, by path
  std::shared_ptr<Model> model;         // without model.route: the model, kept loaded
  std::unique_ptr<ModelRouter> router;  // with model.route
  ModelInfo model_info;                 // the signature every model of the job has
  std::string model_kind;
  std::unique_ptr<Preprocessor> preprocessor;
  std::unique_ptr<Postprocessor> postprocessor;
  std::optional<size_t> route_column;  // model.route.by in the source's batches
  // The score column (ResolveScoreColumn); unset when the model has no numeric
  // prediction column and no alert rule watches scores.
  std::optional<ScoreColumn> score_column;
  // Columns the postprocessor adds only so the writer can lay out partitions;
  // they are not written into the files.
  std::vector<std::string> layout_only_columns;
};

// Preflight. Errors name the key path or file; nothing is written.
Result<std::unique_ptr<JobContext>> PrepareJob(const JobSpec& spec, Env* env, const RunOptions& options);

// Loads the signature model (and, with model.route and load: preload, checks
// every routed model) and binds the stages to it. Idempotent.
// Precondition: ctx comes from PrepareJob (its model cache is set).
Status BindModels(const JobSpec& spec, JobContext* ctx);

// The job's score column, as ScoreColumn above says.
Result<ScoreColumn> ResolveScoreColumn(const JobSpec& spec, const ModelInfo& info, const Postprocessor& post);

// Every model file of the job as (config key, path): model.path, then
// model.route.models.<value> and model.route.default.
std::vector<std::pair<std::string, std::string>> ModelFiles(const ModelSpec& model);

// Plan, schema and source options only (no model): what fit-stats and plan need.
Status PrepareInput(const JobSpec& spec, Env* env, JobContext* ctx);

// Makes the source read only `columns` (in that order) and returns the schema
// of its batches, to which the stages bind. Precondition: every column is in
// ctx->file_schema.
Schema SelectSourceColumns(JobContext* ctx, std::vector<std::string> columns);

}  // namespace sluice
