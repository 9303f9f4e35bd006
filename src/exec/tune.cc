// TuneJob (sluice/tune.h): plans a sample of the job's units, then runs them
// in a JobSession per configuration and repeat, each into its own scratch
// output directory. The models are loaded once per thread count: the sessions
// get a registry whose backends hand out one shared instance per file.
#include "sluice/tune.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <tbb/info.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>

#include "observe/resources.h"
#include "sluice/session.h"

namespace sluice {
namespace {

// A model loaded once and used by several sessions one after the other.
class SharedModel final : public Model {
 public:
  explicit SharedModel(std::shared_ptr<Model> model) : model_(std::move(model)) {}
  const ModelInfo& info() const override { return model_->info(); }
  Status Predict(const float* features, size_t rows, size_t cols, std::vector<OutputTensor>* outputs) override {
    return model_->Predict(features, rows, cols, outputs);
  }
  Status PredictWithText(const float* features, size_t rows, size_t cols, const std::vector<const Column*>& text,
                         std::vector<OutputTensor>* outputs) override {
    return model_->PredictWithText(features, rows, cols, text, outputs);
  }

 private:
  std::shared_ptr<Model> model_;
};

// Loaded models by backend, path and load options. Thread-safe.
class ModelKeeper {
 public:
  ModelKeeper(const ModelRegistry* models, Env* env) : models_(models), env_(env) {}

  // A registry with the same backends, each loading through the keeper.
  // Borrows the keeper, which must outlive it.
  Result<ModelRegistry> Registry() {
    ModelRegistry registry;
    for (const std::string& name : models_->names()) {
      RETURN_IF_ERROR(registry.Register(
          name,
          [this, name](std::string_view path, std::string_view) {
            Result<std::string> kind = models_->Detect(env_, std::string(path));
            return kind.ok() && *kind == name;
          },
          [this, name](Env* env, const ModelOptions& options) { return Load(env, name, options); }));
    }
    return registry;
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    loaded_.clear();
  }

 private:
  Result<std::unique_ptr<Model>> Load(Env* env, const std::string& kind, const ModelOptions& options) {
    std::string key = fmt::format("{}\n{}\n{}\n{}", kind, options.path, options.threads, options.batch_timeout_ms);
    for (const std::string& out : options.requested_outputs) key += "\n" + out;
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<Model>& model = loaded_[key];
    if (!model) {
      ASSIGN_OR_RETURN(std::unique_ptr<Model> loaded, models_->Load(env, kind, options));
      model = std::move(loaded);
    }
    return std::unique_ptr<Model>(new SharedModel(model));
  }

