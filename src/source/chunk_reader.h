// ChunkReader: a reusable window over a file, filled in large chunks, for the
// text readers (CSV, JSON Lines).
//
// The window holds bytes [offset(), offset() + size()) of the file. Fill(keep)
// drops the bytes before window position `keep`, moves the rest to the front and
// appends the next chunk; a record that spans chunks is therefore kept whole as
// long as the caller passes the record's start as `keep`. The window grows only
// when one record is larger than a chunk, so memory is bounded by the largest
// record plus one chunk, not by the file size.
//
// `padding` extra bytes are always allocated (not initialized) past size(), for
// parsers that read a little beyond the data (simdjson).
//
// Thread-safety: none; one reader per thread. The file is borrowed and must
// outlive the ChunkReader.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sluice/env.h"
#include "sluice/status.h"

namespace sluice {

inline constexpr size_t kDefaultChunkBytes = size_t{1} << 20;
inline constexpr size_t kDefaultMaxRecordBytes = size_t{256} << 20;

// Internal knobs of the text readers; tests shrink them to exercise records
// that span chunks and the record size limit.
struct TextReadTuning {
  size_t chunk_bytes = kDefaultChunkBytes;
  // A record (CSV) or line (JSON Lines) larger than this is a hard error
  // (kCorruption): usually an unterminated quote; it bounds memory.
  size_t max_record_bytes = kDefaultMaxRecordBytes;
};

class ChunkReader {
 public:
  // Reads `file` (named `path` in messages) from byte `start`.
  ChunkReader(const RandomAccessFile* file, std::string path, uint64_t start,
              size_t chunk_bytes = kDefaultChunkBytes, size_t padding = 0);

  const char* data() const { return buf_.get(); }
  size_t size() const { return size_; }
  // File offset of window position 0.
  uint64_t offset() const { return offset_; }
  // True once a read returned fewer bytes than asked: no more data after size().
  bool eof() const { return eof_; }

  // Drops window bytes [0, keep), then reads the next chunk after the window.
  // Returns the number of new bytes (0 at end of file). I/O errors name the path
  // and offset.
  Result<size_t> Fill(size_t keep);

  // Reads until the window holds 3 bytes (or the file ends) and returns 3 if it
  // starts with a UTF-8 byte order mark, else 0. Call on a fresh reader at offset 0.
  Result<size_t> Utf8BomLength();

 private:
  const RandomAccessFile* file_;
  std::string path_;
  size_t chunk_bytes_;
  size_t padding_;
  std::unique_ptr<char[]> buf_;
  size_t capacity_ = 0;  // bytes usable for data (allocation minus padding)
  size_t size_ = 0;
  uint64_t offset_;
  bool eof_ = false;
};

// Number of '\n' bytes in [0, end) of `file` (used to find the physical line
// number of a range that starts mid-file). Reads in chunks of `chunk_bytes`.
Result<int64_t> CountNewlines(const RandomAccessFile* file, const std::string& path, uint64_t end,
                              size_t chunk_bytes = kDefaultChunkBytes);

// The 1-based line of the record at byte `offset`: 1 at the file start,
// `known_line` when the planner gave one (> 0), else counted (CountNewlines).
Result<int64_t> LineAt(const RandomAccessFile* file, const std::string& path, uint64_t offset, int64_t known_line,
                       size_t chunk_bytes = kDefaultChunkBytes);

}  // namespace sluice
