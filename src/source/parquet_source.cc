#include "source/parquet_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "core/strings.h"

namespace sluice {
namespace {

// The Sluice type of a DuckDB type, and its name for messages.
struct DuckTypeInfo {
  std::optional<DataType> type;
  const char* name = "";
  bool wide_int = false;
};

DuckTypeInfo DescribeDuckType(duckdb_type id) {
  switch (id) {
    case DUCKDB_TYPE_TINYINT: return {DataType::kInt64, "TINYINT"};
    case DUCKDB_TYPE_SMALLINT: return {DataType::kInt64, "SMALLINT"};
    case DUCKDB_TYPE_INTEGER: return {DataType::kInt64, "INTEGER"};
    case DUCKDB_TYPE_BIGINT: return {DataType::kInt64, "BIGINT"};
    case DUCKDB_TYPE_UTINYINT: return {DataType::kInt64, "UTINYINT"};
    case DUCKDB_TYPE_USMALLINT: return {DataType::kInt64, "USMALLINT"};
    case DUCKDB_TYPE_UINTEGER: return {DataType::kInt64, "UINTEGER"};
    case DUCKDB_TYPE_UBIGINT: return {DataType::kInt64, "UBIGINT", true};
    case DUCKDB_TYPE_HUGEINT: return {DataType::kInt64, "HUGEINT", true};
    case DUCKDB_TYPE_UHUGEINT: return {DataType::kInt64, "UHUGEINT", true};
    case DUCKDB_TYPE_FLOAT: return {DataType::kFloat32, "FLOAT"};
    case DUCKDB_TYPE_DOUBLE: return {DataType::kFloat64, "DOUBLE"};
    case DUCKDB_TYPE_DECIMAL: return {DataType::kFloat64, "DECIMAL"};
    case DUCKDB_TYPE_BOOLEAN: return {DataType::kBool, "BOOLEAN"};
    case DUCKDB_TYPE_VARCHAR: return {DataType::kString, "VARCHAR"};
    case DUCKDB_TYPE_ENUM: return {DataType::kString, "ENUM"};
    case DUCKDB_TYPE_UUID: return {DataType::kString, "UUID"};
    case DUCKDB_TYPE_TIMESTAMP: return {DataType::kTimestamp, "TIMESTAMP"};
    case DUCKDB_TYPE_TIMESTAMP_S: return {DataType::kTimestamp, "TIMESTAMP_S"};
    case DUCKDB_TYPE_TIMESTAMP_MS: return {DataType::kTimestamp, "TIMESTAMP_MS"};
    case DUCKDB_TYPE_TIMESTAMP_NS: return {DataType::kTimestamp, "TIMESTAMP_NS"};
    case DUCKDB_TYPE_TIMESTAMP_TZ: return {DataType::kTimestamp, "TIMESTAMP WITH TIME ZONE"};
    case DUCKDB_TYPE_DATE: return {DataType::kDate, "DATE"};
    case DUCKDB_TYPE_BLOB: return {std::nullopt, "BLOB"};
    case DUCKDB_TYPE_LIST: return {std::nullopt, "LIST"};
    case DUCKDB_TYPE_ARRAY: return {std::nullopt, "ARRAY"};
    case DUCKDB_TYPE_STRUCT: return {std::nullopt, "STRUCT"};
    case DUCKDB_TYPE_MAP: return {std::nullopt, "MAP"};
    case DUCKDB_TYPE_UNION: return {std::nullopt, "UNION"};
    case DUCKDB_TYPE_INTERVAL: return {std::nullopt, "INTERVAL"};
    case DUCKDB_TYPE_TIME: return {std::nullopt, "TIME"};
    case DUCKDB_TYPE_TIME_TZ: return {std::nullopt, "TIME WITH TIME ZONE"};
    case DUCKDB_TYPE_BIT: return {std::nullopt, "BIT"};
    default: return {std::nullopt, "a type Sluice does not know"};
  }
}

bool IsNumeric(DataType type) {
  return type == DataType::kInt64 || type == DataType::kFloat32 || type == DataType::kFloat64;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "%2F" -> "/"; a '%' not followed by two hex digits stays.
std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = HexDigit(text[i + 1]);
      const int low = HexDigit(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

inline bool IsValid(const uint64_t* validity, size_t row) {
  return validity == nullptr || ((validity[row >> 6] >> (row & 63)) & 1) != 0;
}

class ParquetSource final : public ReaderBase {
 public:
  ParquetSource(const InputRange& range, const SourceOptions& options, RejectSink* rejects)
      : range_(range), path_(range.path), options_(options), rejects_(rejects) {}

  Status Open(const Schema& file_schema) {
    ASSIGN_OR_RETURN(schema_, SelectColumns(path_, file_schema, options_, /*allow_declared_only=*/false));
    RETURN_IF_ERROR(sampler_.Init(path_, schema_, options_));
    sampling_ = options_.sample < 1.0;
    limits_.Set(options_.batch_rows, options_.max_batch_bytes);
    ASSIGN_OR_RETURN(db_, TakeParquetSourceDb(options_.duckdb_pool.get()));
    ASSIGN_OR_RETURN(const std::vector<ParquetColumn> file_columns, ReadParquetColumns(db_.get(), path_));
    std::vector<std::pair<std::string, std::string>> hive = range_.hive;
    if (hive.empty()) {
      ASSIGN_OR_RETURN(hive, HivePartitions(path_));
    }

    // The columns of the query: each selected file column, then range checks,
    // then the row number. Hive columns are constants filled in here.
    columns_.resize(schema_.num_fields());
    cells_.resize(schema_.num_fields());
    std::string select;
    std::vector<std::pair<size_t, std::string>> checks;
    int next_column = 0;
    for (size_t col_idx = 0; col_idx < schema_.num_fields(); ++col_idx) {
      const Field& field = schema_.field(col_idx);
      ReadColumn& col = columns_[col_idx];
      col.type = field.type;
      const auto in_hive = std::find_if(hive.begin(), hive.end(), [&](const auto& kv) { return kv.first == field.name; });
      if (in_hive != hive.end()) {
        RETURN_IF_ERROR(ParseHiveCell(path_, field.name, in_hive->second, field.type, &col.hive_text, &col.hive));
        continue;
      }
      const auto in_file = std::find_if(file_columns.begin(), file_columns.end(),
                                        [&](const ParquetColumn& c) { return c.name == field.name; });
      if (in_file == file_columns.end()) {
        return Status::InvalidArgument("input '" + path_ + "': no column '" + field.name +
                                       "' (the files' schemas differ)");
      }
      ASSIGN_OR_RETURN(const ParquetRead read, ParquetReadExpression(path_, *in_file, field.type));
      if (!select.empty()) select += ", ";
      select += read.expr;
      col.chunk_col = next_column++;
      if (!read.check.empty()) checks.emplace_back(col_idx, read.check);
      if (field.type == DataType::kString) {
        string_columns_.push_back(col_idx);
      } else {
        fixed_bytes_ += 8;
      }
    }
    for (const auto& [col_idx, check] : checks) {
      select += ", " + check;
      columns_[col_idx].check_col = next_column++;
    }
    has_checks_ = !checks.empty();
    row_number_col_ = next_column;
    if (!select.empty()) select += ", ";
    select += "file_row_number";
    std::string sql = "SELECT " + select +
                      " FROM read_parquet(?, file_row_number = true, hive_partitioning = false)"
                      " WHERE file_row_number >= ? AND file_row_number < ?";
    if (!range_.filter.empty()) sql += " AND (" + range_.filter + ")";
    constexpr uint64_t kMaxRow = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    Result<DuckStatement> stmt = db_->Prepare(sql);
    if (!stmt.ok()) return stmt.status().WithContext("input '" + path_ + "'");
    stmt_ = std::make_unique<DuckStatement>(std::move(*stmt));
    RETURN_IF_ERROR(stmt_->Bind(0, path_));
    RETURN_IF_ERROR(stmt_->Bind(1, static_cast<int64_t>(std::min(range_.begin, kMaxRow))));
    RETURN_IF_ERROR(stmt_->Bind(2, static_cast<int64_t>(std::min(range_.end, kMaxRow))));
    RETURN_IF_ERROR(stmt_->BindAll(range_.params, 3));
    Result<DuckResult> result = stmt_->Stream();
    if (!result.ok()) return result.status().WithContext("input '" + path_ + "'");
    result_ = std::move(*result);
    return Status::OK();
  }

  uint64_t bytes_read() const override { return bytes_read_; }

  Result<bool> Next(Batch* batch) override {
    if (!status_.ok()) return status_;
    batch->Reset(schema_);
    batch->first_row = rows_emitted_;
    size_t rows = 0;
    uint64_t bytes = 0;
    while (!done_ && !limits_.Full(rows, bytes)) {
      if (!chunk_ || offset_ >= chunk_.size()) {
        Result<DuckChunk> next = result_.Next();
        if (!next.ok()) {
          status_ = next.status().WithContext("input '" + path_ + "'");
          return status_;
        }
        chunk_ = std::move(*next);
        offset_ = 0;
        if (!chunk_) {
          done_ = true;
          break;
        }
        BindChunk();
        continue;
      }
      rows += TakeRows(rows, &bytes, batch);
    }
    rows_emitted_ += rows;
    return rows > 0;
  }

 private:
  struct ReadColumn {
    DataType type = DataType::kString;
    int chunk_col = -1;  // column of the query; -1: a hive column
    int check_col = -1;  // column of the range check, or -1
    Cell hive;           // hive columns: the value (a string borrows hive_text)
    std::string hive_text;
    // The current chunk's vectors.
    const void* data = nullptr;
    const uint64_t* valid = nullptr;
    const duckdb_string_t* check = nullptr;
    const uint64_t* check_valid = nullptr;
  };

  void BindChunk() {
    for (ReadColumn& col : columns_) {
      if (col.chunk_col >= 0) {
        duckdb_vector v = chunk_.vector(col.chunk_col);
        col.data = duckdb_vector_get_data(v);
        col.valid = duckdb_vector_get_validity(v);
      }
      if (col.check_col >= 0) {
        duckdb_vector v = chunk_.vector(col.check_col);
        col.check = static_cast<const duckdb_string_t*>(duckdb_vector_get_data(v));
        col.check_valid = duckdb_vector_get_validity(v);
      }
    }
    row_numbers_ = static_cast<const int64_t*>(duckdb_vector_get_data(chunk_.vector(row_number_col_)));
  }

  // Decoded bytes of row `row` of the chunk (BatchLimits, bytes_read).
  uint64_t RowBytes(size_t row) const {
    uint64_t bytes = fixed_bytes_;
    for (const size_t col_idx : string_columns_) {
      const ReadColumn& col = columns_[col_idx];
      if (col.chunk_col >= 0 && IsValid(col.valid, row)) {
        bytes += static_cast<const duckdb_string_t*>(col.data)[row].value.inlined.length;
      }
    }
    return bytes;
  }

  // Picks the rows of the chunk from offset_ on that go into the batch (until
  // it is full), rejecting and sampling out rows on the way; appends them.
  size_t TakeRows(size_t rows_before, uint64_t* bytes, Batch* batch) {
    const size_t chunk_rows = chunk_.size();
    const size_t first = offset_;
    selected_.clear();
    size_t row = offset_;
    for (; row < chunk_rows && !limits_.Full(rows_before + selected_.size(), *bytes); ++row) {
      const uint64_t row_bytes = RowBytes(row);
      *bytes += row_bytes;
      bytes_read_ += row_bytes;
      const int64_t line = row_numbers_[row] + 1;
      if (has_checks_ && RejectIfOutOfRange(row, line)) continue;
      if (sampling_) {
        FillCells(row);
        if (!sampler_.Keep(cells_, line)) continue;
      }
      selected_.push_back(row);
    }
    offset_ = row;
    for (size_t col_idx = 0; col_idx < columns_.size(); ++col_idx) {
      AppendSelected(columns_[col_idx], first, &batch->columns[col_idx]);
    }
    for (const size_t r : selected_) batch->row_lines.push_back(row_numbers_[r] + 1);
    return selected_.size();
  }

  // Appends the selected rows of the chunk; `first` is the first row TakeRows looked at.
  void AppendSelected(const ReadColumn& col, size_t first, Column* out) const {
    if (col.chunk_col < 0) {
      for (size_t i = 0; i < selected_.size(); ++i) AppendCell(col.hive, out);
      return;
    }
    switch (col.type) {
      case DataType::kInt64:
      case DataType::kTimestamp:
      case DataType::kDate: AppendValues<int64_t>(col, first, &Column::AppendInt64, &Column::AppendInt64s, out); return;
      case DataType::kFloat32: AppendValues<float>(col, first, &Column::AppendFloat32, &Column::AppendFloat32s, out); return;
      case DataType::kFloat64: AppendValues<double>(col, first, &Column::AppendFloat64, &Column::AppendFloat64s, out); return;
      case DataType::kBool: AppendValues<bool>(col, first, &Column::AppendBool, &Column::AppendBools, out); return;
      case DataType::kString: {
        const auto* values = static_cast<const duckdb_string_t*>(col.data);
        for (const size_t r : selected_) {
          if (IsValid(col.valid, r)) {
            out->AppendString(DuckString(const_cast<duckdb_string_t*>(values + r)));
          } else {
            out->AppendNull();
          }
        }
        return;
      }
    }
  }

  // Fixed-width values: when the selected rows are every row from `first` on
  // (nothing rejected or sampled out among them), one bulk append of the
  // vector's run with its validity mask; else value by value.
  template <typename T>
  void AppendValues(const ReadColumn& col, size_t first, void (Column::*append)(T),
                    void (Column::*append_run)(const T*, size_t, const uint64_t*, size_t), Column* out) const {
    const auto* values = static_cast<const T*>(col.data);
    const size_t n = selected_.size();
    if (n > 0 && selected_.back() - first == n - 1) {
      (out->*append_run)(values + first, n, col.valid, first);
      return;
    }
    for (const size_t r : selected_) {
      if (IsValid(col.valid, r)) {
        (out->*append)(values[r]);
      } else {
        out->AppendNull();
      }
    }
  }

  // The row's values as cells, for the sampler.
  void FillCells(size_t row) {
    for (size_t col_idx = 0; col_idx < columns_.size(); ++col_idx) {
      const ReadColumn& col = columns_[col_idx];
      Cell& cell = cells_[col_idx];
      if (col.chunk_col < 0) {
        cell = col.hive;
        continue;
      }
      cell.is_null = !IsValid(col.valid, row);
      if (cell.is_null) continue;
      switch (col.type) {
        case DataType::kInt64:
        case DataType::kTimestamp:
        case DataType::kDate: cell.int_value = static_cast<const int64_t*>(col.data)[row]; break;
        case DataType::kFloat32: cell.float_value = static_cast<const float*>(col.data)[row]; break;
        case DataType::kFloat64: cell.float_value = static_cast<const double*>(col.data)[row]; break;
        case DataType::kBool: cell.bool_value = static_cast<const bool*>(col.data)[row]; break;
        case DataType::kString:
          cell.text = DuckString(const_cast<duckdb_string_t*>(static_cast<const duckdb_string_t*>(col.data) + row));
          break;
      }
    }
  }

  // Rejects the row when a wide integer of it does not fit int64.
  bool RejectIfOutOfRange(size_t row, int64_t line) {
    for (size_t col_idx = 0; col_idx < columns_.size(); ++col_idx) {
      const ReadColumn& col = columns_[col_idx];
      if (col.check_col < 0 || !IsValid(col.check_valid, row)) continue;
      const std::string_view text = DuckString(const_cast<duckdb_string_t*>(col.check + row));
      Reject r;
      r.file = path_;
      r.line = line;
      r.column = schema_.field(col_idx).name;
      r.value = RejectValue(text);
      r.reason = std::string(reject_reason::kBadValue);
      r.message = "input '" + path_ + "' row " + std::to_string(line) + ", column '" + r.column + "': " +
                  MessageValue(text) + " does not fit int64";
      rejects_->Add(std::move(r));
      return true;
    }
    return false;
  }

  const InputRange range_;
  const std::string path_;
  const SourceOptions options_;
  RejectSink* const rejects_;
  bool sampling_ = false;

  // Declared in this order so that chunks and results go before their database,
  // and the database goes back to options_.duckdb_pool before options_ goes.
  PooledDuckDb db_;
  std::unique_ptr<DuckStatement> stmt_;
  DuckResult result_;
  DuckChunk chunk_;

  std::vector<ReadColumn> columns_;       // one per field of schema_
  std::vector<size_t> string_columns_;    // fields read from the file as strings
  uint64_t fixed_bytes_ = 8;              // per row: the row number and fixed-width values
  bool has_checks_ = false;
  int row_number_col_ = 0;
  const int64_t* row_numbers_ = nullptr;  // file_row_number of the current chunk
  size_t offset_ = 0;                     // next row of the current chunk
  std::vector<size_t> selected_;          // rows of the chunk going into the batch
  std::vector<Cell> cells_;               // sampling: the row's values

  Status status_;
  bool done_ = false;
  int64_t rows_emitted_ = 0;
  uint64_t bytes_read_ = 0;
};

}  // namespace

Result<PooledDuckDb> TakeParquetSourceDb(DuckDbPool* pool) { return DuckDbPool::Take(pool, ParquetReadDbOptions()); }

Result<std::vector<ParquetColumn>> ReadParquetColumns(DuckDb* db, const std::string& path) {
  ASSIGN_OR_RETURN(DuckStatement stmt, db->Prepare("SELECT * FROM read_parquet(?, hive_partitioning = false) LIMIT 0"));
  RETURN_IF_ERROR(stmt.Bind(0, path));
  Result<DuckResult> result = stmt.Query();
  if (!result.ok()) {
    const Status& st = result.status();
    if (st.code() == StatusCode::kIOError && st.message().find("No files found") != std::string::npos) {
      return Status::NotFound("input '" + path + "': no such file");
    }
    // What is not I/O is the file's fault (DuckDB reports some footer damage
    // as plain exceptions).
    const Status bad = st.code() == StatusCode::kInvalidArgument ? Status::Corruption(st.message()) : st;
    return bad.WithContext("input '" + path + "': cannot read the Parquet footer");
  }
  std::vector<ParquetColumn> columns;
  const size_t count = result->column_count();
  for (size_t col = 0; col < count; ++col) {
    duckdb_logical_type type = result->column_logical_type(col);
    const DuckTypeInfo info = DescribeDuckType(duckdb_get_type_id(type));
    duckdb_destroy_logical_type(&type);
    columns.push_back(ParquetColumn{result->column_name(col), info.name, info.type, info.wide_int});
  }
  return columns;
}

Result<ParquetRead> ParquetReadExpression(const std::string& path, const ParquetColumn& column, DataType type) {
  const std::string q = QuoteIdentifier(column.name);
  if (!column.type) {
    return Status::InvalidArgument("input '" + path + "': column '" + column.name + "' is " + column.duck_type +
                                   ", which Sluice cannot read");
  }
  const DataType natural = *column.type;
  ParquetRead read;
  if (type == DataType::kString) {
    read.expr = "CAST(" + q + " AS VARCHAR)";
  } else if (type == DataType::kFloat32 && IsNumeric(natural)) {
    read.expr = "CAST(" + q + " AS FLOAT)";
  } else if (type == DataType::kFloat64 && IsNumeric(natural)) {
    read.expr = "CAST(" + q + " AS DOUBLE)";
  } else if (IsTemporal(type) && (natural == type || natural == DataType::kDate)) {
    read.expr = "epoch_us(" + q + ")";
  } else if (type == natural && type == DataType::kInt64) {
    if (column.wide_int) {
      read.expr = "TRY_CAST(" + q + " AS BIGINT)";
      read.check = "CASE WHEN " + q + " IS NOT NULL AND TRY_CAST(" + q + " AS BIGINT) IS NULL THEN CAST(" + q +
                   " AS VARCHAR) END";
    } else {
      read.expr = "CAST(" + q + " AS BIGINT)";
    }
  } else if (type == natural) {
    read.expr = q;  // bool
  } else {
    std::string as = std::string(DataTypeName(natural));
    if (IsNumeric(natural)) as += ", float32, float64";
    if (natural == DataType::kDate) as += ", timestamp";
    if (natural != DataType::kString) as += " or string";
    return Status::InvalidArgument("input.schema." + column.name + ": column '" + column.name + "' of '" + path +
                                   "' is " + column.duck_type + "; it reads as " + as + ", not " +
                                   std::string(DataTypeName(type)));
  }
  return read;
}

Result<std::vector<std::pair<std::string, std::string>>> HivePartitions(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> hive;
  size_t start = 0;
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', start)) {
    const std::string_view dir = std::string_view(path).substr(start, slash - start);
    start = slash + 1;
    const size_t eq = dir.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key = PercentDecode(dir.substr(0, eq));
    if (key.empty()) return Status::InvalidArgument("input '" + path + "': directory '" + std::string(dir) + "' has no partition key");
    for (const auto& [k, v] : hive) {
      if (k == key) return Status::InvalidArgument("input '" + path + "': partition key '" + key + "' appears twice");
    }
    hive.emplace_back(std::move(key), std::string(dir.substr(eq + 1)));
  }
  return hive;
}

std::optional<std::string> HiveValue(std::string_view raw) {
  if (raw == "__HIVE_DEFAULT_PARTITION__" || raw == "__null__") return std::nullopt;
  if (raw == "__empty__") return std::string();
  return PercentDecode(raw);
}

Status ParseHiveCell(const std::string& path, const std::string& key, std::string_view raw, DataType type,
                     std::string* text, Cell* cell) {
  std::optional<std::string> value = HiveValue(raw);
  if (!value) {
    cell->is_null = true;
    return Status::OK();
  }
  *text = std::move(*value);
  if (!ParseTextCell(*text, type, cell)) {
    return Status::InvalidArgument("input '" + path + "': partition directory " + key + "=" + std::string(raw) +
                                   " is not a " + std::string(DataTypeName(type)) + " (input.schema." + key + ")");
  }
  return Status::OK();
}

Result<Schema> ParquetSchema(const std::string& path, const std::vector<ParquetColumn>& columns,
                             const SourceOptions& options) {
  Schema schema;
  for (const ParquetColumn& column : columns) {
    const auto declared = options.declared_types.find(column.name);
    if (!column.type && declared == options.declared_types.end()) {
      spdlog::warn("input '{}': column '{}' is {}, which Sluice cannot read; it is left out", path, column.name,
                   column.duck_type);
      continue;
    }
    const DataType type = declared != options.declared_types.end() ? declared->second : *column.type;
    RETURN_IF_ERROR(ParquetReadExpression(path, column, type).status());
    schema.AddField(Field{column.name, type});
  }
  ASSIGN_OR_RETURN(const auto hive, HivePartitions(path));
  for (const auto& [key, raw] : hive) {
    if (schema.FieldIndex(key)) {
      return Status::InvalidArgument("input '" + path + "': '" + key +
                                     "' is both a column of the file and a partition directory");
    }
    const auto declared = options.declared_types.find(key);
    const DataType type = declared != options.declared_types.end() ? declared->second : DataType::kString;
    std::string text;
    Cell cell;
    RETURN_IF_ERROR(ParseHiveCell(path, key, raw, type, &text, &cell));
    schema.AddField(Field{key, type});
  }
  return schema;
}

Result<Schema> InferParquetSchema(Env*, const std::string& path, const SourceOptions& options) {
  ASSIGN_OR_RETURN(const PooledDuckDb db, TakeParquetSourceDb(options.duckdb_pool.get()));
  ASSIGN_OR_RETURN(const std::vector<ParquetColumn> columns, ReadParquetColumns(db.get(), path));
  return ParquetSchema(path, columns, options);
}

Result<std::unique_ptr<Source>> OpenParquetSource(Env*, const InputRange& range, const Schema& file_schema,
                                                  const SourceOptions& options, RejectSink* rejects) {
  auto source = std::make_unique<ParquetSource>(range, options, rejects);
  RETURN_IF_ERROR(source->Open(file_schema));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace sluice
