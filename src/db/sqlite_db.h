// A thin adapter over the SQLite 3 C API, shared by the SQLite source, planner
// and sink: a connection and its prepared statements as owning objects, SQLite
// result codes as Status codes, identifier quoting and the mapping of declared
// column types to Sluice types.
//
// Result codes -> Status codes (the code decides retries, STYLE.md):
//   SQLITE_BUSY, SQLITE_LOCKED (busy beyond the timeout)  kUnavailable (transient)
//   SQLITE_IOERR, SQLITE_PROTOCOL                         kIOError (transient)
//   SQLITE_FULL, SQLITE_NOMEM                             kResourceExhausted
//   SQLITE_CANTOPEN                                       kNotFound
//   SQLITE_CORRUPT, SQLITE_NOTADB                         kCorruption
//   SQLITE_CONSTRAINT                                     kAlreadyExists
//   SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH             kFailedPrecondition
//   SQLITE_INTERRUPT                                      kCancelled
//   anything else (SQL errors: no such table, syntax)     kInvalidArgument
// Messages are one line: "SQLite database '<path>': <SQLite's message>"; callers
// add the key path ("input.table 't': …").
//
// Thread-safety: a SqliteDb and its statements are used by one thread at a
// time; different connections may be used concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/schema.h"
#include "sluice/source.h"
#include "sluice/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice {

class SqliteDb;

// A prepared statement; finalized on destruction. Borrows its connection,
// which must outlive it.
class SqliteStmt {
 public:
  SqliteStmt() = default;
  SqliteStmt(SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteStmt();
  SqliteStmt(SqliteStmt&& other) noexcept;
  SqliteStmt& operator=(SqliteStmt&& other) noexcept;
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;

  sqlite3_stmt* get() const { return stmt_; }

  // Binds parameter `index` (1-based). BindText copies the text into SQLite;
  // BindTextNoCopy does not (for per-row binds): the text must then stay
  // valid until the statement is stepped and reset.
  Status BindInt64(int index, int64_t value);
  Status BindDouble(int index, double value);
  Status BindText(int index, std::string_view value);
  Status BindTextNoCopy(int index, std::string_view value);
  Status BindNull(int index);
  Status Bind(int index, const SqlParam& value);
  // Binds `params` to parameters first, first + 1, ….
  Status BindAll(const std::vector<SqlParam>& params, int first = 1);

  // Steps once: true when a row is ready, false when the statement is done.
  Result<bool> Step();
  // Steps until done (statements that return no rows).
  Status Run();
  // Resets the statement and clears its bindings, for reuse.
  void Reset();

  // Result columns of the current row (0-based).
  int column_count() const;
  int ColumnType(int col) const;  // SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL
  int64_t ColumnInt64(int col) const;
  double ColumnDouble(int col) const;
  // The value as text (numbers converted by SQLite); valid until the next Step or Reset.
  std::string_view ColumnText(int col) const;
  std::string ColumnName(int col) const;
  // The declared type of a result column that is a table column, else "".
  std::string ColumnDeclType(int col) const;

 private:
  SqliteDb* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteDb {
 public:
  enum class Access {
    kReadOnly,  // SQLITE_OPEN_READONLY: a missing file is kNotFound
    kReadWrite  // created when missing
  };

  // Opens `path` (a file; never a URI) with a busy timeout: a statement that
  // finds the database locked waits up to `busy_timeout_ms` before failing
  // with kUnavailable.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path, Access access, int busy_timeout_ms);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

  // Runs SQL without parameters (one or more statements).
  Status Exec(std::string_view sql);
  // Prepares the first statement of `sql`; kInvalidArgument if more follow.
  Result<SqliteStmt> Prepare(std::string_view sql);
  // The Status for result code `rc` of a call on this connection (see above).
  Status Error(int rc) const;

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// `name` as an SQL identifier: double-quoted, inner quotes doubled ("a""b").
std::string QuoteSqliteIdentifier(std::string_view name);

// The Sluice type of a declared SQLite column type, by the first rule that
// matches the upper-cased name: BOOL -> bool; DATE or TIMESTAMP (DATE,
// DATETIME, TIMESTAMP, TIMESTAMPTZ) -> timestamp; INT -> int64; CHAR, CLOB,
// TEXT -> string; REAL, FLOA, DOUB, NUMERIC, DECIMAL -> float64. Others (BLOB,
// none, unknown names) -> nullopt: the type is inferred from the values.
std::optional<DataType> SqliteDeclaredType(std::string_view declared);

// The declared type Sluice gives a column of `type` in tables it creates:
// int64 INTEGER, float32 and float64 REAL, bool BOOLEAN (0/1), string TEXT,
// timestamp TIMESTAMP (ISO-8601 text). SqliteDeclaredType maps each back.
std::string_view SqliteColumnType(DataType type);

}  // namespace sluice
