// Directory layout of partitioned output (output.partition_by, see sink.h):
// which directory a row goes to, and which columns its file keeps.
//
// A row's directory is "<level>=<value>/…" with one level per key, outermost
// first. The level is PartitionKey::DirName() with its bytes outside
// [A-Za-z0-9_.-] percent-encoded as in values ("a/b" -> "a%2Fb"), so a column
// name can neither add nor climb a directory level.
//
// Thread-safety: PartitionLayout is used by one thread at a time (it keeps a
// scratch buffer); the free functions are stateless.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/batch.h"
#include "sluice/job.h"
#include "sluice/status.h"

namespace sluice {

// The directory value of a null, and of the empty string.
inline constexpr std::string_view kNullPartitionValue = "__null__";
inline constexpr std::string_view kEmptyPartitionValue = "__empty__";
// Longest escaped value; longer ones are cut to fit "~" + 16 hex digits.
inline constexpr size_t kMaxPartitionValueBytes = 128;

// Appends the raw text of a (non-null) value as a directory name, by the rules
// of sink.h: bytes other than [A-Za-z0-9_.-] as %XX (upper-case hex); "." and
// ".." fully encoded; a leading "__" as "%5F_"; "" as "__empty__"; past 128
// bytes cut (never inside a %XX) and ended with "~" and the first 16 hex digits
// of the SHA-256 of `raw`, 128 bytes in all. Distinct inputs give distinct
// names (the cut ones up to a 64-bit hash collision).
void AppendEscapedPartitionValue(std::string_view raw, std::string* out);

// Hash bucket of value `row` of `column`: MixHash(HashKey*(value, kHashSeed))
// % buckets, hashed as partition.sample hashes key values (null included).
// Precondition: buckets > 0, row < column.size().
uint64_t HashBucket(const Column& column, size_t row, int buckets);

// Appends `bucket` zero-padded to the width of buckets - 1 (at least 1 digit).
void AppendHashBucketText(uint64_t bucket, int buckets, std::string* out);

class PartitionLayout {
 public:
  // kInvalidArgument naming output.partition_by[i] when key i's column is not
  // in `schema`, or a time window is asked of a column that is not a timestamp.
  // Columns named in `layout_only` are left out of the files too.
  static Result<PartitionLayout> Make(const Schema& schema, const std::vector<PartitionKey>& keys,
                                      const std::vector<std::string>& layout_only = {});

  bool partitioned() const { return !levels_.empty(); }
  // The columns the files hold: `schema` minus plain partition columns and layout-only columns.
  const Schema& file_schema() const { return file_schema_; }
  // For each file column, its index in `schema`.
  const std::vector<size_t>& file_columns() const { return file_columns_; }

  // Appends the directory of row `row` of `batch` (whose schema is the one given
  // to Make), each level ended by "/": "ts_day=2024-01-05/merchant=travel/".
  // Nothing when not partitioned.
  void AppendRowDir(const Batch& batch, size_t row, std::string* out);

 private:
  struct Level {
    PartitionKey key;
    size_t column = 0;
    std::string prefix;  // escaped DirName() + "="
  };

  std::vector<Level> levels_;
  Schema file_schema_;
  std::vector<size_t> file_columns_;
  std::string raw_;  // scratch: a plain value's text before escaping
};

}  // namespace sluice
