// Parquet reader behind OpenSource / InferSchema, through DuckDB's read_parquet
// (source/duckdb_util.h). DuckDB opens the files itself, not through Env.
//
// Columns and types (a file column reads as the Sluice type of its Parquet type):
//   TINYINT … BIGINT, UTINYINT … UINTEGER     int64
//   UBIGINT                                   int64; a value above int64 rejects its row (bad_value)
//   FLOAT / DOUBLE / DECIMAL                  float32 / float64 / float64
//   BOOLEAN                                   bool
//   VARCHAR, ENUM, UUID                       string
//   TIMESTAMP (s, ms, us, ns; with or without time zone)
//                                             timestamp: microseconds UTC (ns truncated)
//   DATE                                      date
// Other types (lists, structs, maps, blobs, intervals, times, …) cannot be
// read: InferSchema leaves such a column out of the schema and logs a warning
// naming the file, column and type; a job that names it then fails at preflight
// with the stage's "no input column" error. input.schema may declare a file
// column as its own type, float32/float64 (numeric columns), timestamp (date
// columns) or string (any readable column, as DuckDB writes the value);
// anything else is an InvalidArgument at InferSchema naming the column.
//
// Hive partitions: every directory of a file's path named "key=value" adds a
// column `key` (outermost first, after the file's columns) whose value is the
// same for the whole file: "value" percent-decoded, null for
// "__HIVE_DEFAULT_PARTITION__" and "__null__", "" for "__empty__" (so Sluice's
// own partitioned output reads back). Hive columns are strings unless
// input.schema declares another type; a value that does not parse as it is an
// error naming the file and the column. A key that is also a column of the
// file, or appears twice in a path, is an error.
//
// Ranges: rows [begin, end) of the file in file order (DuckDB's
// file_row_number; its row-group pruning reads only the groups the range
// touches), and of those the rows that satisfy InputRange::filter (SQL over the
// file's columns, with `?` placeholders bound to InputRange::params). Hive
// values come from InputRange::hive, or from the path when that is empty.
// Batch::row_lines and Reject::line hold the 1-based row number in the file.
//
// Batches end at options.batch_rows rows, or once the rows read for them
// (sampled out and rejected ones included) hold options.max_batch_bytes of
// decoded values: 8 bytes per fixed-width value plus the bytes of strings;
// bytes_read() counts the same. Sampling: RowSampler (source_common.h) on the
// typed values of the sample keys; without keys, on (file path, row number).
//
// Memory: one in-memory DuckDB database per Source (threads = 1, memory_limit
// kParquetSourceMemoryLimit), taken from options.duckdb_pool when set (and
// given back when the Source is destroyed), read as a stream of data chunks;
// only the selected columns are read. The Batch is reused.
//
// Thread-safety: a Parquet Source is used by one thread at a time; the free
// functions are safe to call concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/env.h"
#include "sluice/reject.h"
#include "sluice/schema.h"
#include "sluice/source.h"
#include "sluice/status.h"
#include "source/duckdb_util.h"
#include "source/source_common.h"

namespace sluice {

// A column of a Parquet file as DuckDB reads it.
struct ParquetColumn {
  std::string name;
  std::string duck_type;  // DuckDB's type name, for messages: "BIGINT", "LIST", …
  // The Sluice type it reads as; nullopt when Sluice cannot read it.
  std::optional<DataType> type;
  bool wide_int = false;  // UBIGINT (HUGEINT, UHUGEINT): may not fit int64
};

// The columns of the Parquet file at `path` (its footer), readable or not.
// kNotFound for a missing file; a file that is not Parquet (empty, truncated,
// wrong magic, unreadable footer) is kCorruption; messages name the file.
Result<std::vector<ParquetColumn>> ReadParquetColumns(DuckDb* db, const std::string& path);

// How a Source reads `column` as `type`: `expr` is SQL over read_parquet's
// columns giving the value as BIGINT (int64; timestamps and dates as epoch
// microseconds), FLOAT, DOUBLE, BOOLEAN or VARCHAR, as `type` stores it.
// `check`, when not empty, is SQL that is the value's text when it does not fit
// `type` (wide integers outside int64), else NULL. InvalidArgument naming the
// file and column when `column` cannot be read as `type` (see the file comment).
struct ParquetRead {
  std::string expr;
  std::string check;
};
Result<ParquetRead> ParquetReadExpression(const std::string& path, const ParquetColumn& column, DataType type);

// The hive partitions of `path`: each directory component "key=value" as
// {key, raw value}, outermost first. InvalidArgument naming the file when a key
// repeats or is empty.
Result<std::vector<std::pair<std::string, std::string>>> HivePartitions(const std::string& path);

// A raw hive directory value as a value: see the file comment (nullopt = null).
std::optional<std::string> HiveValue(std::string_view raw);

// Hive column `key` of `path`, whose directory says `raw`, as a value of `type`
// in *cell (a string borrows *text, which must outlive the cell's use).
// InvalidArgument naming the file and column when it does not parse.
Status ParseHiveCell(const std::string& path, const std::string& key, std::string_view raw, DataType type,
                     std::string* text, Cell* cell);

// The schema of a Parquet file: its readable columns in file order, then its
// hive columns, typed by options.declared_types where declared. `columns` are
// the file's columns from ReadParquetColumns.
Result<Schema> ParquetSchema(const std::string& path, const std::vector<ParquetColumn>& columns,
                             const SourceOptions& options);

// A database as a Parquet Source uses it (memory_limit kParquetSourceMemoryLimit),
// from `pool` (may be null: a new one). Schema inference and the planner take
// theirs the same way, so the job's first Source reuses the planner's database
// instead of opening another.
Result<PooledDuckDb> TakeParquetSourceDb(DuckDbPool* pool);

// InferSchema for Parquet files (takes a database for the footer from
// options.duckdb_pool, or opens one).
Result<Schema> InferParquetSchema(Env* env, const std::string& path, const SourceOptions& options);

// OpenSource for Parquet files. `rejects` is borrowed and must outlive the Source.
Result<std::unique_ptr<Source>> OpenParquetSource(Env* env, const InputRange& range, const Schema& file_schema,
                                                  const SourceOptions& options, RejectSink* rejects);

}  // namespace sluice
