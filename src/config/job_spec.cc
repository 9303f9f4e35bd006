// YAML job spec -> JobSpec. Every key is checked; errors name the key path.
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <charconv>
#include <cmath>
#include <set>

#include "config/yaml_util.h"
#include "core/strings.h"
#include "sluice/job.h"

namespace sluice {
namespace {

using config::CheckMap;
using config::IndexPath;
using config::KeyError;
using config::ReadBool;
using config::ReadBytes;
using config::ReadDurationMs;
using config::ReadIntOrAuto;
using config::ReadChar;
using config::ReadDouble;
using config::ReadEnum;
using config::ReadInt;
using config::ReadString;
using config::ReadStringList;
using config::SubPath;

constexpr int64_t kMaxBatchRows = int64_t{1} << 24;

bool IsAbsolute(std::string_view p) { return !p.empty() && p.front() == '/'; }

std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (IsAbsolute(p) || base_dir.empty() || base_dir == ".") return p;
  return JoinPath(base_dir, p);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view OutputFormatName(OutputFormat format) {
  switch (format) {
    case OutputFormat::kCsv: return "csv";
    case OutputFormat::kJsonl: return "jsonl";
    case OutputFormat::kParquet: return "parquet";
    case OutputFormat::kSqlite: return "sqlite";
    case OutputFormat::kPostgres: return "postgres";
  }
  return "unknown";
}

std::optional<InputFormat> InputFormatFromPath(std::string_view path) {
  if (EndsWith(path, ".csv") || EndsWith(path, ".tsv") || EndsWith(path, ".txt")) return InputFormat::kCsv;
  if (EndsWith(path, ".jsonl") || EndsWith(path, ".ndjson") || EndsWith(path, ".json")) return InputFormat::kJsonl;
  if (EndsWith(path, ".parquet") || EndsWith(path, ".pq")) return InputFormat::kParquet;
  return std::nullopt;
}

namespace {

bool IsPostgresUrl(std::string_view url) { return url.starts_with("postgresql://") || url.starts_with("postgres://"); }

// A database URL in input.path / output.path: postgresql://… (kept as written)
// or sqlite:///relative/x.db, sqlite:////absolute/x.db (the file, resolved
// like paths). nullopt when `path` is not a URL.
std::optional<std::pair<std::string, bool>> ParseDatabaseUrl(const std::string& base_dir, const std::string& path) {
  if (IsPostgresUrl(path)) return std::make_pair(path, true);
  constexpr std::string_view kSqlite = "sqlite:///";
  if (path.starts_with(kSqlite)) return std::make_pair(Resolve(base_dir, path.substr(kSqlite.size())), false);
  return std::nullopt;
}

bool IsSqliteFileName(std::string_view path) {
  return EndsWith(path, ".db") || EndsWith(path, ".sqlite") || EndsWith(path, ".sqlite3");
}

Status ParseInput(const YAML::Node& node, const std::string& base_dir, InputSpec* in) {
  RETURN_IF_ERROR(CheckMap(node, "input", {"path", "format", "table", "query", "csv", "schema"}));
  if (!node["path"]) return KeyError("input.path", "required");
  ASSIGN_OR_RETURN(std::string path, ReadString(node["path"], "input.path"));
  if (path.empty()) return KeyError("input.path", "must not be empty");
  std::optional<InputFormat> format;
  if (node["format"]) {
    ASSIGN_OR_RETURN(std::string name, ReadEnum(node["format"], "input.format",
                                                {"csv", "jsonl", "parquet", "sqlite", "postgres"}));
    for (InputFormat f : {InputFormat::kCsv, InputFormat::kJsonl, InputFormat::kParquet, InputFormat::kSqlite,
                          InputFormat::kPostgres}) {
      if (name == InputFormatName(f)) format = f;
    }
  }
  if (const auto url = ParseDatabaseUrl(base_dir, path)) {
    in->database = url->first;
    in->format = url->second ? InputFormat::kPostgres : InputFormat::kSqlite;
    if (format && *format != *in->format) {
      return KeyError("input.format", "'" + std::string(InputFormatName(*format)) + "' does not match the " +
                                          std::string(InputFormatName(*in->format)) + " URL in input.path");
    }
  } else if (format == InputFormat::kSqlite || (!format && IsSqliteFileName(path))) {
    in->database = Resolve(base_dir, path);
    in->format = InputFormat::kSqlite;
  } else if (format == InputFormat::kPostgres) {
    return KeyError("input.path", "format postgres needs a postgresql:// URL");
  } else {
    in->path = Resolve(base_dir, path);
    in->format = format ? format : InputFormatFromPath(path);  // a directory: decided from its files at plan time
  }
  if (!in->database.empty()) {
    if (node["table"]) { ASSIGN_OR_RETURN(in->table, ReadString(node["table"], "input.table")); }
    if (node["query"] && !node["query"].IsNull()) { ASSIGN_OR_RETURN(in->query, ReadString(node["query"], "input.query")); }
    if (in->table.empty() == in->query.empty()) {
      return KeyError("input.table", "a database input needs exactly one of input.table and input.query");
    }
  } else {
    for (const char* key : {"table", "query"}) {
      if (node[key] && !node[key].IsNull()) return KeyError(std::string("input.") + key, "only applies to database inputs");
    }
  }
  if (EndsWith(path, ".tsv") && !node["csv"]) in->csv.delimiter = '\t';

  if (const YAML::Node csv = node["csv"]) {
    RETURN_IF_ERROR(CheckMap(csv, "input.csv", {"delimiter", "header", "quote", "null_values"}));
    if (csv["delimiter"]) { ASSIGN_OR_RETURN(in->csv.delimiter, ReadChar(csv["delimiter"], "input.csv.delimiter")); }
    if (csv["quote"]) { ASSIGN_OR_RETURN(in->csv.quote, ReadChar(csv["quote"], "input.csv.quote")); }
    if (csv["header"]) { ASSIGN_OR_RETURN(in->csv.header, ReadBool(csv["header"], "input.csv.header")); }
    if (csv["null_values"]) {
      ASSIGN_OR_RETURN(in->csv.null_values, ReadStringList(csv["null_values"], "input.csv.null_values"));
    }
    if (in->csv.delimiter == in->csv.quote || in->csv.delimiter == '\n' || in->csv.delimiter == '\r') {
      return KeyError("input.csv.delimiter", "must differ from the quote and from line ends");
    }
  }
  if (const YAML::Node schema = node["schema"]) {
    if (!schema.IsMap()) return KeyError("input.schema", "expected a mapping of column: type");
    for (const auto& kv : schema) {
      const std::string col = kv.first.Scalar();
      const std::string key = SubPath("input.schema", col);
      ASSIGN_OR_RETURN(std::string tname, ReadString(kv.second, key));
      Result<DataType> t = ParseDataType(tname);
      if (!t.ok()) return KeyError(key, t.status().message());
      in->schema[col] = *t;
    }
  }
  return Status::OK();
}

Status ParseFeature(const YAML::Node& node, const std::string& path, FeatureSpec* f) {
  RETURN_IF_ERROR(CheckMap(node, path, {"name", "from", "impute", "transform", "one_hot", "unknown", "datetime"}));
  if (!node["name"]) return KeyError(SubPath(path, "name"), "required");
  ASSIGN_OR_RETURN(f->name, ReadString(node["name"], SubPath(path, "name")));
  if (f->name.empty()) return KeyError(SubPath(path, "name"), "must not be empty");
  f->column = f->name;
  if (node["from"]) { ASSIGN_OR_RETURN(f->column, ReadString(node["from"], SubPath(path, "from"))); }

  if (node["one_hot"]) {
    ASSIGN_OR_RETURN(f->one_hot, ReadStringList(node["one_hot"], SubPath(path, "one_hot")));
    if (f->one_hot.empty()) return KeyError(SubPath(path, "one_hot"), "needs at least one category");
    std::set<std::string> seen;
    for (const std::string& c : f->one_hot) {
      if (!seen.insert(c).second) return KeyError(SubPath(path, "one_hot"), "duplicate category '" + c + "'");
    }
  }
  if (node["unknown"]) {
    if (f->one_hot.empty()) return KeyError(SubPath(path, "unknown"), "only applies with one_hot");
    ASSIGN_OR_RETURN(std::string u, ReadEnum(node["unknown"], SubPath(path, "unknown"), {"zeros", "error"}));
    f->unknown_category_is_error = u == "error";
  }
  if (node["datetime"]) {
    ASSIGN_OR_RETURN(std::string part, ReadEnum(node["datetime"], SubPath(path, "datetime"),
                                                {"hour", "dow", "day", "month", "year", "epoch"}));
    static const std::pair<std::string_view, DatetimePart> kParts[] = {
        {"hour", DatetimePart::kHour}, {"dow", DatetimePart::kDayOfWeek}, {"day", DatetimePart::kDay},
        {"month", DatetimePart::kMonth}, {"year", DatetimePart::kYear}, {"epoch", DatetimePart::kEpoch}};
    for (const auto& [n, p] : kParts) {
      if (part == n) f->datetime = p;
    }
    if (!f->one_hot.empty()) return KeyError(SubPath(path, "datetime"), "cannot be combined with one_hot");
  }

  if (const YAML::Node imp = node["impute"]) {
    const std::string ipath = SubPath(path, "impute");
    if (imp.IsMap()) {
      RETURN_IF_ERROR(CheckMap(imp, ipath, {"constant"}));
      f->impute = ImputeKind::kConstant;
      // The text is kept for one-hot and text features (a text feature is known only
      // once the model is loaded); a numeric feature checks at preflight that it is a number.
      ASSIGN_OR_RETURN(f->impute_string, ReadString(imp["constant"], SubPath(ipath, "constant")));
      if (f->one_hot.empty()) {
        Result<double> number = ReadDouble(imp["constant"], SubPath(ipath, "constant"));
        f->impute_number = number.ok() ? *number : 0;
        f->impute_number_ok = number.ok();
      }
    } else {
      ASSIGN_OR_RETURN(std::string kind,
                       ReadEnum(imp, ipath, {"none", "mean", "median", "most_frequent", "nan", "constant"}));
      if (kind == "constant") return KeyError(ipath, "write {constant: VALUE}");
      if (kind == "none") f->impute = ImputeKind::kNone;
      if (kind == "mean") f->impute = ImputeKind::kMean;
      if (kind == "median") f->impute = ImputeKind::kMedian;
      if (kind == "most_frequent") f->impute = ImputeKind::kMostFrequent;
      if (kind == "nan") f->impute = ImputeKind::kNan;
      if (!f->one_hot.empty() && (kind == "mean" || kind == "median" || kind == "nan")) {
        return KeyError(ipath, "'" + kind + "' does not apply to a one_hot feature (use most_frequent or {constant: …})");
      }
    }
  }

  if (const YAML::Node tr = node["transform"]) {
    const std::string tpath = SubPath(path, "transform");
    if (!f->one_hot.empty()) return KeyError(tpath, "does not apply to a one_hot feature");
    YAML::Node list = tr;
    if (!tr.IsSequence()) {
      list = YAML::Node(YAML::NodeType::Sequence);
      list.push_back(tr);
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node step = list[i];
      const std::string spath = IndexPath(tpath, i);
      TransformSpec t;
      if (step.IsMap()) {
        RETURN_IF_ERROR(CheckMap(step, spath, {"clip"}));
        const YAML::Node clip = step["clip"];
        RETURN_IF_ERROR(CheckMap(clip, SubPath(spath, "clip"), {"min", "max"}));
        t.kind = TransformKind::kClip;
        if (clip["min"]) { ASSIGN_OR_RETURN(t.clip_min, ReadDouble(clip["min"], SubPath(spath, "clip.min"))); }
        if (clip["max"]) { ASSIGN_OR_RETURN(t.clip_max, ReadDouble(clip["max"], SubPath(spath, "clip.max"))); }
        if (!t.clip_min && !t.clip_max) return KeyError(SubPath(spath, "clip"), "needs min, max or both");
        if (t.clip_min && t.clip_max && *t.clip_min > *t.clip_max) {
          return KeyError(SubPath(spath, "clip"), "min is greater than max");
        }
      } else {
        ASSIGN_OR_RETURN(std::string kind, ReadEnum(step, spath, {"log1p", "standardize", "minmax", "clip"}));
        if (kind == "clip") return KeyError(spath, "write {clip: {min: A, max: B}}");
        t.kind = kind == "log1p"         ? TransformKind::kLog1p
                 : kind == "standardize" ? TransformKind::kStandardize
                                         : TransformKind::kMinMax;
      }
      f->transforms.push_back(t);
    }
  }
  return Status::OK();
}

Status ParseModel(const YAML::Node& node, const std::string& base_dir, ModelSpec* m) {
  RETURN_IF_ERROR(CheckMap(node, "model", {"path", "kind", "load", "threads", "outputs", "route"}));
  if (node["path"]) {
    ASSIGN_OR_RETURN(std::string path, ReadString(node["path"], "model.path"));
    if (path.empty()) return KeyError("model.path", "must not be empty");
    m->path = Resolve(base_dir, path);
  }
  if (node["kind"]) { ASSIGN_OR_RETURN(m->kind, ReadString(node["kind"], "model.kind")); }
  if (node["load"]) {
    ASSIGN_OR_RETURN(std::string load, ReadEnum(node["load"], "model.load", {"preload", "lazy"}));
    m->lazy = load == "lazy";
  }
  if (node["threads"]) {
    ASSIGN_OR_RETURN(int64_t t, ReadIntOrAuto(node["threads"], "model.threads", 1, 1024));
    m->threads = static_cast<int>(t);
  }
  if (const YAML::Node route = node["route"]; route && !route.IsNull()) {
    RETURN_IF_ERROR(CheckMap(route, "model.route", {"by", "models", "default", "cache_size"}));
    RouteSpec r;
    if (!route["by"]) return KeyError("model.route.by", "required: the input column that picks the model");
    ASSIGN_OR_RETURN(r.column, ReadString(route["by"], "model.route.by"));
    const YAML::Node models = route["models"];
    if (!models || !models.IsMap() || models.size() == 0) {
      return KeyError("model.route.models", "required: a mapping of segment value: model path");
    }
    for (const auto& kv : models) {
      const std::string value = kv.first.Scalar();
      ASSIGN_OR_RETURN(std::string path, ReadString(kv.second, SubPath("model.route.models", value)));
      if (path.empty()) return KeyError(SubPath("model.route.models", value), "must not be empty");
      r.models[value] = Resolve(base_dir, path);
    }
    if (route["default"] && !route["default"].IsNull()) {
      ASSIGN_OR_RETURN(std::string path, ReadString(route["default"], "model.route.default"));
      r.default_path = Resolve(base_dir, path);
    } else {
      r.default_path = m->path;  // may be empty: rows of other segments are rejected
    }
    if (route["cache_size"]) {
      ASSIGN_OR_RETURN(int64_t n, ReadInt(route["cache_size"], "model.route.cache_size", 1, 1 << 16));
      r.cache_size = static_cast<int>(n);
    }
    // The signature model: model.path, else the default, else the first routed model.
    if (m->path.empty()) m->path = !r.default_path.empty() ? r.default_path : r.models.begin()->second;
    m->route = std::move(r);
  }
  if (m->path.empty()) return KeyError("model.path", "required");
  if (const YAML::Node outs = node["outputs"]) {
    if (!outs.IsMap()) return KeyError("model.outputs", "expected a mapping of column: model_output");
    for (const auto& kv : outs) {
      const std::string col = kv.first.Scalar();
      ASSIGN_OR_RETURN(std::string ref, ReadString(kv.second, SubPath("model.outputs", col)));
      m->outputs.emplace_back(col, ref);
    }
  }
  return Status::OK();
}

// "ts:day" (hour, day, week, month) or a plain column name.
Result<PartitionKey> ParsePartitionKey(const std::string& text, const std::string& path) {
  PartitionKey key;
  const size_t colon = text.rfind(':');
  key.column = text.substr(0, colon);
  if (key.column.empty()) return KeyError(path, "expected a column name, or column:hour|day|week|month");
  if (colon != std::string::npos) {
    const std::string window = text.substr(colon + 1);
    for (TimeWindow w : {TimeWindow::kHour, TimeWindow::kDay, TimeWindow::kWeek, TimeWindow::kMonth}) {
      if (window == TimeWindowName(w)) key.window = w;
    }
    if (!key.window) {
      return KeyError(path, "unknown time bucket '" + window + "' in '" + text + "' (expected hour, day, week, month)");
    }
  }
  return key;
}

// `database`: the input is a database, where partition.by size may cut ranges of partition.column.
Status ParsePartition(const YAML::Node& node, bool database, PartitionSpec* p) {
  RETURN_IF_ERROR(CheckMap(node, "partition", {"by", "target_bytes", "column", "window", "buckets", "sample"}));
  if (node["by"]) {
    ASSIGN_OR_RETURN(std::string by, ReadEnum(node["by"], "partition.by", {"files", "size", "time", "column", "hash"}));
    p->by = by == "files" ? PartitionBy::kFiles : by == "size" ? PartitionBy::kSize : by == "time" ? PartitionBy::kTime
            : by == "column" ? PartitionBy::kColumn : PartitionBy::kHash;
  }
  if (node["target_bytes"]) {
    ASSIGN_OR_RETURN(p->target_bytes, ReadBytes(node["target_bytes"], "partition.target_bytes", 1));
  }
  if (node["column"]) { ASSIGN_OR_RETURN(p->column, ReadString(node["column"], "partition.column")); }
  if (node["window"]) {
    ASSIGN_OR_RETURN(std::string w, ReadEnum(node["window"], "partition.window", {"1h", "1d", "1w", "1mo"}));
    p->window = w == "1h" ? TimeWindow::kHour : w == "1d" ? TimeWindow::kDay : w == "1w" ? TimeWindow::kWeek
                : TimeWindow::kMonth;
  }
  if (node["buckets"]) {
    ASSIGN_OR_RETURN(int64_t n, ReadInt(node["buckets"], "partition.buckets", 1, 4096));
    p->buckets = static_cast<int>(n);
  }
  if (node["sample"]) {
    ASSIGN_OR_RETURN(p->sample, ReadDouble(node["sample"], "partition.sample"));
    if (!(p->sample > 0 && p->sample <= 1)) return KeyError("partition.sample", "expected a fraction in (0, 1]");
  }
  const bool needs_column = p->by == PartitionBy::kTime || p->by == PartitionBy::kColumn || p->by == PartitionBy::kHash;
  if (needs_column && p->column.empty()) return KeyError("partition.column", "required when partition.by is time, column or hash");
  const bool column_ranges = database && p->by == PartitionBy::kSize;
  if (!needs_column && !column_ranges && !p->column.empty()) {
    return KeyError("partition.column", database ? "only used when partition.by is size, time, column or hash"
                                                 : "only used when partition.by is time, column or hash");
  }
  return Status::OK();
}

Status ParseExecution(const YAML::Node& node, ExecutionSpec* e) {
  RETURN_IF_ERROR(CheckMap(node, "execution", {"workers", "mode", "memory_limit", "retries", "batch_timeout"}));
  if (const YAML::Node r = node["retries"]; r && !r.IsNull()) {
    RETURN_IF_ERROR(CheckMap(r, "execution.retries", {"max_attempts", "initial_backoff", "max_backoff"}));
    if (r["max_attempts"]) {
      ASSIGN_OR_RETURN(int64_t n, ReadInt(r["max_attempts"], "execution.retries.max_attempts", 1, 100));
      e->retries.max_attempts = static_cast<int>(n);
    }
    if (r["initial_backoff"]) {
      ASSIGN_OR_RETURN(e->retries.initial_backoff_ms,
                       ReadDurationMs(r["initial_backoff"], "execution.retries.initial_backoff"));
    }
    if (r["max_backoff"]) {
      ASSIGN_OR_RETURN(e->retries.max_backoff_ms, ReadDurationMs(r["max_backoff"], "execution.retries.max_backoff"));
    }
  }
  if (node["batch_timeout"]) {
    ASSIGN_OR_RETURN(e->batch_timeout_ms, ReadDurationMs(node["batch_timeout"], "execution.batch_timeout"));
  }
  if (node["workers"]) {
    ASSIGN_OR_RETURN(int64_t w, ReadIntOrAuto(node["workers"], "execution.workers", 1, 1024));
    e->workers = static_cast<int>(w);
  }
  if (node["mode"]) {
    ASSIGN_OR_RETURN(std::string mode, ReadEnum(node["mode"], "execution.mode", {"async", "sync"}));
    e->async = mode == "async";
  }
  if (node["memory_limit"]) {
    ASSIGN_OR_RETURN(e->memory_limit, ReadBytes(node["memory_limit"], "execution.memory_limit", uint64_t{16} << 20));
  }
  return Status::OK();
}

Status ParseOutput(const YAML::Node& node, const std::string& base_dir, OutputSpec* o) {
  RETURN_IF_ERROR(CheckMap(node, "output",
                           {"path", "format", "table", "mode", "state_dir", "compression", "keys", "columns",
                            "threshold", "labels", "label_column", "filter", "partition_by"}));
  std::string path = o->path;
  if (node["path"]) {
    ASSIGN_OR_RETURN(path, ReadString(node["path"], "output.path"));
    if (path.empty()) return KeyError("output.path", "must not be empty");
  }
  std::optional<OutputFormat> format;
  if (node["format"]) {
    ASSIGN_OR_RETURN(std::string name, ReadEnum(node["format"], "output.format",
                                                {"csv", "jsonl", "parquet", "sqlite", "postgres"}));
    for (OutputFormat f : {OutputFormat::kCsv, OutputFormat::kJsonl, OutputFormat::kParquet, OutputFormat::kSqlite,
                           OutputFormat::kPostgres}) {
      if (name == OutputFormatName(f)) format = f;
    }
  }
  if (const auto url = ParseDatabaseUrl(base_dir, path)) {
    o->database = url->first;
    o->format = url->second ? OutputFormat::kPostgres : OutputFormat::kSqlite;
    if (format && *format != o->format) {
      return KeyError("output.format", "'" + std::string(OutputFormatName(*format)) + "' does not match the " +
                                           std::string(OutputFormatName(o->format)) + " URL in output.path");
    }
  } else if (format == OutputFormat::kSqlite || (!format && IsSqliteFileName(path))) {
    o->database = Resolve(base_dir, path);
    o->format = OutputFormat::kSqlite;
  } else if (format == OutputFormat::kPostgres) {
    return KeyError("output.path", "format postgres needs a postgresql:// URL");
  } else {
    o->format = format.value_or(OutputFormat::kCsv);
  }
  if (IsDatabase(o->format)) {
    // The run's own files (job.json, markers, rejects, report) need a directory.
    o->path = "out";
    if (node["state_dir"]) {
      ASSIGN_OR_RETURN(o->path, ReadString(node["state_dir"], "output.state_dir"));
      if (o->path.empty()) return KeyError("output.state_dir", "must not be empty");
    }
    if (!node["table"]) return KeyError("output.table", "required for a database output");
    ASSIGN_OR_RETURN(o->table, ReadString(node["table"], "output.table"));
    if (o->table.empty()) return KeyError("output.table", "must not be empty");
    if (node["mode"]) {
      ASSIGN_OR_RETURN(std::string mode, ReadEnum(node["mode"], "output.mode", {"append", "overwrite", "upsert"}));
      o->mode = mode == "append" ? OutputMode::kAppend : mode == "overwrite" ? OutputMode::kOverwrite : OutputMode::kUpsert;
    }
  } else {
    o->path = path;
    for (const char* key : {"table", "mode", "state_dir"}) {
      if (node[key]) return KeyError(std::string("output.") + key, "only applies to database outputs");
    }
  }
  o->path = Resolve(base_dir, o->path);
  if (node["compression"]) {
    if (o->format != OutputFormat::kParquet) return KeyError("output.compression", "only applies with output.format parquet");
    ASSIGN_OR_RETURN(std::string c, ReadEnum(node["compression"], "output.compression", {"zstd", "snappy"}));
    o->compression = c == "zstd" ? ParquetCompression::kZstd : ParquetCompression::kSnappy;
  }
  if (node["keys"]) { ASSIGN_OR_RETURN(o->keys, ReadStringList(node["keys"], "output.keys")); }
  if (o->mode == OutputMode::kUpsert && o->keys.empty()) {
    return KeyError("output.mode", "upsert needs output.keys (the columns that identify a row)");
  }
  if (node["partition_by"] && !node["partition_by"].IsNull()) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys, ReadStringList(node["partition_by"], "output.partition_by"));
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSIGN_OR_RETURN(PartitionKey key, ParsePartitionKey(keys[i], IndexPath("output.partition_by", i)));
      o->partition_by.push_back(std::move(key));
    }
    if (IsDatabase(o->format) && !o->partition_by.empty()) {
      return KeyError("output.partition_by", "only applies to file outputs (csv, jsonl, parquet), not a database table");
    }
  }
  if (node["columns"]) { ASSIGN_OR_RETURN(o->columns, ReadStringList(node["columns"], "output.columns")); }
  if (node["labels"] && !node["labels"].IsNull()) {
    ASSIGN_OR_RETURN(o->labels, ReadStringList(node["labels"], "output.labels"));
    if (o->labels.size() < 2) return KeyError("output.labels", "needs at least two class names");
  }
  if (node["label_column"]) {
    ASSIGN_OR_RETURN(o->label_column, ReadString(node["label_column"], "output.label_column"));
  }
  if (const YAML::Node th = node["threshold"]; th && !th.IsNull()) {
    RETURN_IF_ERROR(CheckMap(th, "output.threshold", {"column", "at", "label", "labels"}));
    ThresholdSpec t;
    if (!th["column"]) return KeyError("output.threshold.column", "required");
    ASSIGN_OR_RETURN(t.column, ReadString(th["column"], "output.threshold.column"));
    if (th["at"]) { ASSIGN_OR_RETURN(t.at, ReadDouble(th["at"], "output.threshold.at")); }
    if (th["label"]) { ASSIGN_OR_RETURN(t.label, ReadString(th["label"], "output.threshold.label")); }
    if (th["labels"]) {
      ASSIGN_OR_RETURN(t.labels, ReadStringList(th["labels"], "output.threshold.labels"));
      if (t.labels.size() != 2) {
        return KeyError("output.threshold.labels", "expected two names: [negative, positive]");
      }
    }
    o->threshold = t;
  }
  if (const YAML::Node filters = node["filter"]; filters && !filters.IsNull()) {
    if (!filters.IsSequence()) return KeyError("output.filter", "expected a list of {column, op, value}");
    for (size_t i = 0; i < filters.size(); ++i) {
      const std::string fpath = IndexPath("output.filter", i);
      RETURN_IF_ERROR(CheckMap(filters[i], fpath, {"column", "op", "value"}));
      FilterSpec f;
      if (!filters[i]["column"]) return KeyError(SubPath(fpath, "column"), "required");
      if (!filters[i]["value"]) return KeyError(SubPath(fpath, "value"), "required");
      ASSIGN_OR_RETURN(f.column, ReadString(filters[i]["column"], SubPath(fpath, "column")));
      std::string op = "==";
      if (filters[i]["op"]) {
        ASSIGN_OR_RETURN(op, ReadEnum(filters[i]["op"], SubPath(fpath, "op"), {"==", "!=", "<", "<=", ">", ">="}));
      }
      f.op = op == "==" ? FilterOp::kEq : op == "!=" ? FilterOp::kNe : op == "<" ? FilterOp::kLt
             : op == "<=" ? FilterOp::kLe : op == ">" ? FilterOp::kGt : FilterOp::kGe;
      const YAML::Node v = filters[i]["value"];
      Result<double> num = ReadDouble(v, SubPath(fpath, "value"));
      if (num.ok() && v.Tag() != "!") {
        f.number = *num;
      } else {
        ASSIGN_OR_RETURN(f.text, ReadString(v, SubPath(fpath, "value")));
      }
      o->filter.push_back(std::move(f));
    }
  }
  return Status::OK();
}

