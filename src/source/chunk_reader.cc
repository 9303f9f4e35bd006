#include "source/chunk_reader.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace sluice {

ChunkReader::ChunkReader(const RandomAccessFile* file, std::string path, uint64_t start,
                         size_t chunk_bytes, size_t padding)
    : file_(file),
      path_(std::move(path)),
      chunk_bytes_(std::max<size_t>(chunk_bytes, 1)),
      padding_(padding),
      offset_(start) {}

Result<size_t> ChunkReader::Fill(size_t keep) {
  keep = std::min(keep, size_);
  const size_t kept = size_ - keep;
  const size_t needed = kept + chunk_bytes_;
  if (needed > capacity_) {
    // Grow geometrically so a record much larger than a chunk costs O(record).
    const size_t new_capacity = std::max(needed, capacity_ * 2);
    std::unique_ptr<char[]> bigger(new char[new_capacity + padding_]);
    if (kept > 0) std::memcpy(bigger.get(), buf_.get() + keep, kept);
    buf_ = std::move(bigger);
    capacity_ = new_capacity;
  } else if (keep > 0 && kept > 0) {
    std::memmove(buf_.get(), buf_.get() + keep, kept);
  }
  offset_ += keep;
  size_ = kept;
  if (eof_) return size_t{0};

  const size_t want = capacity_ - size_;
  Result<size_t> got = file_->ReadAt(offset_ + size_, want, buf_.get() + size_);
  if (!got.ok()) {
    return got.status().WithContext("reading '" + path_ + "' at byte " + std::to_string(offset_ + size_));
  }
  size_ += *got;
  if (*got < want) eof_ = true;
  // Defined bytes past the data for parsers that read into the padding.
  if (padding_ > 0) std::memset(buf_.get() + size_, ' ', padding_);
  return *got;
}

Result<size_t> ChunkReader::Utf8BomLength() {
  while (size_ < 3 && !eof_) {
    Result<size_t> got = Fill(0);
    if (!got.ok()) return got.status();
  }
  if (size_ >= 3 && std::memcmp(buf_.get(), "\xEF\xBB\xBF", 3) == 0) return size_t{3};
  return size_t{0};
}

Result<int64_t> CountNewlines(const RandomAccessFile* file, const std::string& path, uint64_t end,
                              size_t chunk_bytes) {
  chunk_bytes = std::max<size_t>(chunk_bytes, 1);
  std::unique_ptr<char[]> buf(new char[chunk_bytes]);
  int64_t newlines = 0;
  uint64_t pos = 0;
  while (pos < end) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk_bytes, end - pos));
    Result<size_t> got = file->ReadAt(pos, want, buf.get());
    if (!got.ok()) {
      return got.status().WithContext("reading '" + path + "' at byte " + std::to_string(pos));
    }
    newlines += std::count(buf.get(), buf.get() + *got, '\n');
    pos += *got;
    if (*got < want) break;
  }
  return newlines;
}

Result<int64_t> LineAt(const RandomAccessFile* file, const std::string& path, uint64_t offset, int64_t known_line,
                       size_t chunk_bytes) {
  if (offset == 0) return int64_t{1};
  if (known_line > 0) return known_line;
  ASSIGN_OR_RETURN(const int64_t newlines, CountNewlines(file, path, offset, chunk_bytes));
  return newlines + 1;
}

}  // namespace sluice
