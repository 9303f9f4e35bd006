#include "sink/partition_layout.h"

#include <charconv>
#include <optional>

#include "core/hash.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "sink/value_format.h"

namespace sluice {
namespace {

bool IsSafeByte(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

void AppendPercentEncoded(unsigned char c, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back('%');
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0xF]);
}

// Bytes outside the safe set as %XX; all of them when `encode_all`, and the
// first when `encode_first`.
void AppendEncodedBytes(std::string_view raw, bool encode_all, bool encode_first, std::string* out) {
  for (size_t i = 0; i < raw.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(raw[i]);
    if (encode_all || (i == 0 && encode_first) || !IsSafeByte(c)) {
      AppendPercentEncoded(c, out);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
}

// The raw text of a non-null plain partition value: as the CSV writer writes
// it, without quoting.
void AppendRawValueText(const Column& column, size_t row, std::string* out) {
  switch (column.type()) {
    case DataType::kInt64: AppendInt64Text(column.int64s()[row], out); return;
    case DataType::kFloat32: AppendFloat32Text(column.float32s()[row], TextFormat::kCsv, out); return;
    case DataType::kFloat64: AppendFloat64Text(column.float64s()[row], TextFormat::kCsv, out); return;
    case DataType::kBool: AppendBoolText(column.bools()[row] != 0, out); return;
    case DataType::kTimestamp: AppendTimestampText(column.int64s()[row], out); return;
    case DataType::kDate: AppendDateValueText(column.int64s()[row], out); return;
    case DataType::kString: out->append(column.StringAt(row)); return;
  }
}

}  // namespace

void AppendEscapedPartitionValue(std::string_view raw, std::string* out) {
  if (raw.empty()) {
    out->append(kEmptyPartitionValue);
    return;
  }
  const size_t start = out->size();
  // "." and ".." would name the directory itself or its parent; a leading "__"
  // would let a value pass for __null__ or __empty__.
  AppendEncodedBytes(raw, raw == "." || raw == "..", raw.starts_with("__"), out);
  if (out->size() - start <= kMaxPartitionValueBytes) return;
  constexpr size_t kSuffixBytes = 17;  // "~" + 16 hex digits
  size_t cut = start + kMaxPartitionValueBytes - kSuffixBytes;
  // Every '%' in the output starts an escape: do not cut one in two.
  if ((*out)[cut - 1] == '%') {
    cut -= 1;
  } else if ((*out)[cut - 2] == '%') {
    cut -= 2;
  }
  out->resize(cut);
  out->push_back('~');
  out->append(Sha256Hex(raw).substr(0, kSuffixBytes - 1));
}

uint64_t HashBucket(const Column& column, size_t row, int buckets) {
  uint64_t h = kHashSeed;
  if (column.IsNull(row)) {
    h = HashKeyNull(h);
  } else {
    switch (column.type()) {
      case DataType::kInt64:
      case DataType::kTimestamp:
      case DataType::kDate: h = HashKeyInt(column.int64s()[row], h); break;
      case DataType::kFloat32: h = HashKeyDouble(static_cast<double>(column.float32s()[row]), h); break;
      case DataType::kFloat64: h = HashKeyDouble(column.float64s()[row], h); break;
      case DataType::kBool: h = HashKeyBool(column.bools()[row] != 0, h); break;
      case DataType::kString: h = HashKeyString(column.StringAt(row), h); break;
    }
  }
  return MixHash(h) % static_cast<uint64_t>(buckets);
}

void AppendHashBucketText(uint64_t bucket, int buckets, std::string* out) {
  char digits[24];
  char max_digits[24];
  char* end = std::to_chars(digits, digits + sizeof digits, bucket).ptr;
  const char* max_end = std::to_chars(max_digits, max_digits + sizeof max_digits, buckets - 1).ptr;
  for (auto pad = (max_end - max_digits) - (end - digits); pad > 0; --pad) out->push_back('0');
  out->append(digits, end);
}

Result<PartitionLayout> PartitionLayout::Make(const Schema& schema, const std::vector<PartitionKey>& keys,
                                              const std::vector<std::string>& layout_only) {
  PartitionLayout layout;
  std::vector<bool> dropped(schema.num_fields(), false);
  for (size_t key_idx = 0; key_idx < keys.size(); ++key_idx) {
    const PartitionKey& key = keys[key_idx];
    const std::string path = "output.partition_by[" + std::to_string(key_idx) + "]";
    const std::optional<size_t> column = schema.FieldIndex(key.column);
    if (!column) {
      std::vector<std::string> names;
      for (const Field& field : schema.fields()) names.push_back(field.name);
      return Status::InvalidArgument(path + ": no column '" + key.column + "' in the output (columns: " +
                                     JoinNames(names) + ")");
    }
    const DataType type = schema.field(*column).type;
    if (key.window && !IsTemporal(type)) {
      return Status::InvalidArgument(path + ": time bucket '" + std::string(TimeWindowName(*key.window)) +
                                     "' needs a timestamp or date column; '" + key.column + "' is " +
                                     std::string(DataTypeName(type)));
    }
    Level level{key, *column, {}};
    AppendEncodedBytes(key.DirName(), false, false, &level.prefix);
    level.prefix.push_back('=');
    layout.levels_.push_back(std::move(level));
    if (!key.window && key.buckets <= 0) dropped[*column] = true;
  }
  for (const std::string& name : layout_only) {
    if (std::optional<size_t> col = schema.FieldIndex(name)) dropped[*col] = true;
  }
  for (size_t col_idx = 0; col_idx < schema.num_fields(); ++col_idx) {
    if (dropped[col_idx]) continue;
    layout.file_schema_.AddField(schema.field(col_idx));
    layout.file_columns_.push_back(col_idx);
  }
  return layout;
}

void PartitionLayout::AppendRowDir(const Batch& batch, size_t row, std::string* out) {
  for (const Level& level : levels_) {
    const Column& column = batch.columns[level.column];
    out->append(level.prefix);
    if (level.key.buckets > 0 && !level.key.window) {
      AppendHashBucketText(HashBucket(column, row, level.key.buckets), level.key.buckets, out);
    } else if (column.IsNull(row)) {
      out->append(kNullPartitionValue);
    } else if (level.key.window) {
      AppendTimeBucketText(column.int64s()[row], *level.key.window, out);
    } else if (column.type() == DataType::kString) {
      AppendEscapedPartitionValue(column.StringAt(row), out);
    } else {
      raw_.clear();
      AppendRawValueText(column, row, &raw_);
      AppendEscapedPartitionValue(raw_, out);
    }
    out->push_back('/');
  }
}

}  // namespace sluice
