// PostgreSQL reader behind OpenSource / InferSchema (libpq, db/postgres_conn.h).
//
// A range's rows: `SELECT <columns> FROM <input.table | (input.query)> q
// WHERE <range.filter>`, with the filter's `?` placeholders renumbered $1… and
// range.params bound as parameters (never spliced into the SQL). Each source
// has its own connection and reads in one read-only transaction through a
// server-side cursor:
//   BEGIN READ ONLY;
//   DECLARE c BINARY NO SCROLL CURSOR FOR SELECT …;
//   FETCH FORWARD n FROM c; …
// so memory is bounded by one fetch, whatever the table's size. A fetch asks
// for at most the rows the batch still needs: batch_rows, and with
// max_batch_bytes, as many rows as fit by the average width of the rows read
// so far (16 rows before the first measurement); rows fetched beyond a full
// batch wait for the next one. Only the selected columns
// (SourceOptions::columns) are read.
//
// Values travel in binary: each column is cast on the server to the wire type
// of its Sluice type (int64 ::int8, float32 ::float4, float64 ::float8, bool
// ::bool, string ::text, timestamp ::timestamptz), so no text is parsed on
// the client. The session's TimeZone is UTC: timestamps without time zone
// and dates are read as UTC (a date at midnight). A declared type
// (input.schema) is such a cast too; a value the server cannot cast fails the
// unit with the server's message (a database has typed columns: there is no
// per-row bad_value here).
//
// Type mapping (InferSchema, from the column type OIDs of `SELECT * … LIMIT 0`):
//   smallint, integer, bigint, oid          -> int64
//   real                                    -> float32
//   double precision, numeric               -> float64
//   boolean                                 -> bool
//   timestamp, timestamptz, date            -> timestamp (UTC microseconds)
//   text, varchar, char, and anything else  -> string (the value's text form)
// A column name that appears twice in a query's result is an error naming it.
//
// Rows are numbered 1, 2, … within the range (Batch::row_lines); rejects name
// "<redacted database> table <t>" (or "query") with the range's label and
// that number. The only row the reader rejects is one whose timestamp or date
// is ±infinity (bad_value). Text arrives as UTF-8 (client_encoding UTF8: the
// server converts, or fails the range on bytes it cannot convert).
// With options.sample < 1 a row is kept or left out by RowSampler
// (source_common.h) on its values, or on (database, row number) without keys.
//
// Errors: connection failures and a connection lost mid-read are kUnavailable
// (the unit is retried); SQL errors name the table or query and the range.
//
// Thread-safety: a PostgreSQL Source is used by one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "sluice/reject.h"
#include "sluice/schema.h"
#include "sluice/source.h"
#include "sluice/status.h"

namespace sluice {

// InferSchema for PostgreSQL: `database` is the connection string.
Result<Schema> InferPostgresSchema(const std::string& database, const SourceOptions& options);

// OpenSource for PostgreSQL: range.path is the connection string. `rejects` is
// borrowed and must outlive the Source.
Result<std::unique_ptr<Source>> OpenPostgresSource(const InputRange& range, const Schema& file_schema,
                                                   const SourceOptions& options, RejectSink* rejects);

}  // namespace sluice
