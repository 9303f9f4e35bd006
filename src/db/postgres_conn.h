// libpq, wrapped once for the PostgreSQL planner, source and sink: connecting
// with Sluice's session settings, running statements with parameters, and
// turning failures into one-line Status values whose code decides retries.
//
// Connection strings are postgresql:// URLs or key=value strings, as libpq
// takes them. Passwords come from the URL, PGPASSWORD or the password file
// (~/.pgpass, or PGPASSFILE) — libpq looks them up. Every message built here
// names the connection through RedactConnection, and libpq's and the server's
// own texts go through RedactPassword, so no password reaches logs or errors.
//
// Error codes (by SQLSTATE class, or the connection state):
//   connection lost or refused, 08 (connection), 53 (resources), 57P01-57P03
//   (shutdown), 40001/40P01 (serialization, deadlock), 55P03 (lock)
//                                                  -> kUnavailable (transient)
//   57014 (query canceled, statement_timeout)      -> kTimeout
//   42P01, 42703 (no such table, column)           -> kNotFound
//   23505 (unique violation)                       -> kAlreadyExists
//   58, XX (system, internal)                      -> kIOError
//   anything else (syntax, data, permissions, ...) -> kInvalidArgument
//
// Thread-safety: a PgConnection is used by one thread at a time; the free
// functions are pure.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/source.h"
#include "sluice/status.h"

namespace sluice {

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

class PgConnection {
 public:
  // Connects to `conn` and sets the session up: client_encoding UTF8,
  // TimeZone UTC (timestamps without time zone and dates read as UTC),
  // application_name sluice and connect_timeout 10 s unless the connection
  // string sets them, TCP keepalives (a dead peer is noticed within about a
  // minute). `what` names the caller's config key in errors
  // ("input.path", "output.path"): "output.path: cannot connect to
  // postgresql://ann:***@db/x: <libpq's reason>". Errors are kUnavailable.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& conn, std::string_view what);

  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  PGconn* get() const { return conn_; }
  // The connection string as messages show it (password redacted).
  const std::string& redacted() const { return redacted_; }
  // False once the connection is lost.
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }

  // Runs one statement (simple protocol; several separated by ';' allowed)
  // and returns its result when it succeeded (command OK, tuples, or COPY IN).
  // Errors: the Status of PgError with context `what`.
  Result<PgResult> Exec(const std::string& sql, std::string_view what);
  // One statement with $1… bound to `params` (text format, types inferred by
  // the server; monostate is NULL). `binary_result` asks for binary values.
  Result<PgResult> ExecParams(const std::string& sql, const std::vector<SqlParam>& params, std::string_view what,
                              bool binary_result = false);

  // The Status for a failed `result` (null: the connection failed): code by
  // SQLSTATE (see above), message "<what>: <server message>[; <detail>]"
  // on one line, password redacted.
  Status Error(const PGresult* result, std::string_view what) const;

  // The SQLSTATE of `result` ("" when there is none).
  static std::string_view SqlState(const PGresult* result);

 private:
  PgConnection(PGconn* conn, std::string conn_string);

  PGconn* conn_;
  std::string conn_string_;  // for RedactPassword
  std::string redacted_;
};

// `name` quoted as an SQL identifier: "a""b".
std::string PgQuoteIdentifier(std::string_view name);
// `sql` with each `?` outside quotes ('…', "…") replaced by $first, $first+1, ….
std::string PgNumberPlaceholders(std::string_view sql, int first = 1);
// What a database input reads, as SQL for a FROM clause: input.table quoted as
// one identifier (a dot is part of the name; the schema comes from the
// session's search_path, e.g. ?options=-csearch_path%3Dsales in the URL), or
// "(<query>)" without the query's trailing spaces and semicolons (a newline
// before the parenthesis ends a trailing -- comment).
std::string PgRelation(const std::string& table, const std::string& query);
// The input in messages: "table <name>" or "query".
std::string PgRelationName(const std::string& table);

// PostgreSQL type OIDs (pg_type.h) Sluice reads and writes.
namespace pg_oid {
inline constexpr Oid kBool = 16, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23, kText = 25, kOid = 26,
                     kFloat4 = 700, kFloat8 = 701, kBpchar = 1042, kVarchar = 1043, kDate = 1082,
                     kTimestamp = 1114, kTimestampTz = 1184, kNumeric = 1700;
}  // namespace pg_oid

// The Sluice type a column of type `oid` is read as: int2/int4/int8/oid ->
// int64, float4 -> float32, float8/numeric -> float64, bool -> bool,
// timestamp/timestamptz/date -> timestamp (UTC; a date at midnight), anything
// else (text, varchar, char, json, uuid, arrays, …) -> string (its text form).
DataType PgColumnType(Oid oid);
bool PgIsIntegerType(Oid oid);
bool PgIsTimeType(Oid oid);

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
inline constexpr int64_t kPgEpochMicros = 946684800LL * 1000000;

}  // namespace sluice
