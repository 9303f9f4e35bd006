// SQLite table sink (output.format sqlite) behind CheckTableSink and
// OpenTableSink (sluice/sink.h has the contract and the sluice_units table).
//
// Database: output.database, created (with its parent directories) when
// missing; WAL mode (readers and the one writer do not block each other),
// synchronous=FULL (a unit is on disk when its COMMIT returns), a busy
// timeout on every connection (30 s by default) past which a locked database
// is kUnavailable, which the job runner retries.
//
// Table: output.table, created when missing with the output columns:
//   int64 INTEGER, float32 and float64 REAL (a float32 as the double nearest its
//   shortest decimal text, 0.1f -> 0.1: what CSV output shows), bool BOOLEAN (0/1), string TEXT,
//   timestamp TIMESTAMP holding ISO-8601 UTC text "2024-01-05T10:00:00.000000Z"
//   (always six fraction digits, so text order is time order; the SQLite
//   source reads it back as a timestamp). NaN is stored as NULL (SQLite has no
//   NaN), and -0.0 reads back as 0 (SQLite stores integral reals as integers).
// An existing table must have, for every output column, a column of that name
// (case-insensitive) whose declared type can hold it: int64 in an integer
// column; float32/float64 in a real one; bool in a boolean or integer one;
// string in a text one; timestamp in a timestamp or text one; any type in a
// column without a declared type. Its other columns must be nullable or have
// a default. Errors name the table and the column.
//
// A unit's writer has its own connection. Its rows are staged in a TEMP table
// of that connection (temp_store=FILE, so a large unit spills to a temporary
// file instead of memory) by one prepared INSERT, values bound. Commit then
// takes the write lock only for the copy:
//   BEGIN IMMEDIATE;
//   INSERT INTO main.<table> (cols) SELECT cols FROM temp stage ORDER BY rowid
//       [ON CONFLICT (keys) DO UPDATE SET <other cols> = excluded.<col>];  -- upsert
//   INSERT INTO sluice_units (job, unit, tbl, marker, committed_at) VALUES (…);
//   COMMIT;
// A unit whose progress row exists already hits the primary key: ROLLBACK and
// Commit returns false (committed by an earlier attempt; this one's rows are
// dropped). A crash anywhere leaves the unit entirely committed or not at all.
//
// output.mode:
//   append     rows are added.
//   upsert     a unique index "<table>_sluice_keys" on output.keys is created
//              with the table (PrepareTable; existing rows that repeat a key
//              make that an error); a row whose keys exist replaces the other
//              columns (rows with a NULL key never conflict).
//   overwrite  PrepareTable, in one BEGIN IMMEDIATE transaction (serializing
//              shards): unless the progress row (job, unit '') exists, deletes
//              the table's rows and the progress rows of other jobs on the table
//              and inserts that row. A resumed run or a second shard never
//              deletes committed units; a different job (another spec, model or
//              input) empties the table again.
//
// Thread-safety: the TableSink's methods may be called concurrently (its own
// connection behind a mutex); a unit writer is used by one thread.
#pragma once

#include <memory>
#include <string>

#include "sluice/job.h"
#include "sluice/schema.h"
#include "sluice/sink.h"
#include "sluice/status.h"

namespace sluice {

struct SqliteSinkOptions {
  int busy_timeout_ms = 30000;
};

// CheckTableSink for SQLite: read-only; nothing to check when the database
// file does not exist yet.
Status CheckSqliteTableSink(const OutputSpec& output, const Schema& schema);

// OpenTableSink for SQLite.
Result<std::unique_ptr<TableSink>> OpenSqliteTableSink(const OutputSpec& output, const std::string& fingerprint,
                                                       const SqliteSinkOptions& options = {});

}  // namespace sluice
