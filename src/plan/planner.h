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
  FileRange range;  // the file, or a byte range of it, with first_line set when known
  uint64_t file_size = 0;
  int64_t mtime_ns = 0;
  uint64_t est_bytes = 0;  // bytes of the range (rest of file for the last range)
  int64_t est_rows = 0;    // records in the range: counted when the file was scanned, else estimated
  bool rows_exact = false;
};

struct Plan {
  InputFormat format = InputFormat::kCsv;  // input.format, or from the first file's name
  std::vector<InputFile> files;            // every input file, sorted (for fingerprints)
  std::vector<WorkUnit> units;             // in plan order
};

// Errors: "input.path: no file matches 'data/*.csv'"; an unknown format:
// "input.format: cannot tell the format of 'x.dat' from its name; set it (csv,
// jsonl)"; I/O errors name the file and byte offset.
Result<Plan> PlanUnits(Env* env, const InputSpec& input, const PartitionSpec& partition);

// "00007".
std::string UnitId(int index);

}  // namespace sluice
