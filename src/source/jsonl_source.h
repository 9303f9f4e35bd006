// JSON Lines reader (one JSON object per line) behind OpenSource / InferSchema,
// using the simdjson DOM parser on each line in place (no copy). The common line
// of numbers and nulls under keys without escapes is read in one pass without
// simdjson, with the same values (numbers correctly rounded, as simdjson does);
// any other line, and every line that could be rejected, goes to simdjson.
//
// Format: lines end in LF (a CR before it is dropped); blank lines (only spaces,
// tabs, CR) are skipped; a UTF-8 byte order mark at the file start is skipped.
// Line numbers are 1-based physical lines.
//
// Values, per column type:
// - missing key or JSON null -> null; for a key given twice the last one wins.
// - string column: strings as is; numbers as their text (integers exactly,
//   others in shortest round-trip form: 1.50 -> "1.5"); true/false as
//   "true"/"false"; a nested object or array as its JSON text (minified).
// - numeric, bool and timestamp columns: JSON values of the type, and strings
//   that parse as the type ("3.5" for float64, "2024-01-05" for timestamp, "yes"
//   for bool); an empty string is null. int64 takes a JSON number with an exact
//   integer value in range (3.0 too); bool takes true/false and the numbers 0/1;
//   timestamp takes strings only.
//
// Bad rows are reported to the RejectSink and skipped:
//   invalid_utf8   the line is not UTF-8
//   invalid_json   the line is not valid JSON, or not a JSON object
//   nested_value   an object or array where a scalar column is expected
//   bad_value      a value that is not of the column's type
//
// Type inference (InferSchema): columns are the keys seen in the first
// options.infer_rows lines, in first-seen order, then declared keys not seen
// (in name order). Types as for CSV (int64, float64, bool, timestamp,
// string; only nulls -> float64), judged on JSON types: integers are int64,
// other numbers float64, true/false bool, strings timestamp if every one parses
// as one (else string; numbers written as strings stay strings), nested values
// string. Declared types always win; a later value that does not fit an inferred
// type is rejected (bad_value) with a message that suggests declaring the column
// under input.schema.
//
// Ranges: the rows of a InputRange are the lines that start in [begin, end).
// Precondition: begin is 0 or the offset of a line start. Lines are numbered
// from range.first_line when set, else by counting the newlines before begin.
//
// Batches end at options.batch_rows rows, or once their lines span
// options.max_batch_bytes input bytes (SetBatchLimits changes both). With
// options.sample < 1 a row that passed every check is kept or left out by
// RowSampler (source_common.h) on its typed values.
//
// Thread-safety: a JSON Lines Source is used by one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "sluice/env.h"
#include "sluice/reject.h"
#include "sluice/schema.h"
#include "sluice/source.h"
#include "sluice/status.h"
#include "source/chunk_reader.h"

namespace sluice {

// InferSchema for JSON Lines files.
Result<Schema> InferJsonlSchema(Env* env, const std::string& path, const SourceOptions& options,
                                const TextReadTuning& tuning = {});

// OpenSource for JSON Lines files. `rejects` is borrowed and must outlive the Source.
Result<std::unique_ptr<Source>> OpenJsonlSource(Env* env, const InputRange& range, const Schema& file_schema,
                                                const SourceOptions& options, RejectSink* rejects,
                                                const TextReadTuning& tuning = {});

}  // namespace sluice
