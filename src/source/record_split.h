// Record-boundary splitting of CSV and JSON Lines files (for the planner): one
// sequential scan from the file start that finds where the readers' records
// start, with exactly their rules (csv_source.h, jsonl_source.h), and cuts the
// file into consecutive ranges at record starts.
//
// CSV: a quote opens a quoted field only at the start of a field (record start
// or after a delimiter); inside, a doubled quote is data and newlines are data;
// outside quotes every LF ends a record (CRLF too; a lone CR is data). quote
// '\0' turns quoting off. A UTF-8 byte order mark at the file start is skipped.
// With csv.header the first non-blank record is the header, not a data record.
// An unterminated quote runs to the end of the file. JSON Lines: every LF ends a
// line. Blank records (CSV: empty or a lone CR before the LF; JSON Lines: only
// spaces, tabs, CR) are skipped by the readers and are never a range start.
//
// The scan touches only quotes and newlines (memchr over a chunk window), not
// every byte, and counts lines so each range knows the line of its first record.
// Where no quote can hide a newline (JSON Lines; CSV without the quote byte or
// with quoting off) every record start follows an LF, so a large file is
// scanned in parallel instead: the range starts are found first by short reads
// near each target offset, then fixed-size blocks are counted concurrently
// (lines, non-blank records, and both up to each range start) and summed. A
// CSV block that holds the quote byte sends the whole file back to the
// sequential scan. Both scans give the same ranges.
//
// Thread-safety: a pure function of the file's bytes; the parallel scan runs
// its tasks in the calling thread's oneTBB arena.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/env.h"
#include "sluice/source.h"
#include "sluice/status.h"
#include "source/chunk_reader.h"

namespace sluice {

// Block of the parallel scan: sets the scheduling grain and each thread's
// buffer, not the result.
inline constexpr size_t kDefaultSplitBlockBytes = size_t{1} << 20;

struct RecordRange {
  uint64_t begin = 0;      // 0, or the first byte of a non-blank data record
  int64_t first_line = 1;  // 1-based physical line of the record at `begin` (1 for begin 0)
  int64_t records = 0;     // non-blank data records that start in the range (not the header)
};

// Cuts `path` (read through `env`) into consecutive ranges that cover the whole
// file: range i is [ranges[i].begin, ranges[i + 1].begin), the last one runs to
// the end of the file. A range ends before the first non-blank data record that
// starts at least `target_bytes` (minimum 1) after the range's begin, so every
// range but the last spans at least target_bytes, and every range holds at least
// one data record unless the file has none (then there is one range). Ranges
// start at record starts, so reading each with the format's Source and
// concatenating gives exactly the rows of a whole-file read.
// It tries SplitAtRecordsInBlocks, then scans sequentially in windows of
// `chunk_bytes`; block_bytes 0 always scans sequentially (tests compare both).
// Errors: I/O errors name the file and byte offset.
Result<std::vector<RecordRange>> SplitAtRecords(Env* env, const std::string& path, InputFormat format,
                                                const CsvOptions& csv, uint64_t target_bytes,
                                                size_t chunk_bytes = kDefaultChunkBytes,
                                                size_t block_bytes = kDefaultSplitBlockBytes);

// The parallel scan alone: SplitAtRecords' ranges, or nullopt where it does not
// apply: a file of fewer than 4 blocks of `block_bytes` (or block_bytes 0), a
// target_bytes under one block (the short reads per range would add up), a
// format other than CSV and JSON Lines, a CSV file that holds its quote byte
// anywhere (quoting on), or a file shorter than Stat said while read.
Result<std::optional<std::vector<RecordRange>>> SplitAtRecordsInBlocks(Env* env, const std::string& path,
                                                                       InputFormat format, const CsvOptions& csv,
                                                                       uint64_t target_bytes,
                                                                       size_t block_bytes = kDefaultSplitBlockBytes);

}  // namespace sluice
