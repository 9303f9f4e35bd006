#include "source/sqlite_source.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>
#include <utility>

#include "batch/value_parse.h"
#include "core/hash.h"
#include "core/strings.h"
#include "source/source_common.h"

namespace sluice {
namespace {

enum class ValueFit { kOk, kBadValue, kInvalidUtf8 };

std::string_view ValueText(sqlite3_value* value) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(value));
  if (text == nullptr) return {};
  return {text, static_cast<size_t>(sqlite3_value_bytes(value))};
}

std::string_view StorageClassName(int storage) {
  switch (storage) {
    case SQLITE_INTEGER: return "INTEGER";
    case SQLITE_FLOAT: return "REAL";
    case SQLITE_TEXT: return "TEXT";
    case SQLITE_BLOB: return "BLOB";
    default: return "NULL";
  }
}

// Reads `value` as `type` into *cell by the rules of sqlite_source.h. Text
// borrows from SQLite (valid until the statement steps again).
ValueFit ReadValue(sqlite3_value* value, DataType type, Cell* cell) {
  cell->is_null = false;
  switch (sqlite3_value_type(value)) {
    case SQLITE_NULL:
      cell->is_null = true;
      return ValueFit::kOk;
    case SQLITE_INTEGER: {
      const int64_t v = sqlite3_value_int64(value);
      switch (type) {
        case DataType::kInt64: cell->int_value = v; return ValueFit::kOk;
        case DataType::kFloat32:
        case DataType::kFloat64: cell->float_value = static_cast<double>(v); return ValueFit::kOk;
        case DataType::kBool:
          cell->bool_value = v == 1;
          return v == 0 || v == 1 ? ValueFit::kOk : ValueFit::kBadValue;
        case DataType::kString: cell->text = ValueText(value); return ValueFit::kOk;
        case DataType::kTimestamp:
        case DataType::kDate: return ValueFit::kBadValue;
      }
      return ValueFit::kBadValue;
    }
    case SQLITE_FLOAT:
      if (type == DataType::kFloat32 || type == DataType::kFloat64) {
        cell->float_value = sqlite3_value_double(value);
        return ValueFit::kOk;
      }
      if (type == DataType::kString) {
        cell->text = ValueText(value);
        return ValueFit::kOk;
      }
      return ValueFit::kBadValue;
    case SQLITE_TEXT: {
      const std::string_view text = ValueText(value);
      if (type == DataType::kString && !IsValidUtf8(text)) return ValueFit::kInvalidUtf8;
      return ParseTextCell(text, type, cell) ? ValueFit::kOk : ValueFit::kBadValue;
    }
    default: return ValueFit::kBadValue;  // BLOB
  }
}

// sluice_bucket(value, type, buckets): see sqlite_source.h.
void BucketFunction(sqlite3_context* context, int, sqlite3_value** argv) {
  const Result<DataType> type = ParseDataType(ValueText(argv[1]));
  const int64_t buckets = sqlite3_value_int64(argv[2]);
  if (!type.ok() || buckets <= 0) {
    sqlite3_result_error(context, "sluice_bucket(value, type, buckets): unknown type or buckets < 1", -1);
    return;
  }
  Cell cell;
  const uint64_t h = ReadValue(argv[0], *type, &cell) == ValueFit::kOk ? HashCell(cell, *type, kHashSeed)
                                                                        : HashKeyString(ValueText(argv[0]), kHashSeed);
  sqlite3_result_int64(context, static_cast<int64_t>(MixHash(h) % static_cast<uint64_t>(buckets)));
}

// True when `name` is a table (not a view) of the main database.
bool IsTable(SqliteDb* db, const std::string& name) {
  Result<SqliteStmt> stmt = db->Prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE");
  if (!stmt.ok() || !stmt->BindText(1, name).ok()) return false;
  const Result<bool> row = stmt->Step();
  return row.ok() && *row;
}

