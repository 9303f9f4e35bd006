#include "sluice/schema.h"

#include <string>

namespace sluice {

std::string_view DataTypeName(DataType type) {
  switch (type) {
    case DataType::kInt64: return "int64";
    case DataType::kFloat32: return "float32";
    case DataType::kFloat64: return "float64";
    case DataType::kBool: return "bool";
    case DataType::kString: return "string";
    case DataType::kTimestamp: return "timestamp";
    case DataType::kDate: return "date";
  }
  return "unknown";
}

Result<DataType> ParseDataType(std::string_view name) {
  if (name == "int64" || name == "int") return DataType::kInt64;
  if (name == "float32" || name == "float") return DataType::kFloat32;
  if (name == "float64" || name == "double") return DataType::kFloat64;
  if (name == "bool" || name == "boolean") return DataType::kBool;
  if (name == "string" || name == "str") return DataType::kString;
  if (name == "timestamp") return DataType::kTimestamp;
  if (name == "date") return DataType::kDate;
  return Status::InvalidArgument("unknown type '" + std::string(name) +
                                 "' (expected int64, float32, float64, bool, string, timestamp, date)");
}

std::optional<size_t> Schema::FieldIndex(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return i;
  }
  return std::nullopt;
}

}  // namespace sluice
