// DuckDB glue (DuckDB 1.4 C API) shared by the Parquet planner, source and
// sink: an in-memory database with one connection, prepared statements with
// bound values (values are never spliced into SQL text), results read chunk by
// chunk, and DuckDB errors as Status.
//
// Every database is opened with threads = 1 (Sluice's workers are the
// parallelism) and TimeZone = UTC (text cast to TIMESTAMPTZ reads as UTC), and
// has the functions sluice_bucket(value, buckets) (see RegisterSluiceFunctions)
// and sluice_chunks (see DuckChunkList).
//
// Errors: the first line of DuckDB's message, without its "… Error: " prefix.
// The code follows DuckDB's error type: I/O -> kIOError, out of memory ->
// kResourceExhausted, interrupted -> kCancelled, invalid input (bad or
// truncated files) -> kCorruption, DuckDB internal errors -> kInternal, the rest
// (SQL, binding, conversion) -> kInvalidArgument.
//
// Thread-safety: a DuckDb (one connection) and everything made from it
// (statements, results, chunks) are used by one thread at a time. Different
// DuckDbs may be used at once, connections to the same database included
// (DuckDB runs each connection's query in its calling thread).
// Ownership: statements and results borrow their DuckDb, which must outlive
// them; chunks own their data.
#pragma once

#include <duckdb.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/source.h"
#include "sluice/status.h"

namespace sluice {

struct DuckDbOptions {
  int threads = 1;
  // DuckDB's memory_limit ("64MB"); empty: DuckDB's default (80% of RAM).
  std::string memory_limit;
  // Where DuckDB spills what does not fit memory_limit; empty: DuckDB's default.
  std::string temp_directory;

  bool operator==(const DuckDbOptions&) const = default;
};

// A data chunk of a result (up to duckdb_vector_size() rows). Accessors take a
// column index and a row index below size(); the typed ones require the
// column's physical type (BIGINT, DOUBLE, VARCHAR).
class DuckChunk {
 public:
  explicit DuckChunk(duckdb_data_chunk chunk = nullptr) : chunk_(chunk) {}
  DuckChunk(DuckChunk&& other) noexcept : chunk_(other.chunk_) { other.chunk_ = nullptr; }
  DuckChunk& operator=(DuckChunk&& other) noexcept;
  DuckChunk(const DuckChunk&) = delete;
  DuckChunk& operator=(const DuckChunk&) = delete;
  ~DuckChunk();

  explicit operator bool() const { return chunk_ != nullptr; }
  size_t size() const { return duckdb_data_chunk_get_size(chunk_); }
  duckdb_vector vector(size_t col) const { return duckdb_data_chunk_get_vector(chunk_, col); }

  bool IsNull(size_t col, size_t row) const;
  int64_t Int64At(size_t col, size_t row) const;
  double DoubleAt(size_t col, size_t row) const;
  std::string_view StringAt(size_t col, size_t row) const;

 private:
  duckdb_data_chunk chunk_;
};

// The text of a VARCHAR value; valid while its chunk lives.
inline std::string_view DuckString(duckdb_string_t* value) {
  return {duckdb_string_t_data(value), duckdb_string_t_length(*value)};
}

// A query result, read front to back with Next.
class DuckResult {
 public:
  DuckResult() = default;
  DuckResult(DuckResult&& other) noexcept;
  DuckResult& operator=(DuckResult&& other) noexcept;
  DuckResult(const DuckResult&) = delete;
  DuckResult& operator=(const DuckResult&) = delete;
  ~DuckResult();

  size_t column_count();
  std::string column_name(size_t col);
  // The column's DuckDB type; the caller destroys it (duckdb_destroy_logical_type).
  duckdb_logical_type column_logical_type(size_t col);
  // The next chunk; an empty DuckChunk at the end.
  Result<DuckChunk> Next();

