// Binding features to input columns, and reading column values as feature
// values (internal to preprocess). Shared by Preprocessor and StatsFitter so
// that both read, check and reject values the same way.
//
// Thread-safety: values and pure functions.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "preprocess/datetime_part.h"
#include "sluice/batch.h"
#include "sluice/job.h"
#include "sluice/schema.h"
#include "sluice/status.h"

namespace sluice {

// A feature checked against the input schema.
struct BoundFeature {
  size_t index = 0;    // position in the features list
  FeatureSpec spec;    // copy; spec.column filled in (defaults to spec.name)
  std::string label;   // "features[2] (amount)", the prefix of every message
  size_t column_index = 0;
  DataType column_type = DataType::kFloat64;

  bool one_hot() const { return !spec.one_hot.empty(); }
};

// Binds every feature to its input column and checks what needs no statistics:
//  - the column exists ("features[0] (amount): no input column 'amount' (columns: id, x, y)");
//  - feature names are unique;
//  - datetime parts read timestamp (or date) columns, and timestamp and date
//    columns are read through a datetime part;
//  - one-hot features: categories unique and non-empty, no transforms, impute is
//    none / nan / most_frequent / constant;
//  - numeric features: clip bounds ordered; no parameterized transform
//    (standardize, minmax) twice (kNotSupported).
// Errors are kInvalidArgument (kNotSupported as noted) and name the feature.
Result<std::vector<BoundFeature>> BindFeatures(const std::vector<FeatureSpec>& features,
                                               const Schema& input_schema);

// The column `name` of `batch`: at `column_index` when the batch's schema has it
// there (the schema given at bind time), else looked up by name; nullptr if the
// batch has no such column or its length differs from the batch's.
const Column* FindBatchColumn(const Batch& batch, size_t column_index, std::string_view name);

// Parses the whole of `text` (surrounding spaces and tabs allowed) as a number,
// with fast_float. "nan" parses (to NaN), "inf" too. False if not a number.
bool ParseNumber(std::string_view text, double* out);

// State of one value read as a feature value.
enum class ValueState : uint8_t {
  kValue,  // a number (finite or not)
  kNull,   // null, or NaN
  kBad,    // cannot be a number: unparseable string, or wrong column type
};

// Calls fn(row_idx, ValueState, double value) for rows [begin, end) of `col` read as a
// numeric feature: int64/float32/float64/bool as numbers, strings parsed,
// timestamps and dates through `part` (one without a part, or a part of a
// column of another type, is kBad). One tight loop per column type; no allocation.
template <typename Fn>
void ForEachNumericValue(const Column& col, std::optional<DatetimePart> part, size_t begin, size_t end, Fn&& fn) {
  const uint8_t* valid = col.validity().data();
  switch (col.type()) {
    case DataType::kInt64: {
      const int64_t* v = col.int64s().data();
      for (size_t i = begin; i < end; ++i) {
        fn(i, valid[i] ? ValueState::kValue : ValueState::kNull, static_cast<double>(v[i]));
      }
      return;
    }
    case DataType::kFloat32: {
      const float* v = col.float32s().data();
      for (size_t i = begin; i < end; ++i) {
        const double x = v[i];
        fn(i, (valid[i] && !std::isnan(x)) ? ValueState::kValue : ValueState::kNull, x);
      }
      return;
    }
    case DataType::kFloat64: {
      const double* v = col.float64s().data();
      for (size_t i = begin; i < end; ++i) {
        fn(i, (valid[i] && !std::isnan(v[i])) ? ValueState::kValue : ValueState::kNull, v[i]);
      }
      return;
    }
    case DataType::kBool: {
      const uint8_t* v = col.bools().data();
      for (size_t i = begin; i < end; ++i) {
        fn(i, valid[i] ? ValueState::kValue : ValueState::kNull, v[i] ? 1.0 : 0.0);
      }
      return;
    }
    case DataType::kTimestamp:
    case DataType::kDate: {
      const int64_t* v = col.int64s().data();
      for (size_t i = begin; i < end; ++i) {
        if (!valid[i]) {
          fn(i, ValueState::kNull, 0.0);
        } else if (!part) {
          fn(i, ValueState::kBad, 0.0);
        } else {
          fn(i, ValueState::kValue, DatetimePartOf(v[i], *part));
        }
      }
      return;
    }
    case DataType::kString: {
      for (size_t i = begin; i < end; ++i) {
        if (!valid[i]) {
          fn(i, ValueState::kNull, 0.0);
          continue;
        }
        double x = 0;
        if (part || !ParseNumber(col.StringAt(i), &x)) {
          fn(i, ValueState::kBad, 0.0);
        } else {
          fn(i, std::isnan(x) ? ValueState::kNull : ValueState::kValue, x);
        }
      }
      return;
    }
  }
}

// Large enough for any number text below.
inline constexpr size_t kNumberTextSize = 64;

// The text form a one-hot category is compared with, for a number read from a
// column of `type`: int64 and timestamp parts in decimal ("42"), float32 and
// float64 as the shortest text that reads back to the same value ("2.5", "3"),
// bool "true"/"false". Writes into buf; the view points into buf (or a literal).
std::string_view NumberCategoryText(DataType type, double value, char (&buf)[kNumberTextSize]);

// Calls fn(row_idx, ValueState, std::string_view text) for rows [begin, end) of `col`
// read as a one-hot feature: strings as they are, numbers as NumberCategoryText
// (int64 exactly), timestamps through `part` (kBad without a part). NaN is null.
template <typename Fn>
void ForEachCategoryText(const Column& col, std::optional<DatetimePart> part, size_t begin, size_t end, Fn&& fn) {
  char buf[kNumberTextSize];
  if (col.type() == DataType::kString) {
    for (size_t i = begin; i < end; ++i) {
      fn(i, col.IsValid(i) ? ValueState::kValue : ValueState::kNull, col.StringAt(i));
    }
    return;
  }
  if (col.type() == DataType::kInt64) {
    const int64_t* v = col.int64s().data();
    for (size_t i = begin; i < end; ++i) {
      if (col.IsNull(i)) {
        fn(i, ValueState::kNull, std::string_view());
        continue;
      }
      const auto res = std::to_chars(buf, buf + kNumberTextSize, v[i]);
      fn(i, ValueState::kValue, std::string_view(buf, static_cast<size_t>(res.ptr - buf)));
    }
    return;
  }
  const DataType text_type = IsTemporal(col.type()) ? DataType::kInt64 : col.type();
  ForEachNumericValue(col, part, begin, end, [&](size_t i, ValueState state, double x) {
    fn(i, state, state == ValueState::kValue ? NumberCategoryText(text_type, x, buf)
                                             : std::string_view());
  });
}

// Text of value `row_idx` of `col` for a reject record: strings (truncated to
// 256 bytes) as they are, numbers in their shortest form, "" for null.
std::string RejectValueText(const Column& col, size_t row_idx);

}  // namespace sluice
