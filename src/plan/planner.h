// Planner: the input, expanded into an ordered list of work units.
//
// Files are listed in sorted path order. partition.by: files gives one unit per
// file; every other mode (size, and time/column/hash, which for file inputs are
// output layout, not units) splits CSV and JSON Lines files larger than
// partition.target_bytes into byte ranges of about that size, each starting at
// a record boundary (source/record_split.h):
//  - JSON Lines: a raw newline cannot occur inside a JSON value, so every '\n'
//    ends a record.
//  - CSV: a quoted field may hold newlines, and a split point in the middle of
//    a file cannot tell whether it is inside quotes. The planner therefore scans
//    the file once from its start with the same quote rules as the CSV parser
//    (a quote opens only at the start of a field, doubled quotes inside, CRLF/LF
//    record ends, lone CR is data, BOM skipped, header record excluded). The
//    scan touches only quotes and newlines (memchr-speed). An unterminated
//    quote swallows the rest of the file into the unit where it starts, as the
//    parser does.
// A unit ends before the first non-blank data record that starts at least
// target_bytes after the unit's begin: every unit but a file's last spans at
// least target_bytes and holds at least one record. The scan counts lines and
// records, so every range knows the line of its first record (first_line) and
// its exact record count. Both give exactly the records of a whole-file read,
// in order. Files at most target_bytes (and every file under by: files) are one
// unit [0, size) and are not scanned; their rows are estimated from the
// newlines in their first 64 KiB. Empty and header-only files are one unit.
//
// Unit ids are zero-padded plan indices ("00000", …): the same input and spec
// give the same plan on every run.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/source.h"

