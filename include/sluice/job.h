// JobSpec: the parsed, validated job.yaml (see docs/job-spec.md for every key and
// its default), and RunJob, which scores a whole job.
//
// Thread-safety: JobSpec is a value. RunJob may be called from several threads
// on different output directories.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/env.h"
#include "sluice/model.h"
#include "sluice/source.h"
#include "sluice/status.h"

namespace sluice {

// ---- features -------------------------------------------------------------

enum class ImputeKind { kNone, kMean, kMedian, kMostFrequent, kConstant, kNan };
// kNone: a null value rejects the row (reason missing_value).
// kNan: the model receives NaN (for backends that handle missing values).

enum class TransformKind { kLog1p, kStandardize, kMinMax, kClip };

struct TransformSpec {
  TransformKind kind = TransformKind::kLog1p;
  // kClip only: bounds (either may be absent).
  std::optional<double> clip_min;
  std::optional<double> clip_max;
};

enum class DatetimePart { kHour, kDayOfWeek, kDay, kMonth, kYear, kEpoch };
// kDayOfWeek: Monday = 0 … Sunday = 6. kEpoch: seconds since the Unix epoch. UTC.

// Job-spec spellings: "none", "mean", "median", "most_frequent", "constant", "nan";
// "log1p", "standardize", "minmax", "clip"; "hour", "dow", "day", "month", "year", "epoch".
std::string_view ImputeKindName(ImputeKind kind);
std::string_view TransformKindName(TransformKind kind);
std::string_view DatetimePartName(DatetimePart part);

struct FeatureSpec {
  std::string name;    // feature name (the model's input name for this column)
  std::string column;  // input column it reads; `from:` in YAML, default = name
  ImputeKind impute = ImputeKind::kNone;
  double impute_number = 0;        // kConstant on numeric features
  bool impute_number_ok = true;    // false when the constant's text is not a number
  std::string impute_string;       // kConstant on one-hot and text features (the text as written)
  std::vector<TransformSpec> transforms;     // applied in order after imputation
  std::vector<std::string> one_hot;          // categories; non-empty = one-hot feature
  bool unknown_category_is_error = false;    // one-hot: unknown -> reject (else all zeros)
  std::optional<DatetimePart> datetime;      // datetime part of a timestamp column

