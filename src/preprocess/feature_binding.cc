#include "preprocess/feature_binding.h"

#include <fast_float/fast_float.h>

#include <algorithm>
#include <set>

#include "preprocess/transform_step.h"

namespace sluice {
namespace {

constexpr size_t kMaxRejectValueBytes = 256;

std::string ColumnList(const Schema& schema) {
  std::string out;
  for (const Field& f : schema.fields()) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

Status CheckOneHot(const BoundFeature& b) {
  const FeatureSpec& spec = b.spec;
  std::set<std::string_view> seen;
  for (const std::string& category : spec.one_hot) {
    if (!seen.insert(category).second) {
      return Status::InvalidArgument(b.label + ": one_hot: duplicate category '" + category + "'");
    }
  }
  if (!spec.transforms.empty()) {
    return Status::InvalidArgument(b.label + ": one_hot features take no transforms (found " +
                                   std::string(TransformKindName(spec.transforms[0].kind)) + ")");
  }
  if (spec.impute == ImputeKind::kMean || spec.impute == ImputeKind::kMedian) {
    return Status::InvalidArgument(b.label + ": impute: " + std::string(ImputeKindName(spec.impute)) +
                                   " needs a numeric feature; a one_hot feature takes none, nan, "
                                   "most_frequent or constant");
  }
  if (b.column_type == DataType::kFloat32 || b.column_type == DataType::kFloat64 ||
      b.column_type == DataType::kInt64 || b.column_type == DataType::kBool ||
      b.column_type == DataType::kString || spec.datetime) {
    return Status::OK();
  }
  return Status::InvalidArgument(b.label + ": one_hot on timestamp column '" + spec.column +
                                 "' needs a datetime part");
}

Status CheckNumeric(const BoundFeature& b) {
  const FeatureSpec& spec = b.spec;
  bool has_standardize = false;
  bool has_minmax = false;
  for (const TransformSpec& t : spec.transforms) {
    bool* seen = nullptr;
    if (t.kind == TransformKind::kStandardize) seen = &has_standardize;
    if (t.kind == TransformKind::kMinMax) seen = &has_minmax;
    if (seen != nullptr) {
      if (*seen) {
        return Status::NotSupported(b.label + ": transform " + std::string(TransformKindName(t.kind)) +
                                    " appears twice; a feature may use each of standardize and "
                                    "minmax at most once");
      }
      *seen = true;
    }
    if (t.kind == TransformKind::kClip && t.clip_min && t.clip_max && *t.clip_min > *t.clip_max) {
      return Status::InvalidArgument(b.label + ": clip: min is greater than max");
    }
  }
  if (IsTemporal(b.column_type) && !spec.datetime) {
    return Status::InvalidArgument(b.label + ": " + std::string(DataTypeName(b.column_type)) + " column '" + spec.column +
                                   "' needs a datetime part (hour, dow, day, month, year, epoch)");
  }
  return Status::OK();
}

}  // namespace

Result<std::vector<BoundFeature>> BindFeatures(const std::vector<FeatureSpec>& features,
                                               const Schema& input_schema) {
  std::vector<BoundFeature> bound;
  bound.reserve(features.size());
  std::set<std::string_view> names;
  for (size_t feature_idx = 0; feature_idx < features.size(); ++feature_idx) {
    BoundFeature b;
    b.index = feature_idx;
    b.spec = features[feature_idx];
    if (b.spec.column.empty()) b.spec.column = b.spec.name;
    b.label = "features[" + std::to_string(feature_idx) + "] (" + b.spec.name + ")";
    if (b.spec.name.empty()) {
      return Status::InvalidArgument("features[" + std::to_string(feature_idx) + "]: empty feature name");
    }
    if (!names.insert(features[feature_idx].name).second) {
      return Status::InvalidArgument(b.label + ": duplicate feature name");
    }
    const std::optional<size_t> col = input_schema.FieldIndex(b.spec.column);
    if (!col) {
      return Status::InvalidArgument(b.label + ": no input column '" + b.spec.column +
                                     "' (columns: " + ColumnList(input_schema) + ")");
    }
    b.column_index = *col;
    b.column_type = input_schema.field(*col).type;
    if (b.spec.datetime && !IsTemporal(b.column_type)) {
      return Status::InvalidArgument(b.label + ": datetime needs a timestamp or date column, '" + b.spec.column +
                                     "' is " + std::string(DataTypeName(b.column_type)));
    }
    RETURN_IF_ERROR(b.one_hot() ? CheckOneHot(b) : CheckNumeric(b));
    bound.push_back(std::move(b));
  }
  return bound;
}

const Column* FindBatchColumn(const Batch& batch, size_t column_index, std::string_view name) {
  const Column* col = nullptr;
  if (column_index < batch.columns.size() && column_index < batch.schema.num_fields() &&
      batch.schema.field(column_index).name == name) {
    col = &batch.columns[column_index];
  } else {
    col = batch.ColumnByName(name);
  }
  return (col != nullptr && col->size() == batch.num_rows()) ? col : nullptr;
}

bool ParseNumber(std::string_view text, double* out) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return false;
  const char* first = text.data();
  const char* last = first + text.size();
  if (*first == '+') ++first;  // fast_float, like from_chars, refuses a leading '+'
  if (first == last) return false;
  const fast_float::from_chars_result res = fast_float::from_chars(first, last, *out);
  return res.ec == std::errc() && res.ptr == last;
}

std::string_view NumberCategoryText(DataType type, double value, char (&buf)[kNumberTextSize]) {
  std::to_chars_result res{};
  switch (type) {
    case DataType::kBool: return value != 0 ? "true" : "false";
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate:
      // Values are integral here (int64 columns, datetime parts).
      if (std::abs(value) < 9.2e18) {
        res = std::to_chars(buf, buf + kNumberTextSize, static_cast<int64_t>(value));
        break;
      }
      res = std::to_chars(buf, buf + kNumberTextSize, value);
      break;
    case DataType::kFloat32:
      res = std::to_chars(buf, buf + kNumberTextSize, static_cast<float>(value));
      break;
    case DataType::kFloat64:
    case DataType::kString:
      res = std::to_chars(buf, buf + kNumberTextSize, value);
      break;
  }
  return std::string_view(buf, static_cast<size_t>(res.ptr - buf));
}

std::string RejectValueText(const Column& col, size_t row_idx) {
  if (col.IsNull(row_idx)) return std::string();
  char buf[kNumberTextSize];
  switch (col.type()) {
    case DataType::kString: {
      std::string_view s = col.StringAt(row_idx);
      return std::string(s.substr(0, kMaxRejectValueBytes));
    }
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: {
      const auto res = std::to_chars(buf, buf + kNumberTextSize, col.int64s()[row_idx]);
      return std::string(buf, res.ptr);
    }
    default:
      return std::string(NumberCategoryText(col.type(), col.NumericAt(row_idx), buf));
  }
}

}  // namespace sluice