Status ParseRejectLimit(const YAML::Node& node, RejectLimit* limit) {
  RETURN_IF_ERROR(CheckMap(node, "errors", {"max_rejected"}));
  const YAML::Node m = node["max_rejected"];
  if (!m) return Status::OK();
  ASSIGN_OR_RETURN(std::string s, ReadString(m, "errors.max_rejected"));
  if (!s.empty() && s.back() == '%') {
    YAML::Node num(s.substr(0, s.size() - 1));
    Result<double> pct = ReadDouble(num, "errors.max_rejected");
    if (!pct.ok() || *pct < 0 || *pct > 100) {
      return KeyError("errors.max_rejected", "expected a count (e.g. 100) or a percentage (e.g. 0.5%), got '" + s + "'");
    }
    limit->count.reset();
    limit->fraction = *pct / 100.0;
    return Status::OK();
  }
  Result<int64_t> count = ReadInt(m, "errors.max_rejected", 0, INT64_MAX);
  if (!count.ok()) {
    return KeyError("errors.max_rejected", "expected a count (e.g. 100) or a percentage (e.g. 0.5%), got '" + s + "'");
  }
  limit->count = *count;
  limit->fraction.reset();
  return Status::OK();
}

// "host:port", ":port" or "port" (the last two on 127.0.0.1).
Result<std::string> ReadListenAddress(const YAML::Node& node, std::string_view path) {
  ASSIGN_OR_RETURN(std::string text, ReadString(node, path));
  const size_t colon = text.rfind(':');
  std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
  const std::string port = colon == std::string::npos ? text : text.substr(colon + 1);
  int64_t n = -1;
  if (!port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos) n = std::stoll(port);
  if (n < 0 || n > 65535) {
    return KeyError(path, "expected HOST:PORT, :PORT or PORT with a port from 0 to 65535, got '" + text + "'");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";
  return host + ":" + port;
}

// when: "METRIC OP NUMBER", e.g. "error_rate > 0.01".
Status ParseAlertCondition(const std::string& text, const std::string& path, AlertSpec* a) {
  static constexpr std::pair<std::string_view, AlertSpec::Op> kOps[] = {
      {">=", AlertSpec::Op::kGe}, {"<=", AlertSpec::Op::kLe}, {">", AlertSpec::Op::kGt}, {"<", AlertSpec::Op::kLt}};
  const std::string hint = "expected 'METRIC OP NUMBER' with METRIC one of error_rate, batch_latency_p99, "
                           "rows_per_sec, score_mean, score_psi and OP one of >, >=, <, <=";
  size_t at = std::string::npos;
  std::string_view op_text;
  for (const auto& [text_op, op] : kOps) {
    at = text.find(text_op);
    if (at != std::string::npos) {
      a->op = op;
      op_text = text_op;
      break;
    }
  }
  if (at == std::string::npos) return KeyError(path, hint + ", got '" + text + "'");
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return std::string(v);
  };
  const std::string metric = trim(std::string_view(text).substr(0, at));
  const std::string number = trim(std::string_view(text).substr(at + op_text.size()));
  bool known = false;
  for (AlertSpec::Metric m : {AlertSpec::Metric::kErrorRate, AlertSpec::Metric::kBatchLatencyP99,
                              AlertSpec::Metric::kRowsPerSec, AlertSpec::Metric::kScoreMean,
                              AlertSpec::Metric::kScorePsi}) {
    if (metric == AlertMetricName(m)) {
      a->metric = m;
      known = true;
    }
  }
  if (!known) return KeyError(path, "unknown metric '" + metric + "'; " + hint);
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() || !std::isfinite(value)) return KeyError(path, "'" + number + "' is not a number; " + hint);
  a->threshold = value;
  return Status::OK();
}