 private:
  friend class DuckStatement;
  duckdb_result result_{};
  bool valid_ = false;
};

// A prepared statement with `?` placeholders, numbered 0, 1, … in text order.
class DuckStatement {
 public:
  DuckStatement(DuckStatement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  DuckStatement& operator=(DuckStatement&& other) noexcept;
  DuckStatement(const DuckStatement&) = delete;
  DuckStatement& operator=(const DuckStatement&) = delete;
  ~DuckStatement();

  Status Bind(size_t index, const SqlParam& value);
  // Binds `values` to placeholders first, first + 1, …
  Status BindAll(const std::vector<SqlParam>& values, size_t first = 0);
  // Runs the statement; the whole result is in memory (small results).
  Result<DuckResult> Query();
  // Runs the statement; chunks are computed as Next asks for them.
  Result<DuckResult> Stream();

 private:
  friend class DuckDb;
  explicit DuckStatement(duckdb_prepared_statement stmt) : stmt_(stmt) {}
  Result<DuckResult> Run(bool stream);
  duckdb_prepared_statement stmt_;
};

// A connection to an in-memory database. Open makes a new database; more
// connections to it come from DuckDbPool::Share. The database lives until its
// last connection is destroyed; its tables, settings and functions belong to
// all of its connections.
class DuckDb {
 public:
  static Result<std::unique_ptr<DuckDb>> Open(const DuckDbOptions& options = {});
  ~DuckDb();
  DuckDb(const DuckDb&) = delete;
  DuckDb& operator=(const DuckDb&) = delete;

  // Runs `sql` (no placeholders), discarding any rows.
  Status Execute(const std::string& sql);
  Result<DuckStatement> Prepare(const std::string& sql);
  duckdb_connection connection() const { return con_; }

 private:
  friend class DuckDbPool;
  struct Database;  // closes the database when destroyed
  DuckDb() = default;
  // A new connection (TimeZone = UTC) to `db`.
  static Result<std::unique_ptr<DuckDb>> Connect(std::shared_ptr<Database> db);
  std::shared_ptr<Database> db_;
  duckdb_connection con_ = nullptr;
};

// A database taken from a DuckDbPool: goes back to the pool (or, taken
// without one, is closed) when the pointer is destroyed.
class DuckDbPool;
struct DuckDbRelease {
  DuckDbPool* pool = nullptr;
  DuckDbOptions options;
  void operator()(DuckDb* db) const;
};
using PooledDuckDb = std::unique_ptr<DuckDb, DuckDbRelease>;

// Idle in-memory databases kept for reuse. Opening a database costs a few
// milliseconds of CPU (its catalog and the linked extensions: as much as
// reading ~20,000 Parquet rows of 20 doubles), and closing one hands all of
// DuckDB's memory back to the system, to be faulted in again by the next one;
// a job would pay both once per work unit.
//
// A database goes back as its holder leaves it, so a holder drops what it
// created (tables, settings it changed) and holds no statement or result of it
// when it gives it back. Idle databases hold their catalog and no data; the
// pool keeps at most as many as were in use at once.
//
// Thread-safety: safe for concurrent use; each database is used by its one
// holder. The pool must outlive every database taken from it.
class DuckDbPool {
 public:
  DuckDbPool() = default;
  DuckDbPool(const DuckDbPool&) = delete;
  DuckDbPool& operator=(const DuckDbPool&) = delete;

  // An idle database opened with `options`, else a new one (DuckDb::Open).
  // `pool` may be null: then always a new one, closed when released.
  static Result<PooledDuckDb> Take(DuckDbPool* pool, const DuckDbOptions& options);
  // A connection of the caller's own to a database of the pool opened with
  // `options`, idle or in use, else Take(pool, options). For holders that
  // change nothing database-wide (no tables, no settings) and need little of
  // its memory_limit beside the other holders'. Released, the connection
  // closes; the database stays with its holder or the pool.
  static Result<PooledDuckDb> Share(DuckDbPool* pool, const DuckDbOptions& options);
  // Closes `db` instead of giving it back (its holder cannot leave it clean).
  static void Close(PooledDuckDb db);