  // Names of the model inputs this feature produces: {name} or, for one-hot,
  // {name=cat1, name=cat2, ...}.
  std::vector<std::string> OutputNames() const;
};

// ---- the spec --------------------------------------------------------------

struct InputSpec {
  // input.path in YAML is a file, directory or glob (Parquet: also
  // hive-partitioned directories), or a database URL: postgresql://user@host:port/db
  // (the password from PGPASSWORD or ~/.pgpass), sqlite:///relative.db,
  // sqlite:////absolute.db, or a .db/.sqlite/.sqlite3 file.
  std::string path;  // files: the path, resolved; empty for databases
  // Databases: the SQLite file (resolved) or the PostgreSQL URL, with exactly
  // one of `table` and `query`.
  std::string database;
  std::string table;
  std::string query;
  // Unset: from the extension of the path (or the first matching file), or the URL.
  std::optional<InputFormat> format;
  CsvOptions csv;
  std::map<std::string, DataType> schema;  // declared column types
};

// model.route: one model per value of an input column.
struct RouteSpec {
  std::string column;                         // `by:`; an input column (read as text)
  std::map<std::string, std::string> models;  // segment value -> model path
  std::string default_path;                   // rows of other values; empty = reject them
  int cache_size = 4;                         // models loaded at once (LRU)
};

struct ModelSpec {
  // The model that defines the signature (inputs, outputs). With route: the
  // default model, or the first routed one when there is no default.
  std::string path;
  std::string kind = "auto";
  bool lazy = false;  // load: lazy (on first use) | preload (at preflight)
  int threads = 1;    // intra-op threads per worker; 0 = auto (cores / workers)
  std::optional<RouteSpec> route;
  // Prediction column -> model output reference: "out" (whole output; a width-k
  // output becomes columns col_0..col_{k-1}) or "out[i]" (one element).
  // Empty: every output under its own name.
  std::vector<std::pair<std::string, std::string>> outputs;
};

struct ThresholdSpec {
  std::string column;        // prediction column compared
  double at = 0.5;           // value >= at -> positive
  std::string label = "label";
  std::vector<std::string> labels;  // {negative, positive} names; empty = 0/1 int64
};

enum class FilterOp { kEq, kNe, kLt, kLe, kGt, kGe };

struct FilterSpec {
  std::string column;
  FilterOp op = FilterOp::kEq;
  std::optional<double> number;  // numeric comparison, or
  std::string text;              // string comparison when number is absent
};

enum class OutputFormat { kCsv, kJsonl, kParquet, kSqlite, kPostgres };
// "csv", "jsonl", "parquet", "sqlite", "postgres".
std::string_view OutputFormatName(OutputFormat format);
// SQLite and PostgreSQL sinks write into output.table, not part files.
inline bool IsDatabase(OutputFormat format) {
  return format == OutputFormat::kSqlite || format == OutputFormat::kPostgres;
}

// output.mode for database sinks: what happens to rows already in output.table.
enum class OutputMode {
  kAppend,     // rows are added
  kOverwrite,  // the table is emptied when the job starts (not when it resumes)
  kUpsert,     // a row whose output.keys exist already replaces it (needs keys; a unique index on them is created)
};

enum class ParquetCompression { kZstd, kSnappy };

// Time buckets for output layout and time partitions.
enum class TimeWindow { kHour, kDay, kWeek, kMonth };
// "hour", "day", "week", "month" (as in partition_by: ts:day); job spec windows
// are written 1h, 1d, 1w, 1mo.
std::string_view TimeWindowName(TimeWindow window);

// One level of output directory layout: out/<column>=<value>/ (plain),
// out/<column>_<window>=<bucket>/ (time: 2024-01-05T13, 2024-01-05, the
// Monday of the ISO week 2024-01-01, 2024-01), or out/<column>_bucket=<NN>/
// (hash, NN = stable hash of the value mod buckets, zero-padded).
struct PartitionKey {
  std::string column;  // an output or input column
  std::optional<TimeWindow> window;
  int buckets = 0;  // > 0: hash buckets
  // Directory name prefix: "merchant", "ts_day", "id_bucket".
  std::string DirName() const;
};

// How the input is cut into work units (partition: in the job spec).
enum class PartitionBy { kFiles, kSize, kTime, kColumn, kHash };

struct PartitionSpec {
  PartitionBy by = PartitionBy::kSize;
  uint64_t target_bytes = uint64_t{64} << 20;  // kSize (and the unit size of file inputs otherwise)
  std::string column;                          // kTime, kColumn, kHash
  TimeWindow window = TimeWindow::kDay;        // kTime
  int buckets = 16;                            // kHash
  // Fraction of rows kept, by a stable hash of the output keys (or of the row's
  // file and line when there are no keys). 1.0 keeps every row.
  double sample = 1.0;
  // For file inputs, time/column/hash partitions cannot be read selectively;
  // they become the first level of the output layout instead. nullopt for files/size.
  std::optional<PartitionKey> OutputKey() const;
};

// execution.retries: transient failures (I/O, unavailable, timeout) of a batch's
// prediction or of a whole unit are tried again, up to max_attempts in all,
// after a random wait in [0, min(max_backoff, initial_backoff * 2^(n-1))]
// ("full jitter") before attempt n + 1.
struct RetrySpec {
  int max_attempts = 3;
  int64_t initial_backoff_ms = 100;
  int64_t max_backoff_ms = 10000;
};

struct ExecutionSpec {
  int workers = 0;       // units in parallel; 0 = auto (cores)
  bool async = true;     // mode: async overlaps reading and inference; sync does one batch at a time
  uint64_t memory_limit = uint64_t{2} << 30;  // bytes: peak RSS promise
  RetrySpec retries;
  int64_t batch_timeout_ms = 60000;  // a prediction running longer fails its attempt (kTimeout); 0 = none
};

struct OutputSpec {
  // The output directory: part files, and for every format the run's own
  // files (_sluice/job.json, unit markers, rejects, report). In YAML,
  // output.path, or for database outputs output.state_dir (default out).
  std::string path = "out";
  // Unset in YAML: csv, or from the URL / file name in output.path.
  OutputFormat format = OutputFormat::kCsv;
  // Database sinks: output.path in YAML is a database URL (as input.path) or
  // a .db/.sqlite/.sqlite3 file; `database` is the SQLite file (resolved) or
  // the PostgreSQL URL, and `table` the table written (created if missing).
  std::string database;
  std::string table;
  OutputMode mode = OutputMode::kAppend;
  ParquetCompression compression = ParquetCompression::kZstd;  // format: parquet
  std::vector<std::string> keys;
  std::vector<std::string> columns;  // empty: keys, then prediction columns, then labels
  std::optional<ThresholdSpec> threshold;
  std::vector<std::string> labels;    // argmax class names over a width-k prediction
  std::string label_column = "label";
  std::vector<FilterSpec> filter;     // all must hold for a row to be written
  std::vector<PartitionKey> partition_by;  // directory layout, outermost first
};

struct RejectLimit {
  // At most `count` rejected rows, or at most `fraction` of rows read.
  std::optional<int64_t> count = 0;
  std::optional<double> fraction;
};

enum class LogFormat { kText, kJson };

// monitoring.progress: auto shows a live bar when stderr is a terminal and
// plain lines otherwise; plain always prints lines; off prints neither.
enum class ProgressMode { kAuto, kPlain, kOff };

// One monitoring.alerts rule: {name, when: "METRIC OP NUMBER", for, action, url, column}.
struct AlertSpec {
  // The metrics alerts can watch (DESIGN.md §6), each evaluated on the run so far:
  //   error_rate          rows rejected / rows read
  //   batch_latency_p99   seconds from a batch's read to its write, 99th percentile
  //   rows_per_sec        input rows per second over the last 10 seconds
  //   score_mean          mean of the score column's predictions
  //   score_psi           population stability index of the score column's
  //                       predictions against the reference histogram in the stats file
  enum class Metric { kErrorRate, kBatchLatencyP99, kRowsPerSec, kScoreMean, kScorePsi };
  enum class Op { kGt, kGe, kLt, kLe };
  enum class Action { kLog, kWebhook, kFail };
  std::string name;
  Metric metric = Metric::kErrorRate;
  Op op = Op::kGt;
  double threshold = 0;
  int64_t for_ms = 0;  // the condition must hold this long before the rule fires
  Action action = Action::kLog;
  std::string url;     // webhook: http:// or https:// URL the JSON body is POSTed to
  // score_mean / score_psi: the prediction column watched; empty = the
  // model's first output (its first element when it is wider than 1).
  std::string column;
};

struct MonitoringSpec {
  LogFormat log_format = LogFormat::kText;
  // Where Prometheus metrics are served (GET /metrics): empty = not served;
  // "9464" or ":9464" = 127.0.0.1:9464; "HOST:PORT" as given (an explicit
  // 0.0.0.0 exposes them to the network). Port 0 picks a free port (logged).
  std::string metrics_addr;
  ProgressMode progress = ProgressMode::kAuto;
  // How often _sluice/metrics.prom is rewritten, plain progress lines are
  // printed and alerts are evaluated (the live bar redraws faster).
  int64_t interval_ms = 5000;
  std::vector<AlertSpec> alerts;
};

std::string_view AlertMetricName(AlertSpec::Metric metric);
std::string_view AlertActionName(AlertSpec::Action action);

// The batch sizes batch.size: auto chooses among, and `sluice tune` measures.
inline constexpr size_t kAutoBatchSizes[] = {256, 1024, 4096, 16384, 65536};

struct JobSpec {
  InputSpec input;
  PartitionSpec partition;
  std::vector<FeatureSpec> features;
  // Statistics: a file path (relative to the job file), or inline (already
  // loaded as JSON text in the stats-file format).
  std::string stats_path;
  std::string stats_inline_json;
  ModelSpec model;
  // Rows per batch. batch.size: auto sets batch_size_auto: the run picks among
  // kAutoBatchSizes while it goes (exec/batch_sizer.h), starting at batch_size.
  size_t batch_size = 4096;
  bool batch_size_auto = false;
  ExecutionSpec execution;
  RejectLimit max_rejected;
  OutputSpec output;
  MonitoringSpec monitoring;