Status ParseMonitoring(const YAML::Node& mon, MonitoringSpec* m) {
  RETURN_IF_ERROR(CheckMap(mon, "monitoring", {"log_format", "metrics_addr", "progress", "interval", "alerts"}));
  if (mon["log_format"]) {
    ASSIGN_OR_RETURN(std::string f, ReadEnum(mon["log_format"], "monitoring.log_format", {"text", "json"}));
    m->log_format = f == "json" ? LogFormat::kJson : LogFormat::kText;
  }
  if (mon["metrics_addr"] && !mon["metrics_addr"].IsNull()) {
    ASSIGN_OR_RETURN(m->metrics_addr, ReadListenAddress(mon["metrics_addr"], "monitoring.metrics_addr"));
  }
  if (mon["progress"]) {
    ASSIGN_OR_RETURN(std::string p, ReadEnum(mon["progress"], "monitoring.progress", {"auto", "plain", "off"}));
    m->progress = p == "auto" ? ProgressMode::kAuto : p == "plain" ? ProgressMode::kPlain : ProgressMode::kOff;
  }
  if (mon["interval"]) {
    ASSIGN_OR_RETURN(m->interval_ms, ReadDurationMs(mon["interval"], "monitoring.interval"));
    if (m->interval_ms < 100) return KeyError("monitoring.interval", "must be at least 100ms");
  }
  if (const YAML::Node alerts = mon["alerts"]; alerts && !alerts.IsNull()) {
    if (!alerts.IsSequence()) return KeyError("monitoring.alerts", "expected a list of rules");
    std::set<std::string> names;
    for (size_t i = 0; i < alerts.size(); ++i) {
      const std::string path = "monitoring.alerts[" + std::to_string(i) + "]";
      const YAML::Node r = alerts[i];
      RETURN_IF_ERROR(CheckMap(r, path, {"name", "when", "for", "action", "url", "column"}));
      AlertSpec a;
      if (!r["name"]) return KeyError(path + ".name", "required");
      ASSIGN_OR_RETURN(a.name, ReadString(r["name"], path + ".name"));
      if (!names.insert(a.name).second) return KeyError(path + ".name", "'" + a.name + "' names two rules");
      if (!r["when"]) return KeyError(path + ".when", "required");
      ASSIGN_OR_RETURN(std::string when, ReadString(r["when"], path + ".when"));
      RETURN_IF_ERROR(ParseAlertCondition(when, path + ".when", &a));
      if (r["for"]) {
        ASSIGN_OR_RETURN(a.for_ms, ReadDurationMs(r["for"], path + ".for"));
      }
      if (r["action"]) {
        ASSIGN_OR_RETURN(std::string act, ReadEnum(r["action"], path + ".action", {"log", "webhook", "fail"}));
        a.action = act == "log" ? AlertSpec::Action::kLog
                   : act == "webhook" ? AlertSpec::Action::kWebhook
                                      : AlertSpec::Action::kFail;
      }
      if (r["url"]) {
        ASSIGN_OR_RETURN(a.url, ReadString(r["url"], path + ".url"));
      }
      if (a.action == AlertSpec::Action::kWebhook) {
        if (a.url.empty()) return KeyError(path + ".url", "required for action: webhook");
        if (a.url.rfind("http://", 0) != 0 && a.url.rfind("https://", 0) != 0) {
          return KeyError(path + ".url", "expected an http:// or https:// URL, got '" + a.url + "'");
        }
      } else if (!a.url.empty()) {
        return KeyError(path + ".url", "only used with action: webhook");
      }
      if (r["column"]) {
        if (a.metric != AlertSpec::Metric::kScoreMean && a.metric != AlertSpec::Metric::kScorePsi) {
          return KeyError(path + ".column", "only used with score_mean and score_psi");
        }
        ASSIGN_OR_RETURN(a.column, ReadString(r["column"], path + ".column"));
      }
      m->alerts.push_back(std::move(a));
    }
  }
  return Status::OK();
}