// The query without trailing spaces and semicolons.
std::string_view TrimQuery(std::string_view query) {
  while (!query.empty() && (query.back() == ';' || std::isspace(static_cast<unsigned char>(query.back())))) {
    query.remove_suffix(1);
  }
  return query;
}

class SqliteSource final : public ReaderBase {
 public:
  SqliteSource(const SourceOptions& options, RejectSink* rejects) : options_(options), rejects_(rejects) {}

  Status Open(const InputRange& range, const Schema& file_schema) {
    ASSIGN_OR_RETURN(input_, OpenSqliteInput(range.path, options_.table, options_.query));
    const std::string slice = input_.name + (range.label.empty() ? "" : " " + range.label);
    location_ = "input '" + input_.name + "'" + (range.label.empty() ? "" : " " + range.label);
    ASSIGN_OR_RETURN(schema_, SelectColumns(input_.name, file_schema, options_, /*allow_declared_only=*/false));
    // Without sample keys a row is sampled by where it is: its unit's slice and its row there.
    RETURN_IF_ERROR(sampler_.Init(slice, schema_, options_));
    limits_.Set(options_.batch_rows, options_.max_batch_bytes);

    std::string sql = "SELECT ";
    for (size_t col_idx = 0; col_idx < schema_.num_fields(); ++col_idx) {
      if (col_idx > 0) sql += ", ";
      sql += QuoteSqliteIdentifier(schema_.field(col_idx).name);
    }
    if (schema_.num_fields() == 0) sql += "1";
    sql += " FROM " + input_.from;
    if (!range.filter.empty()) sql += " WHERE " + range.filter;
    if (!input_.rowid.empty()) sql += " ORDER BY " + input_.rowid;
    Result<SqliteStmt> stmt = input_.db->Prepare(sql);
    if (!stmt.ok()) return stmt.status().WithContext(location_);
    stmt_ = std::move(*stmt);
    RETURN_IF_ERROR(stmt_.BindAll(range.params));

    for (const Field& field : schema_.fields()) {
      std::string hint;
      if (!options_.declared_types.count(field.name)) {
        const auto column = std::find(input_.columns.begin(), input_.columns.end(), field.name);
        const std::string& declared = input_.declared[static_cast<size_t>(column - input_.columns.begin())];
        hint = SqliteDeclaredType(declared)
                   ? " (declared " + declared + "; set input.schema." + field.name + " to read it as another type)"
                   : " (type inferred from the first " + std::to_string(options_.infer_rows) +
                         " rows; declare it under input.schema." + field.name + " to read it as another type)";
      }
      hints_.push_back(std::move(hint));
    }
    cells_.resize(schema_.num_fields());
    return Status::OK();
  }

  uint64_t bytes_read() const override { return bytes_read_; }

  Result<bool> Next(Batch* batch) override {
    if (!status_.ok()) return status_;
    batch->Reset(schema_);
    batch->first_row = rows_emitted_;
    size_t rows = 0;
    const uint64_t batch_begin = bytes_read_;
    while (!done_ && !limits_.Full(rows, bytes_read_ - batch_begin)) {
      Result<bool> row = stmt_.Step();
      if (!row.ok()) {
        status_ = row.status().WithContext(location_);
        return status_;
      }
      if (!*row) {
        done_ = true;
        break;
      }
      ++ordinal_;
      if (AddRow(batch)) ++rows;
    }
    rows_emitted_ += rows;
    return rows > 0;
  }

