// Column types and schemas of the batches that flow between stages.
// Thread-safety: values; immutable once built, safe to share.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice {

enum class DataType {
  kInt64,
  kFloat32,
  kFloat64,
  kBool,
  kString,
  kTimestamp,  // int64 microseconds since the Unix epoch, UTC
  kDate,       // a calendar day: int64 microseconds since the Unix epoch at its UTC midnight
};

// Timestamps and dates share storage (int64 microseconds, UTC): what reads or
// buckets instants (datetime features, time windows) takes either.
inline bool IsTemporal(DataType type) { return type == DataType::kTimestamp || type == DataType::kDate; }

// "int64", "float32", "float64", "bool", "string", "timestamp", "date".
std::string_view DataTypeName(DataType type);
// Parses a type name; also accepts "int", "float", "double", "boolean", "str".
Result<DataType> ParseDataType(std::string_view name);

struct Field {
  std::string name;
  DataType type = DataType::kString;
  bool operator==(const Field&) const = default;
};

class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields) : fields_(std::move(fields)) {}

  const std::vector<Field>& fields() const { return fields_; }
  size_t num_fields() const { return fields_.size(); }
  const Field& field(size_t i) const { return fields_[i]; }
  // Index of the field named `name`, or nullopt.
  std::optional<size_t> FieldIndex(std::string_view name) const;
  void AddField(Field f) { fields_.push_back(std::move(f)); }
  bool operator==(const Schema&) const = default;

 private:
  std::vector<Field> fields_;
};

}  // namespace sluice
