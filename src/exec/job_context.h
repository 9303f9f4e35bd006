// Everything a run needs, resolved and checked once at preflight: the units,
// the input schema, statistics, the loaded model and the bound pre/postprocessors.
// Building it writes nothing. Thread-safety: immutable after Prepare, except the
// model, whose Predict obeys its info().concurrent_predict.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "plan/planner.h"
#include "postprocess/postprocessor.h"
#include "preprocess/preprocessor.h"
#include "preprocess/stats.h"
#include "sluice/job.h"

namespace sluice {

struct JobContext {
  Plan plan;
  Schema file_schema;  // full schema of the input files
  SourceOptions source_options;
  Stats stats;
  std::unique_ptr<Model> model;
  std::string model_kind;
  std::unique_ptr<Preprocessor> preprocessor;
  std::unique_ptr<Postprocessor> postprocessor;
};

// Preflight. Errors name the key path or file; nothing is written.
Result<std::unique_ptr<JobContext>> PrepareJob(const JobSpec& spec, Env* env, const RunOptions& options);

// Units, schema and source options only (no model): what fit-stats needs.
Status PrepareInput(const JobSpec& spec, Env* env, JobContext* ctx);

// Makes the source read only `columns` (in that order) and returns the schema
// of its batches, to which the stages bind. Precondition: every column is in
// ctx->file_schema.
Schema SelectSourceColumns(JobContext* ctx, std::vector<std::string> columns);

}  // namespace sluice