 private:
  // Converts the current row into the batch, or rejects it, or leaves it out
  // of the sample. True if added.
  bool AddRow(Batch* batch) {
    for (size_t col_idx = 0; col_idx < cells_.size(); ++col_idx) {
      sqlite3_value* value = sqlite3_column_value(stmt_.get(), static_cast<int>(col_idx));
      const int storage = sqlite3_value_type(value);
      bytes_read_ += storage == SQLITE_TEXT || storage == SQLITE_BLOB ? static_cast<uint64_t>(sqlite3_value_bytes(value)) : 8;
      const ValueFit fit = ReadValue(value, schema_.field(col_idx).type, &cells_[col_idx]);
      if (fit != ValueFit::kOk) {
        AddReject(fit, col_idx, value, storage);
        return false;
      }
    }
    if (!sampler_.Keep(cells_, ordinal_)) return false;
    for (size_t col_idx = 0; col_idx < cells_.size(); ++col_idx) AppendCell(cells_[col_idx], &batch->columns[col_idx]);
    batch->row_lines.push_back(ordinal_);
    return true;
  }

  void AddReject(ValueFit fit, size_t col_idx, sqlite3_value* value, int storage) {
    if (rejects_ == nullptr) return;
    const Field& field = schema_.field(col_idx);
    std::string what;
    std::string_view text;
    if (storage == SQLITE_BLOB) {
      what = "a BLOB value (" + std::to_string(sqlite3_value_bytes(value)) + " bytes) cannot be read as " +
             std::string(DataTypeName(field.type));
    } else {
      text = ValueText(value);
      what = fit == ValueFit::kInvalidUtf8
                 ? "text is not valid UTF-8: " + MessageValue(text)
                 : "cannot read " + std::string(StorageClassName(storage)) + " value '" + MessageValue(text) +
                       "' as " + std::string(DataTypeName(field.type)) + hints_[col_idx];
    }
    Reject reject;
    reject.file = input_.name;
    reject.line = ordinal_;
    reject.column = field.name;
    reject.value = RejectValue(text);
    reject.reason = std::string(fit == ValueFit::kInvalidUtf8 ? reject_reason::kInvalidUtf8 : reject_reason::kBadValue);
    reject.message = location_ + " row " + std::to_string(ordinal_) + ", column '" + field.name + "': " + what;
    rejects_->Add(std::move(reject));
  }

  SourceOptions options_;
  RejectSink* rejects_;
  SqliteInput input_;
  std::string location_;  // "input '<db> table t' rowid 1-50000"
  SqliteStmt stmt_;
  std::vector<std::string> hints_;  // per column: how to read it as another type, for bad_value messages
  std::vector<Cell> cells_;
  int64_t ordinal_ = 0;  // rows stepped so far (1-based ordinal of the current row)
  uint64_t bytes_read_ = 0;
  uint64_t rows_emitted_ = 0;
  bool done_ = false;
  Status status_;
};

}  // namespace

