#include "source/record_split.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "core/tsan_annotations.h"

namespace sluice {
namespace {

// Starts a new range at a record when the current one already holds a record
// and spans at least target_bytes up to it.
class RangeBuilder {
 public:
  explicit RangeBuilder(uint64_t target_bytes) : target_bytes_(std::max<uint64_t>(target_bytes, 1)) {
    ranges_.push_back(RecordRange{});
  }

  void AddRecord(uint64_t offset, int64_t line) {
    if (ranges_.back().records > 0 && offset - ranges_.back().begin >= target_bytes_) {
      ranges_.push_back(RecordRange{offset, line, 0});
    }
    ++ranges_.back().records;
  }

  std::vector<RecordRange> Finish() { return std::move(ranges_); }

 private:
  uint64_t target_bytes_;
  std::vector<RecordRange> ranges_;
};

// Moves the reader's window on to the next chunk, keeping the last byte read so
// that the byte before any new position stays addressable. `*pos` (the next
// unread window position, == size()) follows. False at the end of the file.
Result<bool> NextChunk(ChunkReader* reader, size_t* pos) {
  if (reader->eof()) return false;
  const size_t keep = reader->size() > 0 ? reader->size() - 1 : 0;
  ASSIGN_OR_RETURN(const size_t got, reader->Fill(keep));
  *pos -= keep;
  return got > 0;
}

const char* Find(const char* p, const char* end, char c) {
  const auto* found = static_cast<const char*>(std::memchr(p, c, static_cast<size_t>(end - p)));
  return found != nullptr ? found : end;
}

Status ScanCsv(ChunkReader* reader, const CsvOptions& csv, RangeBuilder* ranges) {
  const bool quoting = csv.quote != '\0';
  const char quote = csv.quote;
  const char delimiter = csv.delimiter;
  bool header_pending = csv.header;
  bool in_quotes = false;
  bool quote_at_chunk_end = false;  // in quotes, the last byte read was a quote: closing or doubled?
  ASSIGN_OR_RETURN(size_t pos, reader->Utf8BomLength());
  uint64_t record_start = pos;
  int64_t record_line = 1;
  int64_t line = 1;  // line of the next byte

  auto end_record = [&](bool blank) {
    if (blank) return;
    if (header_pending) {
      header_pending = false;
    } else {
      ranges->AddRecord(record_start, record_line);
    }
  };

  while (true) {
    if (pos >= reader->size()) {
      ASSIGN_OR_RETURN(const bool more, NextChunk(reader, &pos));
      if (!more) break;
    }
    const char* base = reader->data();
    const char* end = base + reader->size();
    const char* p = base + pos;
    const uint64_t base_offset = reader->offset();
    if (quote_at_chunk_end) {
      quote_at_chunk_end = false;
      if (*p == quote) {
        ++p;
      } else {
        in_quotes = false;
      }
    }
    const char* next_quote = quoting ? Find(p, end, quote) : end;
    const char* next_newline = Find(p, end, '\n');
    while (p < end) {
      if (in_quotes) {
        const char* close = Find(p, end, quote);
        line += std::count(p, close, '\n');
        if (close + 1 >= end) {
          quote_at_chunk_end = close < end;
          p = end;
          break;
        }
        if (close[1] == quote) {
          p = close + 2;
        } else {
          in_quotes = false;
          p = close + 1;
        }
        continue;
      }
      if (next_quote < p) next_quote = Find(p, end, quote);
      if (next_newline < p) next_newline = Find(p, end, '\n');
      if (next_quote < next_newline) {
        // A quote opens a field only at its start; elsewhere it is data. The
        // byte before is in the window: the window keeps the last byte read.
        const char* q = next_quote;
        if (base_offset + static_cast<uint64_t>(q - base) == record_start || q[-1] == delimiter) in_quotes = true;
        p = q + 1;
        continue;
      }
      if (next_newline == end) {
        p = end;
        break;
      }
      const uint64_t newline_offset = base_offset + static_cast<uint64_t>(next_newline - base);
      end_record(newline_offset == record_start ||
                 (newline_offset == record_start + 1 && next_newline[-1] == '\r'));
      ++line;
      record_start = newline_offset + 1;
      record_line = line;
      p = next_newline + 1;
    }
    pos = static_cast<size_t>(p - base);
  }
  const uint64_t file_end = reader->offset() + reader->size();
  if (record_start < file_end) {
    // The last record has no LF; a lone CR at the end of the file ends a record.
    end_record(file_end == record_start + 1 && reader->data()[reader->size() - 1] == '\r');
  }
  return Status::OK();
}

bool HasContent(const char* p, const char* end) {
  for (; p < end; ++p) {
    if (*p != ' ' && *p != '\t' && *p != '\r') return true;
  }
  return false;
}

Status ScanJsonl(ChunkReader* reader, RangeBuilder* ranges) {
  ASSIGN_OR_RETURN(size_t pos, reader->Utf8BomLength());
  uint64_t line_start = pos;
  int64_t line = 1;
  bool content = false;  // the current line has a byte that is not blank
  while (true) {
    if (pos >= reader->size()) {
      ASSIGN_OR_RETURN(const bool more, NextChunk(reader, &pos));
      if (!more) break;
    }
    const char* base = reader->data();
    const char* end = base + reader->size();
    const char* p = base + pos;
    while (p < end) {
      const char* newline = Find(p, end, '\n');
      content = content || HasContent(p, newline);
      if (newline == end) {
        p = end;
        break;
      }
      if (content) ranges->AddRecord(line_start, line);
      ++line;
      line_start = reader->offset() + static_cast<uint64_t>(newline - base) + 1;
      content = false;
      p = newline + 1;
    }
    pos = static_cast<size_t>(p - base);
  }
  if (content) ranges->AddRecord(line_start, line);
  return Status::OK();
}

// ---- the parallel scan of a file in which every LF ends a record ------------

// Read window of the short reads that find range starts.
constexpr size_t kProbeBytes = size_t{4} << 10;
// Smaller files are scanned sequentially.
constexpr uint64_t kMinParallelBlocks = 4;

using MaybeRanges = std::optional<std::vector<RecordRange>>;

struct LineFile {
  const RandomAccessFile* file;
  const std::string& path;
  InputFormat format;      // kCsv or kJsonl
  uint64_t size;           // as Stat saw it
  uint64_t first_record;   // 3 after a UTF-8 byte order mark, else 0
  size_t probe_bytes;      // read window of NextRecord
};

enum class Blank { kYes, kNo, kUnknown };

// Whether the record that starts at `p` is blank, judged from the bytes [p, end)
// at hand; kUnknown when that takes bytes past `end`, which is the end of the
// file if `at_eof` (then an empty [p, end) is no record: kYes).
Blank RecordIsBlank(InputFormat format, const char* p, const char* end, bool at_eof) {
  if (format == InputFormat::kJsonl) {
    // Up to the first byte that is not blank only: the caller finds the LF anyway.
    for (; p < end && *p != '\n'; ++p) {
      if (*p != ' ' && *p != '\t' && *p != '\r') return Blank::kNo;
    }
    return p < end || at_eof ? Blank::kYes : Blank::kUnknown;
  }
  if (p == end) return at_eof ? Blank::kYes : Blank::kUnknown;
  if (*p == '\n') return Blank::kYes;
  if (*p != '\r') return Blank::kNo;
  if (p + 1 == end) return at_eof ? Blank::kYes : Blank::kUnknown;  // a lone CR at the end of the file
  return p[1] == '\n' ? Blank::kYes : Blank::kNo;
}

// The first non-blank record that starts at or after `from`, or f.size if none.
// Reads forward from `from` in windows of f.probe_bytes.
Result<uint64_t> NextRecord(const LineFile& f, uint64_t from) {
  if (from >= f.size) return f.size;
  bool at_record = from <= f.first_record;  // window position `pos` starts a record
  ChunkReader reader(f.file, f.path, at_record ? f.first_record : from - 1, f.probe_bytes);
  RETURN_IF_ERROR(reader.Fill(0).status());
  size_t pos = 0;
  while (true) {
    const char* base = reader.data();
    const char* end = base + reader.size();
    if (!at_record) {
      const char* newline = Find(base + pos, end, '\n');
      if (newline == end) {
        if (reader.eof()) return f.size;
        RETURN_IF_ERROR(reader.Fill(reader.size()).status());
        pos = 0;
        continue;
      }
      pos = static_cast<size_t>(newline - base) + 1;
      at_record = true;
    }
    const uint64_t offset = reader.offset() + pos;
    if (offset >= f.size) return f.size;
    const Blank blank = RecordIsBlank(f.format, base + pos, end, reader.eof());
    if (blank == Blank::kNo) return offset;
    if (blank == Blank::kUnknown) {
      RETURN_IF_ERROR(reader.Fill(pos).status());
      pos = 0;
    } else {
      at_record = false;
    }
  }
}

struct Counts {
  int64_t newlines = 0;  // LFs
  int64_t records = 0;   // non-blank records that start there

