#include "source/record_split.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

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

}  // namespace

Result<std::vector<RecordRange>> SplitAtRecords(Env* env, const std::string& path, InputFormat format,
                                                const CsvOptions& csv, uint64_t target_bytes, size_t chunk_bytes) {
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