  const ModelRegistry* models_;
  Env* env_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Model>> loaded_;  // guarded by mu_
};

struct Sample {
  std::vector<std::string> unit_ids;
  int64_t rows = 0;  // estimated (exact for counted units)
  std::string description;
};

// Plans the units of the sample into spec->partition (see tune.h).
Result<Sample> PlanSample(JobSpec* spec, Env* env, int64_t sample_rows, size_t units_wanted) {
  RunOptions plan_options;
  ASSIGN_OR_RETURN(PlanSummary plan, PlanJob(*spec, env, plan_options));
  uint64_t bytes = 0;
  int64_t rows = 0;
  for (const PlannedUnit& u : plan.units) {
    bytes += u.est_bytes;
    rows += u.est_rows;
  }
  std::string how = "the job's units";
  if (spec->partition.by == PartitionBy::kSize && rows > 0 && bytes > 0) {
    const double bytes_per_row = static_cast<double>(bytes) / static_cast<double>(rows);
    const double unit_rows = static_cast<double>(sample_rows) / static_cast<double>(units_wanted);
    spec->partition.target_bytes = std::max<uint64_t>(static_cast<uint64_t>(unit_rows * bytes_per_row), 1);
    ASSIGN_OR_RETURN(plan, PlanJob(*spec, env, plan_options));
    how = fmt::format("units of about {} rows", static_cast<int64_t>(unit_rows));
  }
  Sample sample;
  for (const PlannedUnit& u : plan.units) {
    if (sample.rows >= sample_rows && sample.unit_ids.size() >= units_wanted) break;
    sample.unit_ids.push_back(u.id);
    sample.rows += u.est_rows;
  }
  if (sample.unit_ids.empty()) return Status::InvalidArgument("the job's input has no rows to sample");
  sample.description = fmt::format("the first {} of {} unit(s), {}", sample.unit_ids.size(), plan.units.size(), how);
  return sample;
}

// The splits of `cores` threads: workers x threads == cores, most workers first.
std::vector<std::pair<int, int>> CoreSplits(int cores) {
  std::vector<std::pair<int, int>> splits;
  for (int workers = cores; workers >= 1; --workers) {
    if (cores % workers == 0) splits.emplace_back(workers, cores / workers);
  }
  return splits;
}

// The spec of the runs: output into `run_dir` (a database output: a SQLite
// file there; PostgreSQL is measured as CSV), no serving, no alerts, no stop
// on rejects, the model loaded before the units.
void PrepareTuneSpec(JobSpec* spec, std::string* note) {
  if (spec->output.format == OutputFormat::kPostgres) {
    spec->output.format = OutputFormat::kCsv;
    spec->output.database.clear();
    spec->output.table.clear();
    *note = "; output written as CSV (PostgreSQL output is not measured)";
  }
  spec->monitoring.metrics_addr.clear();
  spec->monitoring.alerts.clear();
  spec->monitoring.progress = ProgressMode::kOff;
  spec->max_rejected.count = std::numeric_limits<int64_t>::max();
  spec->max_rejected.fraction.reset();
  spec->model.lazy = false;
  spec->batch_size_auto = false;
}

void SetRunDir(JobSpec* spec, const std::string& run_dir) {
  spec->output.path = run_dir;
  if (spec->output.format == OutputFormat::kSqlite) spec->output.database = JoinPath(run_dir, "tune.db");
}

}  // namespace

Result<TuneReport> TuneJob(const JobSpec& job, Env* env, const TuneOptions& options) {
  if (options.models == nullptr) return Status::InvalidArgument("TuneJob: options.models is required");
  if (options.work_dir.empty()) return Status::InvalidArgument("TuneJob: options.work_dir is required");
  if (options.sample_rows < 1) return Status::InvalidArgument("--sample: must be at least 1 row");
  if (options.repeats < 1) return Status::InvalidArgument("--repeats: must be at least 1");
  if (env->FileExists(options.work_dir)) {
    return Status::AlreadyExists("tune scratch directory '" + options.work_dir + "' exists already");
  }
  TuneReport report;
  report.cores = std::max(1, tbb::info::default_concurrency());
  const std::vector<std::pair<int, int>> splits = options.splits.empty() ? CoreSplits(report.cores) : options.splits;
  std::vector<size_t> sizes = options.batch_sizes;
  if (sizes.empty()) sizes.assign(std::begin(kAutoBatchSizes), std::end(kAutoBatchSizes));
  std::sort(sizes.begin(), sizes.end());
  size_t most_workers = 1;
  for (const auto& [workers, threads] : splits) most_workers = std::max(most_workers, static_cast<size_t>(workers));

  JobSpec base = job;
  std::string note;
  PrepareTuneSpec(&base, &note);
  ASSIGN_OR_RETURN(const Sample sample, PlanSample(&base, env, options.sample_rows, most_workers));
  report.sample_units = sample.unit_ids.size();
  report.sample = sample.description + note;

  ModelKeeper keeper(options.models, env);
  ASSIGN_OR_RETURN(ModelRegistry registry, keeper.Registry());
  RunOptions run_options;
  run_options.models = &registry;
  RETURN_IF_ERROR(env->CreateDirs(options.work_dir));
  int run_index = 0;
  // One configuration's runs; the best (most rows per second) is kept in *trial.
  auto measure = [&](TuneTrial* trial) -> Status {
    for (int repeat = 0; repeat < options.repeats; ++repeat) {
      JobSpec spec = base;
      spec.batch_size = trial->batch_size;
      spec.execution.workers = trial->workers;
      spec.model.threads = trial->model_threads;
      const std::string run_dir = JoinPath(options.work_dir, fmt::format("run-{}", run_index++));
      SetRunDir(&spec, run_dir);
      report.peak_rss_per_run = ResetPeakRss();
      Result<std::unique_ptr<JobSession>> session = JobSession::Open(spec, env, run_options);
      if (!session.ok()) {
        // A split whose workers the memory limit cannot hold is skipped; anything else is the job's error.
        if (session.status().code() != StatusCode::kInvalidArgument ||
            session.status().message().find("execution.memory_limit") == std::string::npos) {
          return session.status();
        }
        trial->error = session.status().message();
        return RemoveTree(env, run_dir);
      }
      Result<JobReport> run = (*session)->RunUnits(sample.unit_ids);
      session->reset();
      RETURN_IF_ERROR(RemoveTree(env, run_dir));
      if (!run.ok()) return run.status();
      if (run->exit_code != ExitCode::kSuccess) return Status::Internal("the sample run failed: " + run->error);
      const double rate = run->seconds > 0 ? static_cast<double>(run->rows_in) / run->seconds : 0;
      if (rate <= trial->rows_per_sec) continue;
      trial->rows_per_sec = rate;
      trial->rows = run->rows_in;
      trial->seconds = run->seconds;
      trial->peak_rss_bytes = run->peak_rss_bytes;
      trial->read_seconds = run->read_seconds;
      trial->predict_seconds = run->predict_seconds;
      trial->write_seconds = run->write_seconds;
      report.sample_rows = run->rows_in;
    }
    return Status::OK();
  };

  Status status;
  for (const auto& [workers, threads] : splits) {
    keeper.Clear();  // the last split's models (other thread counts) go
    for (size_t size : sizes) {
      TuneTrial trial;
      trial.batch_size = size;
      trial.workers = workers;
      trial.model_threads = threads;
      status = measure(&trial);
      if (!status.ok()) break;
      spdlog::debug("tune: batch {}, {} x {}: {:.0f} rows/s", size, workers, threads, trial.rows_per_sec);
      report.trials.push_back(trial);
      if (options.on_trial) options.on_trial(trial);
    }
    if (!status.ok()) break;
  }
  keeper.Clear();
  if (Status removed = RemoveTree(env, options.work_dir); !removed.ok()) {
    spdlog::warn("tune: cannot remove the scratch directory: {}", removed.ToString());
  }
  RETURN_IF_ERROR(status);

  bool any = false;
  for (size_t i = 0; i < report.trials.size(); ++i) {
    const TuneTrial& t = report.trials[i];
    if (!t.error.empty()) continue;
    if (!any || t.rows_per_sec > report.trials[report.best].rows_per_sec) report.best = i;
    any = true;
  }
  if (!any) {
    return Status::InvalidArgument("no configuration fits execution.memory_limit: " + report.trials.front().error);
  }
  return report;
}

std::string TunedSettingsYaml(const TuneReport& report, const std::string& job_path) {
  const TuneTrial& t = report.trials[report.best];
  return fmt::format(
      "# sluice tune {}: the fastest of {} configuration(s) on {} sample rows, {:.0f} rows/s.\n"
      "# Paste into the job, or run with:\n"
      "#   sluice run {} --set batch.size={} --set execution.workers={} --set model.threads={}\n"
      "batch:\n  size: {}\nexecution:\n  workers: {}\nmodel:\n  threads: {}\n",
      job_path, report.trials.size(), report.sample_rows, t.rows_per_sec, job_path, t.batch_size, t.workers,
      t.model_threads, t.batch_size, t.workers, t.model_threads);
}

}  // namespace sluice