Result<JobSpec> ParseTree(const YAML::Node& root, const std::string& base_dir) {
  RETURN_IF_ERROR(CheckMap(root, "",
                           {"input", "partition", "features", "stats", "model", "batch", "execution", "errors",
                            "output", "monitoring"}));
  JobSpec spec;
  if (!root["input"]) return KeyError("input", "required");
  RETURN_IF_ERROR(ParseInput(root["input"], base_dir, &spec.input));
  if (root["partition"]) RETURN_IF_ERROR(ParsePartition(root["partition"], !spec.input.database.empty(), &spec.partition));

  const YAML::Node features = root["features"];
  if (!features || !features.IsSequence() || features.size() == 0) {
    return KeyError("features", "required: a list of {name: …} entries, in the model's input order");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < features.size(); ++i) {
    FeatureSpec f;
    const std::string path = IndexPath("features", i);
    RETURN_IF_ERROR(ParseFeature(features[i], path, &f));
    if (!names.insert(f.name).second) return KeyError(SubPath(path, "name"), "duplicate feature '" + f.name + "'");
    spec.features.push_back(std::move(f));
  }

  if (const YAML::Node stats = root["stats"]; stats && !stats.IsNull()) {
    if (stats.IsScalar()) {
      spec.stats_path = Resolve(base_dir, stats.Scalar());
    } else if (stats.IsMap()) {
      YAML::Node wrapped;
      wrapped["sluice_stats"] = 1;
      wrapped["features"] = stats;
      spec.stats_inline_json = config::YamlToJson(wrapped);
    } else {
      return KeyError("stats", "expected a file path or a mapping of feature: {impute, standardize, minmax}");
    }
  }

  if (!root["model"]) return KeyError("model", "required");
  RETURN_IF_ERROR(ParseModel(root["model"], base_dir, &spec.model));

  if (const YAML::Node batch = root["batch"]) {
    RETURN_IF_ERROR(CheckMap(batch, "batch", {"size"}));
    if (batch["size"]) {
      ASSIGN_OR_RETURN(int64_t n, ReadIntOrAuto(batch["size"], "batch.size", 1, kMaxBatchRows));
      spec.batch_size_auto = n == 0;  // auto: the run starts at the default and chooses
      if (n > 0) spec.batch_size = static_cast<size_t>(n);
    }
  }
  if (root["execution"]) RETURN_IF_ERROR(ParseExecution(root["execution"], &spec.execution));
  if (root["errors"]) RETURN_IF_ERROR(ParseRejectLimit(root["errors"], &spec.max_rejected));
  if (root["output"]) RETURN_IF_ERROR(ParseOutput(root["output"], base_dir, &spec.output));
  else spec.output.path = Resolve(base_dir, spec.output.path);

  if (root["monitoring"]) RETURN_IF_ERROR(ParseMonitoring(root["monitoring"], &spec.monitoring));
  return spec;
}

}  // namespace

