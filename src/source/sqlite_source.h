// SQLite reader behind OpenSource / InferSchema (input.format sqlite), and the
// input connection the SQLite planner shares with it.
//
// Input: input.table (quoted as an identifier) or input.query (one SELECT,
// trailing ';' allowed, used as a subquery). A unit reads
//   SELECT "c1", "c2", … FROM "table" [WHERE <range.filter>] ORDER BY rowid
//   SELECT "c1", "c2", … FROM (<query>) [WHERE <range.filter>]
// with range.params bound (never spliced); a table without a rowid (WITHOUT
// ROWID, a view) is read in SQLite's order, as is a query. The database is
// opened read-only (SQLITE_OPEN_READONLY) with a 30 s busy timeout, so a
// writer in WAL mode never blocks it and a locked database waits instead of
// failing (past the timeout: kUnavailable, retried).
//
// Types (InferSchema): input.schema wins; else the declared type of the
// column (a table's columns, and a query's result columns that are table
// columns: sqlite3_column_decltype) by SqliteDeclaredType (db/sqlite_db.h):
// integers -> int64; real/float/double/numeric/decimal -> float64; char/text/
// clob -> string; bool/boolean -> bool; date/datetime/timestamp -> timestamp
// (a date is midnight UTC). Columns without one (expressions, typeless or BLOB
// columns) are inferred from the first options.infer_rows rows by their storage
// classes: only INTEGER -> int64, INTEGER and REAL -> float64, TEXT -> timestamp
// if every value parses as one, else string; only NULLs -> float64.
//
// Values, by storage class and column type:
//   NULL                    null
//   INTEGER                 int64, float (widened), bool (0/1 only), string (decimal text)
//   REAL                    float, string (SQLite's text of it)
//   TEXT                    string (must be UTF-8); other types parse it as CSV
//                           does (batch/value_parse.h: "42", "3.5", "true",
//                           ISO-8601 timestamps "2024-01-05T10:00:00Z",
//                           "2024-01-05 10:00:00", "2024-01-05"); empty text
//                           in a non-string column is null
//   BLOB                    never (bad_value)
// Anything else rejects the row: bad_value (e.g. text in an INTEGER column,
// REAL in an int64 column, an INTEGER in a timestamp column) or invalid_utf8,
// with Reject::file "<database> table <t>" / "<database> query", Reject::line
// the row's 1-based ordinal within the unit (Batch::row_lines too), and the
// message "input '<database> table t' rowid 1-50000 row 7, column 'x': …".
//
// Batches end at options.batch_rows rows, or once their values span
// options.max_batch_bytes (text and BLOB bytes, 8 per number); bytes_read()
// counts the same. With options.sample < 1, rows are kept by RowSampler
// (source_common.h) on their typed values, or without sample keys on the
// unit's label and the row's ordinal.
//
// Memory: one row at a time from SQLite; the Batch is reused; no per-row
// allocation.
//
// Thread-safety: a SQLite Source is used by one thread at a time; each has its
// own connection.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "db/sqlite_db.h"
#include "sluice/reject.h"
#include "sluice/schema.h"
#include "sluice/source.h"
#include "sluice/status.h"

namespace sluice {

// Busy timeout of input connections.
inline constexpr int kSqliteInputBusyTimeoutMs = 30000;

// The SQL function registered on every input connection for partition.by
// hash: sluice_bucket(value, type, buckets) is MixHash(HashCell(value read as
// `type` (a DataTypeName) by the rules above)) % buckets — the bucket
// sink/partition_layout.h HashBucket gives the same value in a Column of that
// type. A value the source would reject hashes as its text (any fixed bucket
// does: the row is read by exactly one unit and rejected there). Deterministic.
inline constexpr std::string_view kSqliteBucketFunction = "sluice_bucket";

// An opened, checked SQLite input.
struct SqliteInput {
  std::unique_ptr<SqliteDb> db;
  std::string name;  // for messages and rejects: "<database> table t" / "<database> query"
  std::string key;   // the job-spec key in errors: "input.table 't'" / "input.query"
  std::string from;  // the FROM clause: "\"t\"" / "(<query>)"
  // The name that reaches the table's rowid ("rowid", "_rowid_" or "oid": the
  // first that no column shadows); empty for a query, a view, a WITHOUT ROWID
  // table, or when all three are column names.
  std::string rowid;
  std::vector<std::string> columns;  // result columns, in order
  std::vector<std::string> declared;  // their declared types ("" when none)
};

// Opens `database` read-only and checks the table or query (exactly one set):
// kNotFound "input.table 't': SQLite database 'x.db': no such table: t";
// a query that does not prepare or returns no columns, or two result columns
// of one name: kInvalidArgument naming input.query. Registers sluice_bucket.
Result<SqliteInput> OpenSqliteInput(const std::string& database, const std::string& table, const std::string& query);

// InferSchema for SQLite: `path` is the database file.
Result<Schema> InferSqliteSchema(const std::string& path, const SourceOptions& options);

// OpenSource for SQLite: range.path is the database file. `rejects` is
// borrowed and must outlive the Source.
Result<std::unique_ptr<Source>> OpenSqliteSource(const InputRange& range, const Schema& file_schema,
                                                 const SourceOptions& options, RejectSink* rejects);

}  // namespace sluice