  // Databases waiting to be taken again.
  size_t idle();
  // Hands the idle databases over to the end of the process, never closed:
  // for a process that exits once its job is done, where closing them only
  // costs time (about 2.5 ms of CPU each, DuckDB destroying its catalog; all
  // of it on one core at the very end of the run). They stay reachable (no
  // leak report). Databases taken later are new ones. Idle databases hold no
  // data and nothing spilled (see above), so nothing is lost at exit.
  void LeaveIdleToExit();

 private:
  friend struct DuckDbRelease;
  void GiveBack(std::unique_ptr<DuckDb> db, const DuckDbOptions& options);

  std::mutex mu_;
  std::vector<std::pair<DuckDbOptions, std::unique_ptr<DuckDb>>> idle_;  // guarded by mu_
  // Every database the pool opened, while it lives (for Share).
  std::vector<std::pair<DuckDbOptions, std::weak_ptr<DuckDb::Database>>> opened_;  // guarded by mu_
};

// The settings of the databases the Parquet planner and sources read with
// (source/parquet_source.h, TakeParquetSourceDb). Parquet part writers copy
// the rows they hold through connections shared with these databases.
inline constexpr std::string_view kParquetSourceMemoryLimit = "256MB";
inline DuckDbOptions ParquetReadDbOptions() {
  DuckDbOptions options;
  options.memory_limit = std::string(kParquetSourceMemoryLimit);
  return options;
}

// Data chunks held by the caller, read in SQL as the table sluice_chunks(id),
// where id is the list's number in the process, bound as a BIGINT parameter
// (Param()): its columns are named and typed as given, its rows are the
// chunks' rows in order, handed to DuckDB by reference (no copy). An id of no
// live list is a bind error. DuckDb::Open registers the function. The list
// must stay unchanged while a statement reads it.
//
// Thread-safety: one thread at a time per list; lists are made and destroyed
// on any thread.
class DuckChunkList {
 public:
  DuckChunkList(std::vector<std::string> names, const std::vector<duckdb_type>& types);
  DuckChunkList(const DuckChunkList&) = delete;
  DuckChunkList& operator=(const DuckChunkList&) = delete;
  ~DuckChunkList();

  // A new empty chunk at the end of the list (up to duckdb_vector_size() rows),
  // for the caller to fill; it stays the list's.
  duckdb_data_chunk Add();
  // Destroys the chunks.
  void Clear();
  const std::vector<duckdb_data_chunk>& chunks() const { return chunks_; }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<duckdb_logical_type>& logical_types() const { return logical_types_; }
  // The value to bind to sluice_chunks' parameter.
  SqlParam Param() const { return id_; }
  // The live list numbered `id`, else null.
  static const DuckChunkList* Find(int64_t id);

 private:
  const int64_t id_;
  const std::vector<std::string> names_;
  std::vector<duckdb_logical_type> logical_types_;  // owned
  std::vector<duckdb_data_chunk> chunks_;
};

// sluice_bucket(value, buckets) -> BIGINT: the hash bucket of `value` (BIGINT,
// FLOAT, DOUBLE, BOOLEAN or VARCHAR; NULL too) as sink/partition_layout.h
// HashBucket computes it for the Sluice column holding that value: MixHash of
// the HashKey* hash (core/hash.h) mod buckets. It does not depend on DuckDB's
// own hash(), so buckets stay the same across DuckDB versions. DuckDb::Open
// registers it, and sluice_chunks (DuckChunkList).
Status RegisterSluiceFunctions(duckdb_connection con);

// "name" with inner quotes doubled: an SQL identifier.
std::string QuoteIdentifier(std::string_view name);
// 'text' with inner quotes doubled: an SQL string literal (for statements that
// take no parameters, such as SET).
std::string QuoteLiteral(std::string_view text);

// A DuckDB error message as a Status (see the file comment).
Status DuckError(duckdb_error_type type, const char* message);

}  // namespace sluice
