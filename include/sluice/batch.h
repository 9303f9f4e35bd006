// The columnar Batch that flows from source to sink.
//
// A Column holds values of one DataType plus a validity flag per value. Storage
// by type: kInt64/kTimestamp/kDate -> int64s(); kFloat32 -> float32s(); kFloat64 ->
// float64s(); kBool -> bools() (0/1 bytes); kString -> contiguous chars with
// offsets. A null value keeps a zero/empty slot so indices line up.
//
// Thread-safety: none; a Batch is owned by one stage at a time and handed on.
#pragma once

#include <cassert>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/schema.h"

namespace sluice {

class Column {
 public:
  explicit Column(DataType type = DataType::kFloat64) : type_(type) {}

  DataType type() const { return type_; }
  size_t size() const { return valid_.size(); }
  bool IsValid(size_t i) const { return valid_[i] != 0; }
  bool IsNull(size_t i) const { return valid_[i] == 0; }
  size_t null_count() const;

  // Appends; the Append for the column's type only (checked by assert). The
  // numeric ones are inline: readers call them once per value.
  void AppendNull();
  void AppendInt64(int64_t v) {  // kInt64, kTimestamp or kDate
    assert(type_ == DataType::kInt64 || IsTemporal(type_));
    ints_.push_back(v);
    valid_.push_back(1);
  }
  void AppendFloat32(float v) {
    assert(type_ == DataType::kFloat32);
    floats_.push_back(v);
    valid_.push_back(1);
  }
  void AppendFloat64(double v) {
    assert(type_ == DataType::kFloat64);
    doubles_.push_back(v);
    valid_.push_back(1);
  }
  void AppendBool(bool v);
  void AppendString(std::string_view v);

  // Appends n values at once, as n of the calls above would (same type rule):
  // value i is values[i], valid when bit first_bit + i of `validity` is set
  // (bit b is bit b % 64 of validity[b / 64], DuckDB's and Arrow's layout), and
  // always when `validity` is null. A null keeps a zero slot whatever values[i]
  // holds. `values` must not point into this column.
  void AppendInt64s(const int64_t* values, size_t n, const uint64_t* validity = nullptr, size_t first_bit = 0);
  void AppendFloat32s(const float* values, size_t n, const uint64_t* validity = nullptr, size_t first_bit = 0);
  void AppendFloat64s(const double* values, size_t n, const uint64_t* validity = nullptr, size_t first_bit = 0);
  void AppendBools(const bool* values, size_t n, const uint64_t* validity = nullptr, size_t first_bit = 0);

  std::span<const int64_t> int64s() const { return ints_; }
  std::span<const float> float32s() const { return floats_; }
  std::span<const double> float64s() const { return doubles_; }
  std::span<const uint8_t> bools() const { return bools_; }
  std::span<const uint8_t> validity() const { return valid_; }
  std::string_view StringAt(size_t i) const {
    return std::string_view(chars_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
  }

  // Mutable access for writers that fill values in place (e.g. model outputs);
  // call Resize first. Resize(n) makes n valid zero values.
  void Resize(size_t n);
  std::span<int64_t> mutable_int64s() { return ints_; }
  std::span<float> mutable_float32s() { return floats_; }
  std::span<double> mutable_float64s() { return doubles_; }
  std::span<uint8_t> mutable_validity() { return valid_; }

  // Value i as float64 (int64, float32, float64, bool, timestamp, date). Precondition: numeric.
  double NumericAt(size_t i) const;

  // Appends value i of `other` (same type).
  void AppendFrom(const Column& other, size_t i);

  // Empties the column, keeping its capacity for reuse.
  void Clear();
  void Reserve(size_t n);
  // Bytes held (capacity), for memory accounting.
  size_t ByteSize() const;

 private:
  DataType type_;
  std::vector<int64_t> ints_;
  std::vector<float> floats_;
  std::vector<double> doubles_;
  std::vector<uint8_t> bools_;
  std::string chars_;
  std::vector<uint64_t> offsets_{0};
  std::vector<uint8_t> valid_;
};

// Rows of several columns with a schema. Every column has num_rows() values.
struct Batch {
  Schema schema;
  std::vector<Column> columns;
  // Where the rows came from: the unit and the ordinal of the first row in it.
  std::string unit_id;
  uint64_t first_row = 0;
  // Source location of each row (1-based line for CSV/JSONL, row number for
  // others), for rejects. Same length as the columns, or empty if unknown.
  std::vector<int64_t> row_lines;

  size_t num_rows() const { return columns.empty() ? row_lines.size() : columns[0].size(); }
  // Resets to an empty batch of `schema`, reusing column capacity when types match.
  void Reset(const Schema& schema);
  const Column* ColumnByName(std::string_view name) const;
  size_t ByteSize() const;
};

}  // namespace sluice