  void Add(const Counts& other) {
    newlines += other.newlines;
    records += other.records;
  }
};

// Counts block [lo, hi) of the file into `*counts`, and [lo, starts[i]) into
// (*at_start)[i] for each range start in the block. `buf` holds hi - lo + 2
// bytes: the block and the bytes on either side. False (nothing counted) when
// the block holds `quote` (not '\0') or the file is shorter than f.size.
Result<bool> CountBlock(const LineFile& f, char quote, uint64_t lo, uint64_t hi, const std::vector<uint64_t>& starts,
                        std::vector<Counts>* at_start, char* buf, Counts* counts) {
  const uint64_t read_from = lo > 0 ? lo - 1 : 0;  // the byte before the block tells whether lo starts a record
  const auto want = static_cast<size_t>(std::min(hi + 1, f.size) - read_from);
  Result<size_t> got = f.file->ReadAt(read_from, want, buf);
  if (!got.ok()) return got.status().WithContext("reading '" + f.path + "' at byte " + std::to_string(read_from));
  if (*got < want) return false;
  const char* block = buf + (lo - read_from);
  const char* block_end = block + (hi - lo);
  const char* end = buf + want;
  const bool at_eof = read_from + want == f.size;
  if (quote != '\0' && std::memchr(block, quote, hi - lo) != nullptr) return false;

  size_t start_idx = static_cast<size_t>(std::lower_bound(starts.begin(), starts.end(), lo) - starts.begin());
  Counts block_counts;
  auto add_record = [&](const char* p) -> Status {
    const uint64_t offset = lo + static_cast<uint64_t>(p - block);
    if (start_idx < starts.size() && starts[start_idx] == offset) (*at_start)[start_idx++] = block_counts;
    Blank blank = RecordIsBlank(f.format, p, end, at_eof);
    if (blank == Blank::kUnknown) {  // a JSON Lines line of blanks runs past the block
      ASSIGN_OR_RETURN(const uint64_t next, NextRecord(f, offset));
      blank = next == offset ? Blank::kNo : Blank::kYes;
    }
    if (blank == Blank::kNo) ++block_counts.records;
    return Status::OK();
  };
  if (f.first_record >= lo && f.first_record < hi) RETURN_IF_ERROR(add_record(block + (f.first_record - lo)));
  for (const char* newline = Find(buf, block_end, '\n'); newline < block_end;
       newline = Find(newline + 1, block_end, '\n')) {
    if (newline >= block) ++block_counts.newlines;
    if (newline + 1 < block_end) RETURN_IF_ERROR(add_record(newline + 1));
  }
  *counts = block_counts;
  return true;
}

}  // namespace

Result<std::optional<std::vector<RecordRange>>> SplitAtRecordsInBlocks(Env* env, const std::string& path,
                                                                       InputFormat format, const CsvOptions& csv,
                                                                       uint64_t target_bytes, size_t block_bytes) {
  if (format != InputFormat::kCsv && format != InputFormat::kJsonl) return MaybeRanges();
  if (block_bytes == 0 || target_bytes < block_bytes) return MaybeRanges();
  ASSIGN_OR_RETURN(const std::unique_ptr<RandomAccessFile> file, env->NewRandomAccessFile(path));
  ASSIGN_OR_RETURN(const FileInfo info, env->Stat(path));
  if (info.size / kMinParallelBlocks < block_bytes) return MaybeRanges();
  ChunkReader bom_reader(file.get(), path, 0, kProbeBytes);
  ASSIGN_OR_RETURN(const size_t first_record, bom_reader.Utf8BomLength());
  const LineFile f{file.get(), path, format, info.size, first_record, std::min(block_bytes, kProbeBytes)};

  // The range starts, by RangeBuilder's rule: range 0 ends before the first
  // data record that is not the file's first and starts at least target_bytes
  // into the file; each later range ends before the first non-blank record
  // that starts at least target_bytes past its own start.
  const bool header = format == InputFormat::kCsv && csv.header;
  ASSIGN_OR_RETURN(const uint64_t first, NextRecord(f, first_record));
  uint64_t first_data = first;
  if (header && first < f.size) {
    ASSIGN_OR_RETURN(first_data, NextRecord(f, first + 1));
  }
  std::vector<uint64_t> starts;
  uint64_t from = std::max(first_data + 1, target_bytes);
  while (from < f.size) {
    ASSIGN_OR_RETURN(const uint64_t start, NextRecord(f, from));
    if (start >= f.size) break;
    starts.push_back(start);
    from = target_bytes < f.size - start ? start + target_bytes : f.size;
  }

  // Lines and records per block, and up to each range start inside a block.
  const char quote = format == InputFormat::kCsv ? csv.quote : '\0';
  const auto num_blocks = static_cast<size_t>((f.size + block_bytes - 1) / block_bytes);
  std::vector<Counts> block_counts(num_blocks);
  std::vector<Counts> at_start(starts.size());
  std::vector<Status> block_errors(num_blocks);
  std::atomic<bool> sequential{false};  // a block found the quote byte or an error: stop
  // Tasks acquire what this thread prepared and release what they did (core/tsan_annotations.h).
  void* const handoff = &block_counts;
  TsanRelease(handoff);
  tbb::parallel_for(tbb::blocked_range<size_t>(0, num_blocks), [&](const tbb::blocked_range<size_t>& blocks) {
    TsanAcquire(handoff);
    const std::unique_ptr<char[]> buf(new char[block_bytes + 2]);
    for (size_t block_idx = blocks.begin(); block_idx < blocks.end(); ++block_idx) {
      if (sequential.load(std::memory_order_relaxed)) break;
      const uint64_t lo = block_idx * uint64_t{block_bytes};
      Result<bool> counted = CountBlock(f, quote, lo, std::min<uint64_t>(lo + block_bytes, f.size), starts,
                                        &at_start, buf.get(), &block_counts[block_idx]);
      if (!counted.ok()) block_errors[block_idx] = counted.status();
      if (!counted.ok() || !*counted) sequential.store(true, std::memory_order_relaxed);
    }
    TsanRelease(handoff);
  });
  TsanAcquire(handoff);
  for (const Status& error : block_errors) RETURN_IF_ERROR(error);
  if (sequential.load()) return MaybeRanges();

  std::vector<RecordRange> ranges(1);
  Counts before;  // counts of the blocks before block_idx
  size_t block_idx = 0;
  int64_t records_before = header && first < f.size ? 1 : 0;  // the header is no data record
  for (size_t start_idx = 0; start_idx < starts.size(); ++start_idx) {
    for (; block_idx < starts[start_idx] / block_bytes; ++block_idx) before.Add(block_counts[block_idx]);
    Counts at = before;
    at.Add(at_start[start_idx]);
    ranges.back().records = at.records - records_before;
    ranges.push_back(RecordRange{starts[start_idx], at.newlines + 1, 0});
    records_before = at.records;
  }
  for (; block_idx < num_blocks; ++block_idx) before.Add(block_counts[block_idx]);
  ranges.back().records = before.records - records_before;
  return MaybeRanges(std::move(ranges));
}

Result<std::vector<RecordRange>> SplitAtRecords(Env* env, const std::string& path, InputFormat format,
                                                const CsvOptions& csv, uint64_t target_bytes, size_t chunk_bytes,
                                                size_t block_bytes) {
  Result<MaybeRanges> split = SplitAtRecordsInBlocks(env, path, format, csv, target_bytes, block_bytes);
  if (!split.ok()) return split.status();
  if (split->has_value()) return std::move(**split);
  ASSIGN_OR_RETURN(const std::unique_ptr<RandomAccessFile> file, env->NewRandomAccessFile(path));
  ChunkReader reader(file.get(), path, 0, chunk_bytes);
  RangeBuilder ranges(target_bytes);
  switch (format) {
    case InputFormat::kCsv: RETURN_IF_ERROR(ScanCsv(&reader, csv, &ranges)); break;
    case InputFormat::kJsonl: RETURN_IF_ERROR(ScanJsonl(&reader, &ranges)); break;
    case InputFormat::kParquet:
    case InputFormat::kSqlite:
    case InputFormat::kPostgres:
      return Status::InvalidArgument("input '" + path + "': only CSV and JSON Lines are split at records");
  }
  return ranges.Finish();
}

}  // namespace sluice