Result<SqliteInput> OpenSqliteInput(const std::string& database, const std::string& table, const std::string& query) {
  SqliteInput in;
  in.name = RedactConnection(database) + (table.empty() ? " query" : " table " + table);
  in.key = table.empty() ? "input.query" : "input.table '" + table + "'";
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(database, SqliteDb::Access::kReadOnly, kSqliteInputBusyTimeoutMs);
  if (!db.ok()) return db.status().WithContext(in.key);
  in.db = std::move(*db);
  const int rc = sqlite3_create_function_v2(in.db->handle(), std::string(kSqliteBucketFunction).c_str(), 3,
                                            SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, BucketFunction, nullptr,
                                            nullptr, nullptr);
  if (rc != SQLITE_OK) return in.db->Error(rc).WithContext(in.key);

  if (!table.empty()) {
    in.from = QuoteSqliteIdentifier(table);
  } else {
    const std::string_view text = TrimQuery(query);
    // Alone first, so that errors are about the query as written.
    Result<SqliteStmt> alone = in.db->Prepare(text);
    if (!alone.ok()) return alone.status().WithContext(in.key);
    if (alone->column_count() == 0) {
      return Status::InvalidArgument(in.key + ": returns no rows (give a SELECT): " + MessageValue(text));
    }
    // Checked here: as a subquery, SQLite renames a repeated column ("a:1").
    for (int col = 0; col < alone->column_count(); ++col) {
      for (int before = 0; before < col; ++before) {
        if (EqualsIgnoreCase(alone->ColumnName(before), alone->ColumnName(col))) {
          return Status::InvalidArgument(in.key + ": two result columns are named '" + alone->ColumnName(col) +
                                         "' (give them distinct names with AS)");
        }
      }
    }
    in.from = "(" + std::string(text) + ")";
  }
  Result<SqliteStmt> all = in.db->Prepare("SELECT * FROM " + in.from);
  if (!all.ok()) {
    const Status& st = all.status();
    return Status(table.empty() || st.code() != StatusCode::kInvalidArgument ? st.code() : StatusCode::kNotFound,
                  in.key + ": " + st.message());
  }
  for (int col = 0; col < all->column_count(); ++col) {
    in.columns.push_back(all->ColumnName(col));
    in.declared.push_back(all->ColumnDeclType(col));
  }
  if (!table.empty() && IsTable(in.db.get(), table)) {
    for (const char* rowid : {"rowid", "_rowid_", "oid"}) {
      const bool shadowed = std::any_of(in.columns.begin(), in.columns.end(),
                                        [&](const std::string& c) { return EqualsIgnoreCase(c, rowid); });
      if (shadowed) continue;
      // Fails for views and WITHOUT ROWID tables.
      if (in.db->Prepare(std::string("SELECT ") + rowid + " FROM " + in.from + " LIMIT 0").ok()) in.rowid = rowid;
      break;
    }
  }
  return in;
}

Result<Schema> InferSqliteSchema(const std::string& path, const SourceOptions& options) {
  ASSIGN_OR_RETURN(SqliteInput in, OpenSqliteInput(path, options.table, options.query));
  const size_t n = in.columns.size();
  std::vector<std::optional<DataType>> types(n);
  std::vector<TypeGuess> guesses(n);
  bool guess = false;
  for (size_t col_idx = 0; col_idx < n; ++col_idx) {
    const auto declared = options.declared_types.find(in.columns[col_idx]);
    types[col_idx] = declared != options.declared_types.end() ? declared->second : SqliteDeclaredType(in.declared[col_idx]);
    guess = guess || !types[col_idx];
  }
  if (guess && options.infer_rows > 0) {
    Result<SqliteStmt> stmt = in.db->Prepare("SELECT * FROM " + in.from + " LIMIT ?");
    if (!stmt.ok()) return stmt.status().WithContext(in.key);
    RETURN_IF_ERROR(stmt->BindInt64(1, static_cast<int64_t>(options.infer_rows)));
    while (true) {
      Result<bool> row = stmt->Step();
      if (!row.ok()) return row.status().WithContext(in.key);
      if (!*row) break;
      for (size_t col_idx = 0; col_idx < n; ++col_idx) {
        if (types[col_idx]) continue;
        const int col = static_cast<int>(col_idx);
        switch (stmt->ColumnType(col)) {
          case SQLITE_INTEGER: guesses[col_idx].AddJsonInteger(); break;
          case SQLITE_FLOAT: guesses[col_idx].AddJsonFloat(); break;
          case SQLITE_TEXT: guesses[col_idx].AddText(stmt->ColumnText(col), /*json_string=*/true); break;
          case SQLITE_BLOB: guesses[col_idx].AddJsonNested(); break;
          default: break;  // NULL
        }
      }
    }
  }
  Schema schema;
  for (size_t col_idx = 0; col_idx < n; ++col_idx) {
    schema.AddField(Field{in.columns[col_idx], types[col_idx].value_or(guesses[col_idx].Type())});
  }
  return schema;
}

Result<std::unique_ptr<Source>> OpenSqliteSource(const InputRange& range, const Schema& file_schema,
                                                 const SourceOptions& options, RejectSink* rejects) {
  auto source = std::make_unique<SqliteSource>(options, rejects);
  RETURN_IF_ERROR(source->Open(range, file_schema));
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace sluice
