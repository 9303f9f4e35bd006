// CSV reader (RFC 4180 and common variants) behind OpenSource / InferSchema.
//
// Format:
// - Records end in LF or CRLF; the last record may lack a newline. A CR not
//   followed by LF is data. Blank lines (nothing before the newline) are skipped.
// - Fields are separated by options.csv.delimiter. A field that starts with the
//   quote character is quoted: it may contain delimiters and newlines, and a
//   doubled quote stands for one quote. Text after the closing quote and before
//   the next delimiter is kept verbatim ("ab"c -> abc). A quote inside an
//   unquoted field is data. quote '\0' turns quoting off.
// - A UTF-8 byte order mark at the start of the file is skipped.
// - With csv.header (default) the first record names the columns; without it
//   columns are named c0, c1, ... (count taken from the first record).
// - Nulls: an unquoted field equal to one of csv.null_values is null. An empty
//   value (quoted "" or unquoted) is null for every type but string, where a
//   quoted "" is the empty string.
// - Line numbers are 1-based physical lines of a record's first line (the header
//   is line 1), counted by LF bytes; Batch::row_lines and Reject::line carry them.
//
// Bad rows are reported to the RejectSink and skipped:
//   invalid_utf8        any byte of the record is not UTF-8 (column = its field)
//   ragged_row          field count differs from the header's ("expected N fields, found M")
//   unterminated_quote  a quote never closed; the record runs to the end of the file
//   bad_value           a selected field does not parse as its column's type
//
// Type inference (InferSchema): the header plus up to options.infer_rows records
// (bad records are skipped). An undeclared column is int64 if every non-null
// sample is an integer, else float64 if every one is a number, else bool if every
// one is true/false (not 0/1), else timestamp if every one is a timestamp, else
// string; a column with only nulls in the sample is float64. Declared types
// (input.schema) always win. A later value that does not fit an inferred type is
// rejected (bad_value) with a message that suggests declaring the column under
// input.schema.
//
// Ranges: a InputRange's rows are the records that start in [begin, end).
// Precondition: begin is 0 or the offset of a record start (the planner only
// gives such offsets); a record that starts before `end` is read to its end, even
// past `end`. The header is always read from offset 0 for the column names; a
// range starting mid-file numbers its lines from range.first_line (set by the
// planner), or else counts the newlines before it.
//
// Batches end at options.batch_rows rows, or once their records span
// options.max_batch_bytes input bytes (SetBatchLimits changes both). With
// options.sample < 1 a row that passed every check is kept or left out by
// RowSampler (source_common.h) on its typed values.
//
// Memory: the file is read in chunks (1 MiB) into a reusable window; fields are
// views into it (only quoted fields with doubled quotes are copied, into a reused
// scratch string); the Batch is reused. Memory is bounded by the largest record
// plus one chunk; a record larger than TextReadTuning::max_record_bytes (256 MiB)
// is a hard error (kCorruption).
//
// Thread-safety: a CSV Source is used by one thread at a time.
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

// InferSchema for CSV files.
Result<Schema> InferCsvSchema(Env* env, const std::string& path, const SourceOptions& options,
                              const TextReadTuning& tuning = {});

// OpenSource for CSV files. `rejects` is borrowed and must outlive the Source.
Result<std::unique_ptr<Source>> OpenCsvSource(Env* env, const InputRange& range, const Schema& file_schema,
                                              const SourceOptions& options, RejectSink* rejects,
                                              const TextReadTuning& tuning = {});

}  // namespace sluice
