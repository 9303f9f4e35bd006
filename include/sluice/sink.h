// Sinks write the output of one work unit as one part: one file, or with
// output.partition_by one file per partition directory the unit's rows fall
// in (out/ts_day=2024-01-05/merchant=travel/part-00007.csv). A file becomes
// visible only on Commit: it is written under a temporary name (".part-…tmp"
// beside it), synced, renamed into place and its directory synced. Abort (or
// destruction without Commit) removes the temporaries; a file never appears
// half-written.
//
// Partition values become directory names that cannot escape the output
// directory: bytes other than [A-Za-z0-9_.-] are percent-encoded (%2F, %00, …),
// "." and ".." are encoded, a value starting with "__" has its first "_"
// encoded, null is "__null__", the empty string "__empty__", and an encoded
// value longer than 128 bytes is cut and suffixed with "~" and 16 hex digits of
// the SHA-256 of the raw value. Plain partition columns are left out of the
// files (their value is the directory, as Hive/Spark/pandas do); time-bucket
// and hash-bucket levels keep their source column.
//
// Thread-safety: a PartWriter is used by one thread at a time. Different parts
// may be written concurrently.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sluice/batch.h"
#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

struct PartFile {
  std::string path;  // relative to the output directory: "part-00007.csv", "ts_day=2024-01-05/part-00007.csv"
  int64_t rows = 0;
  uint64_t bytes = 0;
  std::string sha256;  // hex, of the file's bytes
};

class PartWriter {
 public:
  virtual ~PartWriter() = default;
  // Appends the rows of `batch`; its schema must equal the schema given at open.
  virtual Status Write(const Batch& batch) = 0;
  // Completes every file of the part under its temporary name, not yet durable
  // nor visible: the CPU work of the end of a part (a Parquet file's encoding),
  // so that Commit is left with the disk's (sync, rename). Only Commit or Abort
  // may follow. Errors drop the part, as Abort.
  virtual Status Finish() = 0;
  // Finishes the part (Finish, when not called yet), then makes it durable and
  // visible atomically: every file synced, renamed into place, directories synced.
  virtual Status Commit() = 0;
  // Drops everything written. Safe to call more than once.
  virtual void Abort() = 0;
  virtual int64_t rows_written() const = 0;
  virtual uint64_t bytes_written() const = 0;
  // The committed files, sorted by path; valid after Commit. Unpartitioned:
  // exactly one (a header-only CSV when there were no rows). Partitioned: one
  // per partition that received rows (none when there were no rows).
  virtual const std::vector<PartFile>& files() const = 0;
};

struct PartOptions {
  OutputFormat format = OutputFormat::kCsv;
  std::string dir;  // output directory
  int part_index = 0;
  Schema schema;    // schema of the batches written (partition columns included)
  std::vector<PartitionKey> partition_by;
  // Columns of the batches that serve only the layout (added for partition_by,
  // not asked for in the output): not written into the files either.
  std::vector<std::string> layout_only_columns;
  // Files kept open at once per writer (partitioned output); others are closed
  // and reopened for append when rows for them come again. Bounds descriptors
  // and buffers whatever the number of partitions.
  size_t max_open_files = 64;
  // Parquet: the column chunks' compression (output.compression).
  ParquetCompression compression = ParquetCompression::kZstd;
  // Parquet: where the writer takes its DuckDB database from and gives it back
  // when destroyed (SourceOptions::duckdb_pool); null: it opens its own.
  std::shared_ptr<DuckDbPool> duckdb_pool;
};

// Opens the writer for part `part_index` (formats csv, jsonl, parquet).
// Parquet parts are written by DuckDB straight to the temporary file (not
// through Env, which DuckDB cannot use: `env` must be the real file system);
// syncing, hashing and the rename go through Env. A Parquet part without rows
// is a file with the schema and no rows. kInvalidArgument, naming
// output.partition_by[i], when a partition column is missing from the schema or
// a time window is asked of a column that is not a timestamp or date;
// kNotSupported for parquet in a build without DuckDB.
Result<std::unique_ptr<PartWriter>> OpenPartWriter(Env* env, const PartOptions& options);

