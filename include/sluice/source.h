// Sources read the rows of one work unit (a file, a byte range of one, row
// groups of a Parquet file, or a slice of a database table or query) into
// Batches. Bad rows go to a RejectSink with their location; the source goes on.
// A Source latches its first hard error (I/O, corruption of the whole stream):
// once Next returns an error it keeps returning it.
//
// Thread-safety: a Source is used by one thread at a time.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/batch.h"
#include "sluice/env.h"
#include "sluice/reject.h"
#include "sluice/schema.h"
#include "sluice/status.h"

namespace sluice {

enum class InputFormat { kCsv, kJsonl, kParquet, kSqlite, kPostgres };

// "csv", "jsonl", "parquet", "sqlite", "postgres".
std::string_view InputFormatName(InputFormat format);
// SQLite and PostgreSQL: the input is a database, not files.
inline bool IsDatabase(InputFormat format) {
  return format == InputFormat::kSqlite || format == InputFormat::kPostgres;
}

struct CsvOptions {
  char delimiter = ',';
  bool header = true;
  char quote = '"';
  std::vector<std::string> null_values = {"", "NA", "null"};
};

class DuckDbPool;  // source/duckdb_util.h

// What a source needs to know, resolved from the job spec.
struct SourceOptions {
  InputFormat format = InputFormat::kCsv;
  CsvOptions csv;
  // Declared column types (input.schema); others are inferred.
  std::map<std::string, DataType> declared_types;
  // Columns to materialize, in this order; empty = all columns of the file.
  std::vector<std::string> columns;
  size_t batch_rows = 4096;
  // A batch also ends once the records read for it span at least this many
  // input bytes (it always holds at least one row); 0 = rows only. Bounds a
  // batch's memory whatever the row width (execution.memory_limit).
  size_t max_batch_bytes = 0;
  // Rows read to infer types of undeclared columns.
  size_t infer_rows = 1000;
  // Databases: input.table (quoted as an identifier) or input.query (any
  // SELECT, used as a subquery); exactly one is set.
  std::string table;
  std::string query;
  // partition.sample: a row is kept iff SampleKeep(hash, sample), where hash is
  // MixHash of the HashKey* hashes (core/hash.h) of the typed values of
  // `sample_keys` in order (selected columns, by name; another name is
  // InvalidArgument at OpenSource) or, when there are none,
  // HashRowLocation(file path, line). Rows are checked first: a bad row is
  // rejected whatever its hash. Dropped rows are counted by rows_sampled_out(),
  // never rejected, never seen downstream.
  double sample = 1.0;
  std::vector<std::string> sample_keys;
  // Parquet: where Sources take their DuckDB database from and give it back
  // when destroyed, so that the units of a job reuse a few databases instead of
  // opening one each; shared by every copy of these options (a Source keeps
  // its copy). Null: each Source opens and closes its own.
  std::shared_ptr<DuckDbPool> duckdb_pool;
};

// A value bound to a placeholder of InputRange::filter. Values are always
// bound as parameters, never spliced into SQL text.
using SqlParam = std::variant<std::monostate, int64_t, double, std::string>;  // monostate = NULL

// What one work unit reads.
//  - CSV / JSON Lines: bytes [begin, end) of `path` — records starting in the
//    range belong to the unit. Whole file by default. `begin` is 0 or the
//    first byte of a record (the planner finds record boundaries); a record
//    starting before `end` is read whole even if it runs past it.
//  - Parquet: rows [begin, end) of `path` in file order (row-group aligned
//    by the planner; end = max: to the end), plus `hive` values and `filter`.
//  - SQLite / PostgreSQL: `path` is the database (SQLite file, or PostgreSQL
//    connection string); the rows of the input table/query that satisfy
//    `filter` (empty = all rows). begin/end are unused.
struct InputRange {
  InputRange() = default;
  // A file, or bytes [begin, end) of it (CSV/JSONL).
  explicit InputRange(std::string path, uint64_t begin = 0, uint64_t end = std::numeric_limits<uint64_t>::max(),
                      int64_t first_line = 0)
      : path(std::move(path)), begin(begin), end(end), first_line(first_line) {}

  std::string path;
  uint64_t begin = 0;
  uint64_t end = std::numeric_limits<uint64_t>::max();
  // CSV/JSONL: 1-based physical line of the record at `begin` when the planner
  // knows it (0 = unknown: the source counts newlines before `begin`).
  int64_t first_line = 0;
  // Parquet: values of the file's hive partition directories
  // (".../date=2024-01-01/region=eu/x.parquet" -> {date, 2024-01-01}, {region, eu}),
  // outermost first; they are columns of the input like any other.
  std::vector<std::pair<std::string, std::string>> hive;
  // Parquet and databases: a SQL predicate over the input's columns with
  // positional placeholders written `?` (the source renumbers them for
  // PostgreSQL), and the values bound to them, in order. Built by the planner
  // from partition.by time / column / hash.
  std::string filter;
  std::vector<SqlParam> params;
  // Human-readable description of the unit's slice for plans, errors and
  // reports: "rows 0-122879", "rowid 1-50000", "ts in [2024-01-01, 2024-01-02)".
  // Never holds a password.
  std::string label;
};

class Source {
 public:
  virtual ~Source() = default;
  // Schema of the batches produced: the selected columns in order.
  virtual const Schema& schema() const = 0;
  // Fills *batch (reset first) with up to batch_rows rows. Returns false when the
  // range is exhausted (batch then empty). Bad rows are skipped and reported.
  virtual Result<bool> Next(Batch* batch) = 0;
  // Input bytes consumed so far (for progress and metrics).
  virtual uint64_t bytes_read() const = 0;
  // Rows left out by SourceOptions::sample so far.
  virtual int64_t rows_sampled_out() const = 0;
  // Changes batch_rows / max_batch_bytes for the following batches (the
  // executor shrinks batches whose measured memory exceeds their share).
  virtual void SetBatchLimits(size_t batch_rows, size_t max_batch_bytes) = 0;
};

// Reads the header and first rows of `path` and returns the file's schema
// (declared types win; others inferred: int64, float64, bool, timestamp, else
// string). Parquet: the file's own column types (plus hive columns, strings
// unless declared). Databases: `path` is the database; the columns of the
// table or query and their SQL types mapped to Sluice types.
Result<Schema> InferSchema(Env* env, const std::string& path, const SourceOptions& options);

// Opens a reader over `range`. `file_schema` is from InferSchema on the same
// file (or the first file of the input). `rejects` is borrowed, must outlive the Source.
Result<std::unique_ptr<Source>> OpenSource(Env* env, const InputRange& range,
                                           const Schema& file_schema,
                                           const SourceOptions& options, RejectSink* rejects);

}  // namespace sluice