std::string_view AlertMetricName(AlertSpec::Metric metric) {
  switch (metric) {
    case AlertSpec::Metric::kErrorRate: return "error_rate";
    case AlertSpec::Metric::kBatchLatencyP99: return "batch_latency_p99";
    case AlertSpec::Metric::kRowsPerSec: return "rows_per_sec";
    case AlertSpec::Metric::kScoreMean: return "score_mean";
    case AlertSpec::Metric::kScorePsi: return "score_psi";
  }
  return "?";
}

std::string_view AlertActionName(AlertSpec::Action action) {
  switch (action) {
    case AlertSpec::Action::kLog: return "log";
    case AlertSpec::Action::kWebhook: return "webhook";
    case AlertSpec::Action::kFail: return "fail";
  }
  return "?";
}

std::string_view ImputeKindName(ImputeKind kind) {
  switch (kind) {
    case ImputeKind::kNone: return "none";
    case ImputeKind::kMean: return "mean";
    case ImputeKind::kMedian: return "median";
    case ImputeKind::kMostFrequent: return "most_frequent";
    case ImputeKind::kConstant: return "constant";
    case ImputeKind::kNan: return "nan";
  }
  return "unknown";
}

std::string_view TransformKindName(TransformKind kind) {
  switch (kind) {
    case TransformKind::kLog1p: return "log1p";
    case TransformKind::kStandardize: return "standardize";
    case TransformKind::kMinMax: return "minmax";
    case TransformKind::kClip: return "clip";
  }
  return "unknown";
}