namespace sluice {

struct InputFile {
  std::string path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

struct WorkUnit {
  int index = 0;
  std::string id;   // UnitId(index)
  InputRange range;  // the file, or a byte range of it, with first_line set when known
  uint64_t file_size = 0;
  int64_t mtime_ns = 0;
  uint64_t est_bytes = 0;  // bytes of the range (rest of file for the last range)
  int64_t est_rows = 0;    // records in the range: counted when the file was scanned (or
                           // Parquet footer, database count), else estimated
  bool rows_exact = false;
};

// The end of a unit's range in plans, records and messages: range.end, or the
// file's size when the range runs to the end of the file. (Parquet ends are
// rows, which may outnumber the file's bytes.)
inline uint64_t UnitEnd(const WorkUnit& unit) {
  return unit.range.end == std::numeric_limits<uint64_t>::max() ? unit.file_size : unit.range.end;
}

struct Plan {
  InputFormat format = InputFormat::kCsv;  // input.format, or from the first file's name or the database
  std::vector<InputFile> files;            // every input file, sorted (for fingerprints)
  std::vector<WorkUnit> units;             // in plan order
  // Memory one reader of this input holds beyond its batches, at most: for
  // Parquet, its DuckDB database and the largest row group, compressed and
  // decoded (all columns); 0 for CSV and JSON Lines.
  uint64_t reader_memory = 0;
};

// Errors: "input.path: no file matches 'data/*.csv'"; an unknown format:
// "input.format: cannot tell the format of 'x.dat' from its name; set it (csv,
// jsonl)"; I/O errors name the file and byte offset.
// Parquet input reads its footers through a database from `duckdb_pool` (see
// PlanParquetUnits), which may be null.
Result<Plan> PlanUnits(Env* env, const InputSpec& input, const PartitionSpec& partition,
                       DuckDbPool* duckdb_pool = nullptr);

// Parquet (plan/parquet_plan.cc). Files as ListParquetInput gives them; every
// "key=value" directory of a file's path becomes InputRange::hive. A unit is
// rows [begin, end) of one file, whole row groups: for size, a run of
// consecutive row groups grouped toward target_bytes (compressed size in the
// footer; a larger row group is a unit alone; a file without row groups is one
// empty unit). partition.by files: one unit per file. time / column / hash: one
// unit per (file, window | value | bucket), with InputRange::filter and params
// selecting its rows: time windows come from the row groups' min/max statistics,
// and a window's unit spans only the row groups whose range meets it (rows with
// a null time get a unit of their own; row counts are estimates); column and
// hash run one aggregate query over the column for each value's (bucket's)
// exact count and first and last row, and the unit spans those rows' row
// groups. A hive partition column makes each file one unit without a filter.
// Hash buckets are HashBucket's (sink/partition_layout.h), through the
// sluice_bucket function of source/duckdb_util.h. Plan::reader_memory is set.
// Empty files, bad magic, truncated footers and schemas or partition keys that
// differ between files are errors naming the file (and the column). The
// queries run in a database taken with TakeParquetSourceDb (source/
// parquet_source.h) from `duckdb_pool` (may be null), given back when planning ends.
Result<Plan> PlanParquetUnits(Env* env, const InputSpec& input, const PartitionSpec& partition,
                              DuckDbPool* duckdb_pool = nullptr);

// The files of a Parquet input: a file, the files a glob matches, or a
// directory's files and, recursively, those of its "key=value" subdirectories
// (hive partitions). In directories, names starting with '.' or '_' are
// skipped (_SUCCESS, _sluice, temporaries). Sorted. kNotFound naming
// input.path when there is none.
Result<std::vector<std::string>> ListParquetInput(Env* env, const std::string& path);

// SQLite and PostgreSQL (plan/database_plan.cc). plan.files is empty: a
// database input is identified by its connection, table/query and the units'
// filters, not by its contents. by size (default): a SQLite table is cut into
// rowid ranges, a PostgreSQL table or any query into ranges of
// partition.column (an integer, timestamp or date column; required for
// queries; a PostgreSQL table without it uses its integer primary key) holding about target_bytes each (from the
// table's size and row count estimates); no column and a query: one unit.
// files: one unit. time: one unit per window between min and max of the column
// that holds rows. column: one unit per distinct value. hash: one unit per
// bucket of a stable hash of the column. A missing table, failing query or
// unreachable server is an error naming the table or query and the database
// (redacted).
Result<Plan> PlanDatabaseUnits(const InputSpec& input, const PartitionSpec& partition);

// SQLite (plan/sqlite_plan.cc), in detail. Every row of the input is in
// exactly one unit, whatever its values: range units are open at both ends
// ("c < b1", "c >= b1 AND c < b2", …, "c >= bn"), NULLs of the partition
// column have a unit of their own ("c IS NULL"), and SQLite's comparison order
// is total (a value of an unexpected storage class lands in some unit and is
// rejected there by the source). Units in order:
//  - files: one unit, the whole table or query; rows counted.
//  - size, a table with a rowid: n = table bytes / target_bytes (bytes: the
//    table's pages from dbstat, else rows x the mean size of the first 1,000
//    rows' values) ranges of equal row counts, from one pass over the rowids in
//    order; filter "rowid >= ? AND rowid <= ?", label "rowid 1-50000"; rows
//    counted (exact whatever the gaps in the rowids).
//    A table without a rowid (WITHOUT ROWID, a view) or a query: as many even
//    ranges of partition.column (int64 or timestamp) between its min and max
//    when it is set (rows estimated; a range may be empty), else one unit.
//  - time: one unit per window (time_window.h) that holds rows (one GROUP BY
//    over the parsed timestamps), each running to the start of the next such
//    window; bounds are text in the column's own format ("2024-01-05",
//    "2024-01-05 13", with the ' ' or 'T' separator its values use), compared as
//    text by SQLite: values with a UTC offset or mixed formats may land in a
//    neighbouring window's unit (still exactly once).
//  - column: one unit per distinct value ("c = ?", bound with its storage
//    class; NULL: "c IS NULL"); counted; BLOB values are an error.
//  - hash: one unit per bucket that holds rows, "sluice_bucket(c, ?, ?) = ?"
//    (source/sqlite_source.h: the bucket HashBucket gives the value); counted.
// partition.column must be a column of the input (error naming it); more than
// 100,000 units is an error. The plan depends only on the input's contents: the
// same rows give the same units on a resume.
Result<Plan> PlanSqliteUnits(const InputSpec& input, const PartitionSpec& partition);
// PostgreSQL (plan/postgres_plan.cc), called by PlanDatabaseUnits. Every
// filter is parameterized; every row of the input falls in exactly one unit
// (a unit "<column> null" takes the rows whose column is null).
//  - size: ranges of partition.column, or of a table's single-column integer
//    primary key when no column is given (else one unit). The column is an
//    integer, timestamp or date; [min, max] is cut into ranges of equal width,
//    as many as input bytes / target_bytes: `col >= ? AND col < ?`, the last
//    `col >= ? AND col <= ?` (labels "id 1-50000", "ts [2024-01-01T00:00:00Z,
//    2024-01-03T00:00:00Z)"). A table's bytes are its heap and TOAST sizes,
//    which stay put while its rows do (not the free-space and visibility maps
//    that VACUUM adds); a view, a partitioned table or a query is measured by
//    one pass over it (count and pg_column_size), taken only when there is a
//    column to cut by.
//  - time: one unit per window of time_window.h that holds rows (found with
//    date_trunc, in UTC): `col >= ?::timestamptz AND col < ?::timestamptz`
//    ("ts day 2024-01-05").
//  - column: one unit per distinct value, `col = ?` with the value's text
//    ("merchant = 'travel'").
//  - hash: partition.buckets units, `(('x' || substr(md5(coalesce(col::text,
//    '')), 1, 15))::bit(60)::int8 % ?) = ?`: md5 of the value's text form, so
//    buckets are the same on every server and version ("id hash bucket 3 of 16").
//    Each bucket scans the whole input.
// Units of time, column and hash count their rows exactly (one GROUP BY pass);
// more than 100000 units is an error naming partition.column.
Result<Plan> PlanPostgresUnits(const InputSpec& input, const PartitionSpec& partition);

// "00007".
std::string UnitId(int index);

// Appends the next unit of a database input (the database planners): the rows
// of `database` that satisfy `filter` with `params` (InputRange).
WorkUnit& AddDatabaseUnit(Plan* plan, const std::string& database, std::string filter, std::vector<SqlParam> params,
                          std::string label, int64_t est_rows, bool rows_exact);

}  // namespace sluice
