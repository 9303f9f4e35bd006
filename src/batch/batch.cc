#include "sluice/batch.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <vector>

namespace sluice {

size_t Column::null_count() const {
  return static_cast<size_t>(std::count(valid_.begin(), valid_.end(), uint8_t{0}));
}

void Column::AppendNull() {
  switch (type_) {
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: ints_.push_back(0); break;
    case DataType::kFloat32: floats_.push_back(0); break;
    case DataType::kFloat64: doubles_.push_back(0); break;
    case DataType::kBool: bools_.push_back(0); break;
    case DataType::kString: offsets_.push_back(chars_.size()); break;
  }
  valid_.push_back(0);
}

void Column::AppendBool(bool v) {
  assert(type_ == DataType::kBool);
  bools_.push_back(v ? 1 : 0);
  valid_.push_back(1);
}

namespace {

// Appends values[0, n) to *data and their validity flags to *valid (see Column::AppendInt64s).
template <typename T, typename In>
void AppendValues(std::vector<T>* data, std::vector<uint8_t>* valid, const In* values, size_t n,
                  const uint64_t* validity, size_t first_bit) {
  const size_t base = data->size();
  data->insert(data->end(), values, values + n);
  if (validity == nullptr) {
    valid->resize(base + n, 1);
    return;
  }
  valid->resize(base + n);
  for (size_t i = 0; i < n; ++i) {
    const size_t bit = first_bit + i;
    const uint8_t ok = static_cast<uint8_t>((validity[bit >> 6] >> (bit & 63)) & 1);
    (*valid)[base + i] = ok;
    if (ok == 0) (*data)[base + i] = T{};
  }
}

}  // namespace

void Column::AppendInt64s(const int64_t* values, size_t n, const uint64_t* validity, size_t first_bit) {
  assert(type_ == DataType::kInt64 || IsTemporal(type_));
  AppendValues(&ints_, &valid_, values, n, validity, first_bit);
}

void Column::AppendFloat32s(const float* values, size_t n, const uint64_t* validity, size_t first_bit) {
  assert(type_ == DataType::kFloat32);
  AppendValues(&floats_, &valid_, values, n, validity, first_bit);
}

void Column::AppendFloat64s(const double* values, size_t n, const uint64_t* validity, size_t first_bit) {
  assert(type_ == DataType::kFloat64);
  AppendValues(&doubles_, &valid_, values, n, validity, first_bit);
}

void Column::AppendBools(const bool* values, size_t n, const uint64_t* validity, size_t first_bit) {
  assert(type_ == DataType::kBool);
  AppendValues(&bools_, &valid_, values, n, validity, first_bit);
}

void Column::AppendString(std::string_view v) {
  assert(type_ == DataType::kString);
  chars_.append(v);
  offsets_.push_back(chars_.size());
  valid_.push_back(1);
}

void Column::Resize(size_t n) {
  switch (type_) {
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: ints_.assign(n, 0); break;
    case DataType::kFloat32: floats_.assign(n, 0); break;
    case DataType::kFloat64: doubles_.assign(n, 0); break;
    case DataType::kBool: bools_.assign(n, 0); break;
    case DataType::kString:
      chars_.clear();
      offsets_.assign(n + 1, 0);
      break;
  }
  valid_.assign(n, 1);
}

double Column::NumericAt(size_t i) const {
  switch (type_) {
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: return static_cast<double>(ints_[i]);
    case DataType::kFloat32: return floats_[i];
    case DataType::kFloat64: return doubles_[i];
    case DataType::kBool: return bools_[i];
    case DataType::kString: break;
  }
  assert(false && "NumericAt on a string column");
  return 0;
}

void Column::AppendFrom(const Column& other, size_t i) {
  assert(other.type_ == type_);
  if (other.IsNull(i)) {
    AppendNull();
    return;
  }
  switch (type_) {
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: AppendInt64(other.ints_[i]); break;
    case DataType::kFloat32: AppendFloat32(other.floats_[i]); break;
    case DataType::kFloat64: AppendFloat64(other.doubles_[i]); break;
    case DataType::kBool: AppendBool(other.bools_[i] != 0); break;
    case DataType::kString: AppendString(other.StringAt(i)); break;
  }
}

void Column::Clear() {
  ints_.clear();
  floats_.clear();
  doubles_.clear();
  bools_.clear();
  chars_.clear();
  offsets_.assign(1, 0);
  valid_.clear();
}

void Column::Reserve(size_t n) {
  switch (type_) {
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: ints_.reserve(n); break;
    case DataType::kFloat32: floats_.reserve(n); break;
    case DataType::kFloat64: doubles_.reserve(n); break;
    case DataType::kBool: bools_.reserve(n); break;
    case DataType::kString: offsets_.reserve(n + 1); break;
  }
  valid_.reserve(n);
}

size_t Column::ByteSize() const {
  return ints_.capacity() * sizeof(int64_t) + floats_.capacity() * sizeof(float) +
         doubles_.capacity() * sizeof(double) + bools_.capacity() + chars_.capacity() +
         offsets_.capacity() * sizeof(uint64_t) + valid_.capacity();
}

void Batch::Reset(const Schema& new_schema) {
  const bool same_types = schema.num_fields() == new_schema.num_fields() &&
                          columns.size() == new_schema.num_fields() &&
                          std::equal(schema.fields().begin(), schema.fields().end(),
                                     new_schema.fields().begin(),
                                     [](const Field& a, const Field& b) { return a.type == b.type; });
  schema = new_schema;
  if (same_types) {
    for (Column& c : columns) c.Clear();
  } else {
    columns.clear();
    for (const Field& f : schema.fields()) columns.emplace_back(f.type);
  }
  unit_id.clear();
  first_row = 0;
  row_lines.clear();
}

const Column* Batch::ColumnByName(std::string_view name) const {
  auto idx = schema.FieldIndex(name);
  return idx ? &columns[*idx] : nullptr;
}

size_t Batch::ByteSize() const {
  size_t total = row_lines.capacity() * sizeof(int64_t);
  for (const Column& c : columns) total += c.ByteSize();
  return total;
}

}  // namespace sluice