  // The spec as canonical JSON (every key, defaults filled), for job.json and
  // hashing. Paths are as resolved (absolute or relative to the working dir).
  std::string ToCanonicalJson() const;
};

// The input format a file name implies (.csv .tsv .txt -> csv; .jsonl .ndjson
// .json -> jsonl), or nullopt.
std::optional<InputFormat> InputFormatFromPath(std::string_view path);

// Parses and validates job YAML text. `base_dir` resolves relative paths in the
// spec. `overrides` are "a.b=value" strings applied before validation (value is
// YAML: `--set batch.size=1024`, `--set output.keys=[id]`). Errors name the key
// path: "model.kind: unknown value 'foo' (expected auto, linear, fake)".
Result<JobSpec> ParseJobSpec(std::string_view yaml_text, const std::string& base_dir,
                             const std::vector<std::string>& overrides = {});
// Reads `path` and parses it, resolving paths relative to its directory.
Result<JobSpec> LoadJobSpec(Env* env, const std::string& path,
                            const std::vector<std::string>& overrides = {});

// ---- running ---------------------------------------------------------------

// Exit codes of DESIGN.md §5.
enum class ExitCode : int {
  kSuccess = 0,
  kUnitsFailed = 1,
  kInvalid = 2,
  kRejectLimit = 3,
  kAlert = 4,
  kInterrupted = 130,
};

struct JobReport {
  int64_t rows_in = 0;
  int64_t rows_out = 0;
  int64_t rows_rejected = 0;
  int64_t rows_filtered = 0;
  int64_t units_total = 0;
  int64_t units_done = 0;
  int64_t units_failed = 0;
  int64_t units_skipped = 0;  // committed by an earlier run of the same job (counted in units_done)
  std::map<std::string, int64_t> retries;  // attempts retried, by error code name (io_error, …)
  int64_t rows_sampled_out = 0;  // rows partition.sample left out (not in rows_in)
  std::map<std::string, int64_t> rejects_by_reason;
  std::vector<std::string> parts;  // committed output files, relative to output.path, in plan order
  int workers = 1;                 // units run in parallel
  int model_threads = 1;           // intra-op threads per worker
  // Rows per batch: batch.size, or with batch.size: auto the size the run chose
  // (its best measured so far when the run ended before choosing).
  size_t batch_size = 0;
  bool batch_size_auto = false;
  // Time the batches spent in each stage, summed over batches and workers
  // (thread seconds): read + preprocess, predict, postprocess + write.
  double read_seconds = 0;
  double predict_seconds = 0;
  double write_seconds = 0;
  int64_t model_loads = 0;         // model loads (routing: per segment model)
  int64_t model_evictions = 0;     // routing: models dropped from the LRU cache
  uint64_t peak_rss_bytes = 0;
  double seconds = 0;
  ExitCode exit_code = ExitCode::kSuccess;
  std::string error;  // why the job stopped, when exit_code != kSuccess
};

struct RunOptions {
  const ModelRegistry* models = nullptr;  // borrowed; required
  // Clear the output of an earlier, different job in output.path and start over.
  // Without it such a directory is refused (kFailedPrecondition).
  bool restart = false;
  // --shard I/N: run only the units whose index ≡ index (mod count).
  int shard_index = 0;
  int shard_count = 1;
  // Other processes run units of this same job into output.path meanwhile (a
  // scale-out runner's workers, see sluice/session.h): the output directory is
  // shared as by shards, without a shard of its own. Not with `restart`.
  bool shared_output = false;
  // Set (by a signal handler) to stop: no new unit starts, units in flight stop
  // at their next batch without committing, and RunJob returns kInterrupted.
  const std::atomic<bool>* interrupt = nullptr;
  // RunJob's progress on stderr: `quiet` (--quiet) turns it off whatever
  // monitoring.progress says; `stderr_tty` (stderr is a terminal) picks the
  // live bar over plain lines for progress: auto.
  bool quiet = false;
  bool stderr_tty = false;
  // The process exits when RunJob returns (the CLI's `run`): what only memory
  // holds (the idle DuckDB databases) is left to the exit instead of freed.
  bool exits_after_run = false;
};

// Preflight: input present and readable, schema resolvable, stats complete,
// model loads and accepts the features, output columns resolvable. Nothing is
// written. kInvalidArgument/kNotFound/... naming the problem.
Status ValidateJob(const JobSpec& spec, Env* env, const RunOptions& options);

// Runs the job (its --shard): a JobSession (sluice/session.h) that runs every
// unit of the shard once. Errors found at preflight return a Status (exit 2,
// nothing written); problems after output began are reported in
// JobReport.exit_code. The run that finds every unit of the plan committed
// writes _SUCCESS (as FinalizeOutput).
Result<JobReport> RunJob(const JobSpec& spec, Env* env, const RunOptions& options);

// `sluice plan`: the work units of a job and which of them are done.
struct PlannedUnit {
  std::string id;
  std::string path;    // file, or database (redacted)
  uint64_t begin = 0;  // byte range [begin, end) of the file (Parquet: rows)
  uint64_t end = 0;
  std::string label;   // InputRange::label
  uint64_t est_bytes = 0;
  int64_t est_rows = 0;
  bool rows_exact = false;  // counted, not estimated
  bool in_shard = true;     // taken by this --shard
  bool done = false;        // committed in output.path by a run of this same job
};

struct PlanSummary {
  std::string format;       // InputFormatName
  std::string fingerprint;  // the job's fingerprint digest (spec, model, inputs), as job.json records it
  std::vector<PlannedUnit> units;
  bool output_is_this_job = false;  // output.path holds this job's earlier output
};

// Plans the job (no model is loaded) and looks for committed units in output.path.
Result<PlanSummary> PlanJob(const JobSpec& spec, Env* env, const RunOptions& options);

// `sluice status OUT_DIR`: the state of every unit of the job that wrote OUT_DIR.
struct UnitState {
  std::string id;
  std::string path;  // input file, or database (redacted)
  uint64_t begin = 0;
  uint64_t end = 0;
  std::string label;  // InputRange::label
  enum class State { kDone, kFailed, kPending } state = State::kPending;
  int64_t rows_in = 0;  // done units
  int64_t rows_out = 0;
  int64_t rows_rejected = 0;
  std::string error;  // failed units: the last error
  int attempts = 0;
};

struct OutputStatus {
  std::string fingerprint;
  std::vector<UnitState> units;  // in plan order
  bool success = false;          // _SUCCESS is there
  bool running = false;          // a run of the whole job holds the directory now
};

// Reads OUT_DIR/_sluice (job.json, unit markers, failure records). kNotFound when
// the directory holds no Sluice job.
Result<OutputStatus> ReadOutputStatus(Env* env, const std::string& out);

struct FitStatsReport {
  int64_t rows = 0;
  int64_t rows_rejected = 0;  // rows the reader could not parse (not used for stats)
  // With a score reference: the score column and how many scores it was fitted on.
  std::string score_column;
  int64_t scores = 0;
};

struct FitStatsOptions {
  // Also write the reference histogram of the job's score column ("scores"
  // in the stats file): with --scores, and always when a monitoring.alerts
  // rule watches score_mean or score_psi.
  bool scores = false;
  const ModelRegistry* models = nullptr;  // borrowed; required to score
};

// `sluice fit-stats`: reads every input row once and writes the statistics the
// spec's features need (stats-file format) to `out_path`, atomically. With a
// score reference it then reads the rows again, scores them with the job's
// model and the statistics just fitted, and adds the deciles of the score
// column (FitScoreReference, over a uniform sample of up to a million scores).
Result<FitStatsReport> FitStats(const JobSpec& spec, Env* env, const std::string& out_path,
                                const FitStatsOptions& options = {});

}  // namespace sluice
