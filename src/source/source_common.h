// Pieces shared by the text readers (CSV, JSON Lines): staging one row's values
// before they are appended (so a rejected row leaves no partial values), text ->
// value conversion per column type, type inference, schema projection,
// helpers for one-line reject messages, batch limits and row sampling.
//
// Thread-safety: free functions are pure; TypeGuess, BatchLimits and RowSampler
// are values owned by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/hash.h"
#include "sluice/batch.h"
#include "sluice/reject.h"
#include "sluice/schema.h"
#include "sluice/source.h"
#include "sluice/status.h"

namespace sluice {

// One value of a row, converted but not yet appended. `text` borrows from the
// read buffer or a reusable scratch string and is valid until the row is done.
struct Cell {
  bool is_null = true;
  int64_t int_value = 0;  // kInt64, kTimestamp
  double float_value = 0;  // kFloat32, kFloat64
  bool bool_value = false;
  std::string_view text;  // kString
};

// Appends `cell` to `column` (null, or the slot of the column's type). Inline:
// readers call it once per value.
inline void AppendCell(const Cell& cell, Column* column) {
  if (cell.is_null) {
    column->AppendNull();
    return;
  }
  switch (column->type()) {
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: column->AppendInt64(cell.int_value); break;
    case DataType::kFloat32: column->AppendFloat32(static_cast<float>(cell.float_value)); break;
    case DataType::kFloat64: column->AppendFloat64(cell.float_value); break;
    case DataType::kBool: column->AppendBool(cell.bool_value); break;
    case DataType::kString: column->AppendString(cell.text); break;
  }
}

// Converts text to a value of `type` into *cell. Empty text is null for every
// type but kString (where it is the empty string). Returns false if the text is
// not a value of the type. kString borrows `text`.
bool ParseTextCell(std::string_view text, DataType type, Cell* cell);

// Accumulates sample values of one column and picks its type: int64 if every
// sample is an integer, else float64 if every one is a number, else bool if every
// one is true/false (not 0/1), else timestamp if every one is a timestamp, else
// string; a column without samples (only nulls) is float64.
class TypeGuess {
 public:
  // A non-null text sample (CSV field, JSON string; `json_string` limits a JSON
  // string to timestamp or string: numbers and booleans written as JSON strings
  // stay strings).
  void AddText(std::string_view text, bool json_string = false);
  // Typed JSON samples.
  void AddJsonInteger() { Add(kInt | kFloat | kString); }
  void AddJsonFloat() { Add(kFloat | kString); }
  void AddJsonBool() { Add(kBool | kString); }
  void AddJsonNested() { Add(kString); }

  DataType Type() const;

 private:
  static constexpr uint8_t kInt = 1, kFloat = 2, kBool = 4, kTimestamp = 8, kString = 16;
  void Add(uint8_t candidates) {
    candidates_ &= candidates;
    has_sample_ = true;
  }
  uint8_t candidates_ = kInt | kFloat | kBool | kTimestamp | kString;
  bool has_sample_ = false;
};

// The batches' schema: options.columns (or every column of `file_schema`) in
// order, typed by options.declared_types, else by `file_schema`. A column in
// neither is an error "input '<path>': no column 'x' (columns: a, b, c)" unless
// `allow_declared_only` and it is declared (JSON Lines keys may first appear
// after the inference sample). A column listed twice is an error.
Result<Schema> SelectColumns(const std::string& path, const Schema& file_schema,
                             const SourceOptions& options, bool allow_declared_only);

// "input 'x.csv' line 7": how messages about a row start.
std::string InputLine(const std::string& path, int64_t line);

// A reject of the row at `line` / byte `offset` of `path`, with the message
// "input '<path>' line N[, column 'c']: <what>" and `value` cut by RejectValue.
Reject MakeReject(const std::string& path, int64_t line, uint64_t offset, std::string_view reason,
                  const std::string& column, std::string_view value, const std::string& what);

// `value` for a one-line message: at most 64 bytes (then "..."), control
// characters escaped (\n, \r, \t, \xNN), bytes that are not UTF-8 as \xNN.
std::string MessageValue(std::string_view value);

// `value` for Reject::value: at most 256 bytes, cut at a character boundary;
// bytes that are not UTF-8 as \xNN.
std::string RejectValue(std::string_view value);

// Offset of the first byte that is not part of valid UTF-8, or npos if valid.
size_t FindInvalidUtf8(std::string_view text);

// True if `text` is valid UTF-8 (fast path for ASCII).
bool IsValidUtf8(std::string_view text);

// "cannot parse 'abc' as float64", plus, for a column whose type was inferred,
// a hint to declare it under input.schema.
std::string BadValueMessage(std::string_view text, const Field& field, const SourceOptions& options);

// SourceOptions::batch_rows and max_batch_bytes, as the readers apply them.
class BatchLimits {
 public:
  void Set(size_t batch_rows, size_t max_batch_bytes) {
    rows_ = batch_rows > 0 ? batch_rows : 1;
    bytes_ = max_batch_bytes;
  }
  // True once a batch holding `rows` rows, read from records that span
  // `bytes_spanned` input bytes, is complete.
  bool Full(size_t rows, uint64_t bytes_spanned) const {
    return rows >= rows_ || (rows > 0 && bytes_ > 0 && bytes_spanned >= bytes_);
  }
  size_t rows() const { return rows_; }
  size_t bytes() const { return bytes_; }  // 0 = no byte limit

 private:
  size_t rows_ = 1;
  size_t bytes_ = 0;
};

// The stable hash of one staged value of a column of `type`, folded into `h`
// (HashKey* of core/hash.h; float32 as the stored float), so a value hashes
// the same whichever reader staged it.
uint64_t HashCell(const Cell& cell, DataType type, uint64_t h);

// partition.sample for the readers: decides, from a row's staged cells, whether
// the row is kept, and counts the rows left out.
class RowSampler {
 public:
  // Takes options.sample and sample_keys; each key must be a column of `schema`
  // (the selected columns), else InvalidArgument naming it.
  Status Init(const std::string& path, const Schema& schema, const SourceOptions& options);
  // `cells` are the row's values in `schema` order; `line` its first line.
  bool Keep(const std::vector<Cell>& cells, int64_t line) {
    if (fraction_ >= 1.0) return true;
    if (SampleKeep(RowHash(cells, line), fraction_)) return true;
    ++sampled_out_;
    return false;
  }
  int64_t sampled_out() const { return sampled_out_; }
  // False when every row is kept (partition.sample is 1): Keep need not be called.
  bool active() const { return fraction_ < 1.0; }

 private:
  uint64_t RowHash(const std::vector<Cell>& cells, int64_t line) const;

  std::string path_;
  double fraction_ = 1.0;
  std::vector<size_t> key_columns_;
  std::vector<DataType> key_types_;
  int64_t sampled_out_ = 0;
};

// The part of the Source interface every reader implements alike: the batches'
// schema, partition.sample and the batch limits. Readers derive from it and set
// schema_, sampler_ (Init) and limits_ when they open.
class ReaderBase : public Source {
 public:
  const Schema& schema() const override { return schema_; }
  int64_t rows_sampled_out() const override { return sampler_.sampled_out(); }
  void SetBatchLimits(size_t batch_rows, size_t max_batch_bytes) override { limits_.Set(batch_rows, max_batch_bytes); }

 protected:
  Schema schema_;
  RowSampler sampler_;
  BatchLimits limits_;
};

}  // namespace sluice
