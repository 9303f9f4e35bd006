// PostgreSQL sink behind CheckTableSink / OpenTableSink (output.format
// postgres; libpq, db/postgres_conn.h). The contract is sink.h's; this is how
// it is kept.
//
// Tables. output.table is one name, quoted as an identifier (a dot is part of
// it); it and sluice_units live in the first schema of the session's
// search_path (set it in the URL: ?options=-csearch_path%3Dsales).
// sluice_units is created at OpenTableSink under a transaction-level advisory
// lock, so concurrent shards do not race. A
// missing output.table is created by PrepareTable with a column per output
// field:
//   int64 -> BIGINT, float32 -> REAL, float64 -> DOUBLE PRECISION,
//   bool -> BOOLEAN, string -> TEXT, timestamp -> TIMESTAMPTZ
// An existing table needs a column of every output name, of a type that takes
// the values (int64: smallint/integer/bigint/numeric/real/double; float32 and
// float64: real/double/numeric; bool: boolean; string: text/varchar/char;
// timestamp: timestamptz/timestamp, written as UTC); other columns must be
// nullable or have defaults. Errors name the table and the column.
//
// A unit's transaction (one connection per unit writer, opened by OpenUnit):
//   BEGIN;
//   COPY <table> (<columns>) FROM STDIN      -- text format, rows streamed per batch
//   [upsert: COPY into a TEMP table, then
//    INSERT INTO <table> SELECT DISTINCT ON (<keys>) … ON CONFLICT (<keys>) DO UPDATE …]
//   INSERT INTO sluice_units (job, unit, tbl, marker, committed_at) VALUES ($1, $2, $3, $4, now());
//   COMMIT;
// Rows are formatted into one reused buffer (sent every 256 KiB), without
// allocation per row: NULL as \N; text escaped (\\, \n, \r, \t); floats in
// shortest round-trip form (NaN, inf, -inf); timestamps ISO 8601 UTC.
// COPY starts with the first Write, so a unit never holds its rows in memory.
// A primary-key violation on sluice_units (the unit was committed by an
// earlier attempt whose answer was lost) rolls back and Commit returns false.
// Any connection failure — at connect, during COPY, at COMMIT — is
// kUnavailable, and the job runner retries the unit with a fresh writer: if
// the lost COMMIT did commit, the retry hits the primary key and discards its
// rows; if it did not, the retry commits. Abort closes the connection (the
// server rolls back).
//
// Modes: append adds rows. upsert needs a unique index on exactly
// output.keys; PrepareTable creates one when there is none (failing, with the
// server's reason, when the table already holds duplicate keys). Within a
// unit the last row of the same keys wins; rows whose keys are null never
// conflict. overwrite: PrepareTable, in one transaction holding
// `LOCK TABLE sluice_units IN EXCLUSIVE MODE`, truncates the table and inserts
// the progress row (job, '') unless that row exists — a resumed run or a
// second shard finds it and keeps what is committed.
//
// Passwords: from the URL, PGPASSWORD or ~/.pgpass / PGPASSFILE (libpq);
// every message carries the connection redacted (RedactConnection /
// RedactPassword). Sessions set application_name sluice and connect_timeout
// (db/postgres_conn.h).
//
// Thread-safety: the TableSink is safe for concurrent use (its own connection,
// for CommittedMarker and PrepareTable, is guarded by a mutex; it reconnects
// when that connection was lost); a unit writer is used by one thread.
#pragma once

#include <memory>
#include <string>

#include "sluice/job.h"
#include "sluice/schema.h"
#include "sluice/sink.h"
#include "sluice/status.h"

namespace sluice {

// CheckTableSink for output.format postgres.
Status CheckPostgresTableSink(const OutputSpec& output, const Schema& schema);

// OpenTableSink for output.format postgres.
Result<std::unique_ptr<TableSink>> OpenPostgresTableSink(const OutputSpec& output, const std::string& fingerprint);

}  // namespace sluice
