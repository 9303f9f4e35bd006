// Helpers for the source tests: a collecting RejectSink, writing input files
// into an Env, and reading a Source to the end as text rows.
#pragma once

#include <gtest/gtest.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/batch.h"
#include "sluice/env.h"
#include "sluice/reject.h"
#include "sluice/source.h"

namespace sluice {

class CollectRejects : public RejectSink {
 public:
  void Add(Reject reject) override { rejects.push_back(std::move(reject)); }
  std::vector<Reject> rejects;
};

inline void WriteFile(Env* env, const std::string& path, std::string_view data) {
  auto file = env->NewWritableFile(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Append(data).ok());
  ASSERT_TRUE((*file)->Close().ok());
}

// A value as text: strings as is, null as <null>, numbers in shortest form.
inline std::string CellText(const Column& column, size_t row) {
  if (column.IsNull(row)) return "<null>";
  char buf[64];
  std::to_chars_result result{buf, std::errc()};
  switch (column.type()) {
    case DataType::kString: return std::string(column.StringAt(row));
    case DataType::kBool: return column.bools()[row] ? "true" : "false";
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: result = std::to_chars(buf, buf + sizeof(buf), column.int64s()[row]); break;
    case DataType::kFloat32: result = std::to_chars(buf, buf + sizeof(buf), column.float32s()[row]); break;
    case DataType::kFloat64: result = std::to_chars(buf, buf + sizeof(buf), column.float64s()[row]); break;
  }
  return std::string(buf, result.ptr);
}

struct ExpectedReject {
  int64_t line;
  std::string reason;
  std::string column;
};

// Checks rejects against expectations (in order), and that each message is one
// line starting with "input '<file>' line N".
inline void ExpectRejects(const std::vector<Reject>& got, const std::vector<ExpectedReject>& expected,
                          const std::string& file) {
  ASSERT_EQ(got.size(), expected.size());
  for (size_t reject_idx = 0; reject_idx < expected.size(); ++reject_idx) {
    const Reject& reject = got[reject_idx];
    EXPECT_EQ(reject.line, expected[reject_idx].line);
    EXPECT_EQ(reject.reason, expected[reject_idx].reason);
    EXPECT_EQ(reject.column, expected[reject_idx].column);
    EXPECT_EQ(reject.file, file);
    EXPECT_EQ(reject.message.find('\n'), std::string::npos) << reject.message;
    EXPECT_EQ(reject.message.rfind("input '" + file + "' line " + std::to_string(reject.line), 0), 0u)
        << reject.message;
  }
}

struct ReadOutput {
  Status status;
  Schema schema;
  std::vector<std::string> rows;  // values joined with '|'
  std::vector<int64_t> lines;
  std::vector<Reject> rejects;
  size_t batches = 0;
  uint64_t bytes_read = 0;
};

// Reads `source` to the end into *out, checking the batch invariants on the way.
inline void DrainSource(Source* source, ReadOutput* out) {
  out->schema = source->schema();
  Batch batch;
  while (true) {
    Result<bool> more = source->Next(&batch);
    if (!more.ok()) {
      out->status = more.status();
      break;
    }
    if (!*more) {
      EXPECT_EQ(batch.num_rows(), 0u);
      break;
    }
    ++out->batches;
    EXPECT_EQ(batch.schema, out->schema);
    EXPECT_EQ(batch.row_lines.size(), batch.num_rows());
    EXPECT_EQ(batch.first_row, out->rows.size());
    for (size_t row_idx = 0; row_idx < batch.num_rows(); ++row_idx) {
      std::string text;
      for (size_t col_idx = 0; col_idx < batch.columns.size(); ++col_idx) {
        if (col_idx > 0) text += '|';
        text += CellText(batch.columns[col_idx], row_idx);
      }
      out->rows.push_back(text);
      out->lines.push_back(batch.row_lines[row_idx]);
    }
  }
  out->bytes_read = source->bytes_read();
}

// Row counts of the batches `source` gives until it is exhausted. Before the
// batch at index `change_at`, calls SetBatchLimits(new_rows, new_bytes).
inline std::vector<size_t> BatchSizes(Source* source, size_t change_at = SIZE_MAX, size_t new_rows = 0,
                                      size_t new_bytes = 0) {
  std::vector<size_t> sizes;
  Batch batch;
  while (true) {
    if (sizes.size() == change_at) source->SetBatchLimits(new_rows, new_bytes);
    Result<bool> more = source->Next(&batch);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    sizes.push_back(batch.num_rows());
  }
  return sizes;
}

// Everything the source `open(RejectSink*)` opens gives: rows, lines, rejects,
// or the error of opening it.
template <typename OpenFn>
ReadOutput ReadAll(OpenFn open) {
  ReadOutput out;
  CollectRejects rejects;
  Result<std::unique_ptr<Source>> source = open(&rejects);
  if (!source.ok()) {
    out.status = source.status();
    return out;
  }
  DrainSource(source->get(), &out);
  out.rejects = std::move(rejects.rejects);
  return out;
}

// Infers the schema of range.path with `infer` and reads `range` with `open`
// (InferCsvSchema/OpenCsvSource or the JSON Lines pair, with a tuning bound in).
template <typename InferFn, typename OpenFn>
ReadOutput InferAndRead(const InputRange& range, InferFn infer, OpenFn open) {
  Result<Schema> file_schema = infer(range.path);
  if (!file_schema.ok()) {
    ReadOutput out;
    out.status = file_schema.status();
    return out;
  }
  return ReadAll([&](RejectSink* rejects) { return open(range, *file_schema, rejects); });
}

}  // namespace sluice