// Memory a part writer of `format` with `num_columns` columns holds beyond the
// batches given to it: Parquet stages its rows in DuckDB (its memory_limit,
// which grows with the columns, and what DuckDB holds outside it; more rows
// spill to disk under <out>/_sluice/spill/); text formats hold only small
// buffers (0).
uint64_t PartWriterMemory(OutputFormat format, size_t num_columns);

// The file name of part `part_index` in `format`: "part-00007.csv".
std::string PartFileName(OutputFormat format, int part_index);

// ---- database sinks (output.format sqlite | postgres) -----------------------
//
// The unit's rows and its progress row in `sluice_units` are committed in one
// transaction (DESIGN.md §4), so a unit is in the table entirely or not at all.
// sluice_units (created if missing, in the same database/schema as the table):
//   job         text     the job fingerprint (JobFingerprint::Digest)
//   unit        text     unit id ("00007")
//   tbl         text     output.table
//   marker      text     the unit marker as JSON (rows, rejects)
//   committed_at         commit time
//   PRIMARY KEY (job, unit)
// The primary key makes a second commit of the same unit fail; the writer
// then rolls back and reports the unit as committed already ("first commit
// wins"): retries after a lost connection (COMMIT sent, answer lost) and
// duplicate attempts never duplicate rows.

// One unit's writer. Used by one thread.
class TableUnitWriter {
 public:
  virtual ~TableUnitWriter() = default;
  // Stages the rows of `batch` (the schema given to OpenTableSink).
  virtual Status Write(const Batch& batch) = 0;
  // One transaction: the staged rows into output.table (append, or upsert on
  // output.keys) and the progress row (job, unit, marker_json). Returns true
  // when this call committed, false when the progress row existed already (an
  // earlier attempt committed; this attempt's rows are discarded).
  // Transient failures (connection lost, busy beyond the timeout) are kUnavailable/kIOError.
  virtual Result<bool> Commit(const std::string& marker_json) = 0;
  // Drops the staged rows. Safe to call more than once.
  virtual void Abort() = 0;
  virtual int64_t rows_written() const = 0;
};

// One job's database sink. Thread-safe: every method may be called
// concurrently (each unit writer has its own connection).
class TableSink {
 public:
  virtual ~TableSink() = default;
  // The marker JSON of `unit_id` when this job (fingerprint) committed it, else nullopt.
  virtual Result<std::optional<std::string>> CommittedMarker(const std::string& unit_id) = 0;
  // Creates output.table (the columns of `schema`) when missing, and for
  // upsert the unique index on output.keys; errors name the column when an
  // existing table does not fit `schema`. For overwrite, empties the table
  // when the job has not started before: in one transaction that serializes
  // concurrent runs (shards), it checks for a progress row (job, unit '') and,
  // when there is none, deletes the table's rows and inserts that row. A
  // resumed run or a second shard therefore never deletes committed units.
  // Call once before OpenUnit.
  virtual Status PrepareTable(const Schema& schema) = 0;
  virtual Result<std::unique_ptr<TableUnitWriter>> OpenUnit(const std::string& unit_id) = 0;
};

// Read-only preflight: the database is reachable, and output.table, if it
// exists, has a column of a compatible type for every field of `schema`
// (for upsert, the output.keys columns among them). Errors name the table and
// the column; connection strings are redacted.
Status CheckTableSink(const OutputSpec& output, const Schema& schema);

// Connects and creates sluice_units when missing. `fingerprint` is the job's
// (JobFingerprint::Digest): progress rows are keyed on it.
Result<std::unique_ptr<TableSink>> OpenTableSink(const OutputSpec& output, const std::string& fingerprint);

}  // namespace sluice