std::string_view DatetimePartName(DatetimePart part) {
  switch (part) {
    case DatetimePart::kHour: return "hour";
    case DatetimePart::kDayOfWeek: return "dow";
    case DatetimePart::kDay: return "day";
    case DatetimePart::kMonth: return "month";
    case DatetimePart::kYear: return "year";
    case DatetimePart::kEpoch: return "epoch";
  }
  return "unknown";
}

std::string_view TimeWindowName(TimeWindow window) {
  switch (window) {
    case TimeWindow::kHour: return "hour";
    case TimeWindow::kDay: return "day";
    case TimeWindow::kWeek: return "week";
    case TimeWindow::kMonth: return "month";
  }
  return "unknown";
}

std::string PartitionKey::DirName() const {
  if (window) return column + "_" + std::string(TimeWindowName(*window));
  if (buckets > 0) return column + "_bucket";
  return column;
}

std::optional<PartitionKey> PartitionSpec::OutputKey() const {
  PartitionKey key;
  key.column = column;
  switch (by) {
    case PartitionBy::kFiles:
    case PartitionBy::kSize: return std::nullopt;
    case PartitionBy::kTime: key.window = window; break;
    case PartitionBy::kColumn: break;
    case PartitionBy::kHash: key.buckets = buckets; break;
  }
  return key;
}

std::vector<std::string> FeatureSpec::OutputNames() const {
  if (one_hot.empty()) return {name};
  std::vector<std::string> out;
  out.reserve(one_hot.size());
  for (const std::string& c : one_hot) out.push_back(name + "=" + c);
  return out;
}

Result<JobSpec> ParseJobSpec(std::string_view yaml_text, const std::string& base_dir,
                             const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::ParserException& e) {
    return Status::InvalidArgument("line " + std::to_string(e.mark.line + 1) + ", column " +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(e.msg);
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return Status::InvalidArgument("the job spec must be a YAML mapping (input:, features:, model:, …)");
  for (const std::string& o : overrides) RETURN_IF_ERROR(config::ApplyOverride(&root, o));
  try {
    return ParseTree(root, base_dir);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(e.msg);
  }
}

Result<JobSpec> LoadJobSpec(Env* env, const std::string& path, const std::vector<std::string>& overrides) {
  Result<std::string> text = ReadFileToString(env, path);
  if (!text.ok()) return text.status();
  Result<JobSpec> spec = ParseJobSpec(*text, DirName(path), overrides);
  if (!spec.ok()) return spec.status().WithContext(path);
  return spec;
}

std::string JobSpec::ToCanonicalJson() const {
  nlohmann::ordered_json j;
  j["input"]["path"] = input.database.empty() ? input.path : RedactConnection(input.database);
  j["input"]["table"] = input.table;
  j["input"]["query"] = input.query;
  j["input"]["format"] = !input.format ? "auto" : InputFormatName(*input.format);
  j["input"]["csv"] = {{"delimiter", std::string(1, input.csv.delimiter)},
                       {"header", input.csv.header},
                       {"quote", std::string(1, input.csv.quote)},
                       {"null_values", input.csv.null_values}};
  j["input"]["schema"] = nlohmann::ordered_json::object();
  for (const auto& [col, t] : input.schema) j["input"]["schema"][col] = DataTypeName(t);
  j["features"] = nlohmann::ordered_json::array();
  for (const FeatureSpec& f : features) {
    nlohmann::ordered_json fj;
    fj["name"] = f.name;
    fj["from"] = f.column;
    fj["impute"] = ImputeKindName(f.impute);
    if (f.impute == ImputeKind::kConstant) {
      fj["impute_constant"] = f.one_hot.empty() && f.impute_number_ok ? nlohmann::ordered_json(f.impute_number)
                                                : nlohmann::ordered_json(f.impute_string);
    }
    fj["transform"] = nlohmann::ordered_json::array();
    for (const TransformSpec& t : f.transforms) {
      nlohmann::ordered_json tj = {{"kind", TransformKindName(t.kind)}};
      if (t.clip_min) tj["min"] = *t.clip_min;
      if (t.clip_max) tj["max"] = *t.clip_max;
      fj["transform"].push_back(tj);
    }
    fj["one_hot"] = f.one_hot;
    fj["unknown"] = f.unknown_category_is_error ? "error" : "zeros";
    fj["datetime"] = f.datetime ? nlohmann::ordered_json(DatetimePartName(*f.datetime)) : nullptr;
    j["features"].push_back(fj);
  }
  j["stats"] = stats_path.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(stats_path);
  if (!stats_inline_json.empty()) j["stats_inline"] = nlohmann::ordered_json::parse(stats_inline_json);
  static constexpr const char* kPartitionBy[] = {"files", "size", "time", "column", "hash"};
  j["partition"] = {{"by", kPartitionBy[static_cast<int>(partition.by)]},
                    {"target_bytes", partition.target_bytes},
                    {"column", partition.column},
                    {"window", TimeWindowName(partition.window)},
                    {"buckets", partition.buckets},
                    {"sample", partition.sample}};
  // Execution settings (workers, mode, memory) do not change the output, so a
  // run resumed with other settings is the same job; they are not in the spec hash.
  j["model"] = {{"path", model.path}, {"kind", model.kind}, {"load", model.lazy ? "lazy" : "preload"}};
  if (model.route) {
    j["model"]["route"] = {{"by", model.route->column},
                           {"models", model.route->models},
                           {"default", model.route->default_path},
                           {"cache_size", model.route->cache_size}};
  }
  j["model"]["outputs"] = nlohmann::ordered_json::object();
  for (const auto& [col, ref] : model.outputs) j["model"]["outputs"][col] = ref;
  if (batch_size_auto) {
    j["batch"]["size"] = "auto";
  } else {
    j["batch"]["size"] = batch_size;
  }
  if (max_rejected.fraction) {
    j["errors"]["max_rejected_fraction"] = *max_rejected.fraction;
  } else {
    j["errors"]["max_rejected"] = max_rejected.count.value_or(0);
  }
  static constexpr const char* kModes[] = {"append", "overwrite", "upsert"};
  j["output"] = {{"path", output.database.empty() ? output.path : RedactConnection(output.database)},
                 {"state_dir", output.path},
                 {"format", OutputFormatName(output.format)},
                 {"table", output.table},
                 {"mode", kModes[static_cast<int>(output.mode)]},
                 {"compression", output.compression == ParquetCompression::kZstd ? "zstd" : "snappy"},
                 {"keys", output.keys},
                 {"columns", output.columns},
                 {"labels", output.labels},
                 {"label_column", output.label_column}};
  j["output"]["partition_by"] = nlohmann::ordered_json::array();
  for (const PartitionKey& k : output.partition_by) {
    j["output"]["partition_by"].push_back(k.window ? k.column + ":" + std::string(TimeWindowName(*k.window)) : k.column);
  }
  if (output.threshold) {
    j["output"]["threshold"] = {{"column", output.threshold->column},
                                {"at", output.threshold->at},
                                {"label", output.threshold->label},
                                {"labels", output.threshold->labels}};
  }
  j["output"]["filter"] = nlohmann::ordered_json::array();
  static constexpr const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};
  for (const FilterSpec& f : output.filter) {
    nlohmann::ordered_json fj = {{"column", f.column}, {"op", kOps[static_cast<int>(f.op)]}};
    fj["value"] = f.number ? nlohmann::ordered_json(*f.number) : nlohmann::ordered_json(f.text);
    j["output"]["filter"].push_back(fj);
  }
  // monitoring is left out: it changes how a run reports, not what it writes,
  // and job.json (the job's identity) must not change with it.
  return j.dump(2);
}

}  // namespace sluice
