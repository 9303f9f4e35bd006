#include "sink/sqlite_sink.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "batch/value_parse.h"
#include "db/sqlite_db.h"
#include "core/strings.h"
#include "sink/value_format.h"

namespace sluice {
namespace {

constexpr std::string_view kProgressTable = "sluice_units";

const char* const kCreateProgressTable =
    "CREATE TABLE IF NOT EXISTS sluice_units (job TEXT NOT NULL, unit TEXT NOT NULL, tbl TEXT NOT NULL, "
    "marker TEXT NOT NULL, committed_at TEXT NOT NULL, PRIMARY KEY (job, unit))";
const char* const kNow = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

std::string TableContext(const OutputSpec& output) {
  return "output.table '" + output.table + "' in SQLite database '" + output.database + "'";
}

// "a", "b", … of the fields of `schema`, each quoted.
std::string ColumnList(const Schema& schema, std::string_view prefix = "") {
  std::string list;
  for (const Field& field : schema.fields()) {
    if (!list.empty()) list += ", ";
    list += std::string(prefix) + QuoteSqliteIdentifier(field.name);
  }
  return list;
}

// Whether a column declared as `column` (nullopt: no declared type) can hold values of `field`.
bool Holds(std::optional<DataType> column, DataType field) {
  if (!column) return true;
  switch (field) {
    case DataType::kInt64: return *column == DataType::kInt64;
    case DataType::kFloat32:
    case DataType::kFloat64: return *column == DataType::kFloat64;
    case DataType::kBool: return *column == DataType::kBool || *column == DataType::kInt64;
    case DataType::kString: return *column == DataType::kString;
    case DataType::kTimestamp:
    case DataType::kDate: return *column == DataType::kTimestamp || *column == DataType::kString;
  }
  return false;
}

// The double nearest to the shortest decimal text of `v` (0.1f -> 0.1, not
// 0.10000000149011612): REAL columns then show what CSV output shows, and the
// value still converts back to the same float32.
double Float32AsDecimal(float v) {
  if (!std::isfinite(v)) return static_cast<double>(v);
  char buf[32];
  const std::to_chars_result end = std::to_chars(buf, buf + sizeof buf, v);
  double d = 0;
  std::from_chars(buf, end.ptr, d);
  return d;
}

// An open write transaction, rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(SqliteDb* db) : db_(db) {}
  ~Transaction() {
    if (open_) (void)db_->Exec("ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // BEGIN IMMEDIATE: takes the write lock now (waiting up to the busy timeout).
  Status Begin() {
    RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return Status::OK();
  }
  Status Commit() {
    RETURN_IF_ERROR(db_->Exec("COMMIT"));
    open_ = false;
    return Status::OK();
  }

 private:
  SqliteDb* db_;
  bool open_ = false;
};

// Checks an existing output.table against `schema` (see sqlite_sink.h);
// *exists tells whether there is one.
Status CheckTable(SqliteDb* db, const OutputSpec& output, const Schema& schema, bool* exists) {
  const std::string context = TableContext(output);
  ASSIGN_OR_RETURN(SqliteStmt kind, db->Prepare("SELECT type FROM sqlite_schema WHERE name = ? COLLATE NOCASE"));
  RETURN_IF_ERROR(kind.BindText(1, output.table));
  ASSIGN_OR_RETURN(*exists, kind.Step());
  if (!*exists) return Status::OK();
  if (kind.ColumnText(0) != "table") {
    return Status::InvalidArgument(context + ": is a " + std::string(kind.ColumnText(0)) + ", not a table");
  }
  ASSIGN_OR_RETURN(SqliteStmt info,
                   db->Prepare("SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk FROM pragma_table_info(?)"));
  RETURN_IF_ERROR(info.BindText(1, output.table));
  struct TableColumn {
    std::string name;
    std::string declared;
    bool required;  // NOT NULL without a default
  };
  std::vector<TableColumn> columns;
  std::vector<std::string> names;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, info.Step());
    if (!row) break;
    TableColumn c{std::string(info.ColumnText(0)), std::string(info.ColumnText(1)),
                  info.ColumnInt64(2) != 0 && info.ColumnInt64(3) == 0};
    // An INTEGER PRIMARY KEY is the rowid: SQLite fills it.
    if (info.ColumnInt64(4) != 0 && EqualsIgnoreCase(c.declared, "INTEGER")) c.required = false;
    names.push_back(c.name);
    columns.push_back(std::move(c));
  }
  std::vector<bool> written(columns.size(), false);
  for (const Field& field : schema.fields()) {
    size_t col = 0;
    while (col < columns.size() && !EqualsIgnoreCase(columns[col].name, field.name)) ++col;
    if (col == columns.size()) {
      return Status::InvalidArgument(context + ": has no column '" + field.name + "' (columns: " + JoinNames(names) +
                                     "); drop the table or choose another output.table");
    }
    if (!Holds(SqliteDeclaredType(columns[col].declared), field.type)) {
      return Status::InvalidArgument(context + ": column '" + columns[col].name + "' is " + columns[col].declared +
                                     ", which cannot hold " + std::string(DataTypeName(field.type)) +
                                     " values; drop the table or choose another output.table");
    }
    written[col] = true;
  }
  for (size_t col = 0; col < columns.size(); ++col) {
    if (!written[col] && columns[col].required) {
      return Status::InvalidArgument(context + ": column '" + columns[col].name +
                                     "' is NOT NULL without a default, and the job does not write it");
    }
  }
  return Status::OK();
}

Status CheckTableName(const OutputSpec& output) {
  if (EqualsIgnoreCase(output.table, kProgressTable)) {
    return Status::InvalidArgument("output.table: '" + output.table + "' is Sluice's progress table; choose another");
  }
  return Status::OK();
}

class SqliteUnitWriter final : public TableUnitWriter {
 public:
  SqliteUnitWriter(const OutputSpec& output, std::string fingerprint, std::string unit_id, Schema schema)
      : output_(output), fingerprint_(std::move(fingerprint)), unit_id_(std::move(unit_id)), schema_(std::move(schema)) {}
  ~SqliteUnitWriter() override { Abort(); }

  Status Open(int busy_timeout_ms) {
    ASSIGN_OR_RETURN(db_, SqliteDb::Open(output_.database, SqliteDb::Access::kReadWrite, busy_timeout_ms));
    RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous = FULL; PRAGMA temp_store = FILE"));
    RETURN_IF_ERROR(db_->Exec("CREATE TEMP TABLE sluice_stage (" + ColumnList(schema_) + ")"));
    std::string insert = "INSERT INTO temp.sluice_stage VALUES (";
    for (size_t col = 0; col < schema_.num_fields(); ++col) insert += col == 0 ? "?" : ", ?";
    ASSIGN_OR_RETURN(insert_, db_->Prepare(insert + ")"));
    // The copy into the table and the progress row, prepared now so that a
    // broken statement fails the unit before its rows are read.
    std::string copy = "INSERT INTO main." + QuoteSqliteIdentifier(output_.table) + " (" + ColumnList(schema_) +
                       ") SELECT " + ColumnList(schema_) + " FROM temp.sluice_stage WHERE true ORDER BY rowid";
    if (output_.mode == OutputMode::kUpsert) copy += UpsertClause();
    ASSIGN_OR_RETURN(copy_, db_->Prepare(copy));
    ASSIGN_OR_RETURN(progress_, db_->Prepare("INSERT INTO main.sluice_units (job, unit, tbl, marker, committed_at) "
                                             "VALUES (?, ?, ?, ?, " + std::string(kNow) + ")"));
    scratch_.resize(schema_.num_fields());
    // Staging writes only the temporary database: no lock on the main one.
    return db_->Exec("BEGIN");
  }

  Status Write(const Batch& batch) override {
    if (!db_) return Status::FailedPrecondition("unit " + unit_id_ + ": write after commit or abort");
    if (batch.schema != schema_) return Status::Internal("unit " + unit_id_ + ": batch schema differs from the table's");
    for (size_t row = 0; row < batch.num_rows(); ++row) {
      for (size_t col = 0; col < batch.columns.size(); ++col) {
        Status st = Bind(static_cast<int>(col) + 1, batch.columns[col], row, &scratch_[col]);
        if (!st.ok()) return st.WithContext(TableContext(output_));
      }
      Status st = insert_.Run();
      insert_.Reset();
      if (!st.ok()) return st.WithContext(TableContext(output_) + ", staging unit " + unit_id_);
    }
    rows_ += static_cast<int64_t>(batch.num_rows());
    return Status::OK();
  }

  Result<bool> Commit(const std::string& marker_json) override {
    if (!db_) return Status::FailedPrecondition("unit " + unit_id_ + ": commit after commit or abort");
    Result<bool> committed = CommitStaged(marker_json);
    Abort();  // closes the connection: the stage goes with it
    if (!committed.ok()) return committed.status().WithContext(TableContext(output_) + ", unit " + unit_id_);
    return committed;
  }

  void Abort() override {
    // Closing the connection rolls back the staging transaction and drops the stage.
    insert_ = SqliteStmt();
    copy_ = SqliteStmt();
    progress_ = SqliteStmt();
    db_.reset();
  }

  int64_t rows_written() const override { return rows_; }

 private:
  // " ON CONFLICT (keys) DO UPDATE SET c = excluded.c, …" (DO NOTHING when every column is a key).
  std::string UpsertClause() const {
    std::string keys;
    for (const std::string& key : output_.keys) keys += (keys.empty() ? "" : ", ") + QuoteSqliteIdentifier(key);
    std::string set;
    for (const Field& field : schema_.fields()) {
      bool is_key = false;
      for (const std::string& key : output_.keys) is_key = is_key || EqualsIgnoreCase(key, field.name);
      if (is_key) continue;
      const std::string name = QuoteSqliteIdentifier(field.name);
      set += (set.empty() ? "" : ", ") + name + " = excluded." + name;
    }
    return " ON CONFLICT (" + keys + ") DO " + (set.empty() ? "NOTHING" : "UPDATE SET " + set);
  }

  Status Bind(int index, const Column& column, size_t row, std::string* scratch) {
    if (column.IsNull(row)) return insert_.BindNull(index);
    switch (column.type()) {
      case DataType::kInt64: return insert_.BindInt64(index, column.int64s()[row]);
      case DataType::kFloat32: return insert_.BindDouble(index, Float32AsDecimal(column.float32s()[row]));
      case DataType::kFloat64: return insert_.BindDouble(index, column.float64s()[row]);
      case DataType::kBool: return insert_.BindInt64(index, column.bools()[row] != 0 ? 1 : 0);
      case DataType::kString: return insert_.BindTextNoCopy(index, column.StringAt(row));
      case DataType::kTimestamp:
        scratch->clear();
        AppendFixedTimestampText(column.int64s()[row], scratch);
        return insert_.BindTextNoCopy(index, *scratch);
      case DataType::kDate:
        scratch->clear();
        AppendDateValueText(column.int64s()[row], scratch);
        return insert_.BindTextNoCopy(index, *scratch);
    }
    return Status::Internal("unknown column type");
  }

  Result<bool> CommitStaged(const std::string& marker_json) {
    RETURN_IF_ERROR(db_->Exec("COMMIT"));  // the stage (temporary database only)
    Transaction txn(db_.get());
    RETURN_IF_ERROR(txn.Begin());
    RETURN_IF_ERROR(copy_.Run());
    RETURN_IF_ERROR(progress_.BindText(1, fingerprint_));
    RETURN_IF_ERROR(progress_.BindText(2, unit_id_));
    RETURN_IF_ERROR(progress_.BindText(3, output_.table));
    RETURN_IF_ERROR(progress_.BindText(4, marker_json));
    Status st = progress_.Run();
    if (st.code() == StatusCode::kAlreadyExists) return false;  // txn rolls back: the first commit wins
    RETURN_IF_ERROR(st);
    RETURN_IF_ERROR(txn.Commit());
    return true;
  }

  const OutputSpec output_;
  const std::string fingerprint_;
  const std::string unit_id_;
  const Schema schema_;
  std::unique_ptr<SqliteDb> db_;  // null once committed or aborted
  SqliteStmt insert_;
  SqliteStmt copy_;
  SqliteStmt progress_;
  std::vector<std::string> scratch_;  // per column: a timestamp's text while it is bound
  int64_t rows_ = 0;
};

class SqliteTableSink final : public TableSink {
 public:
  SqliteTableSink(const OutputSpec& output, std::string fingerprint, const SqliteSinkOptions& options)
      : output_(output), fingerprint_(std::move(fingerprint)), options_(options) {}

  Status Open() {
    const std::filesystem::path parent = std::filesystem::path(output_.database).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Status::IOError("output.path: cannot create the directory '" + parent.string() + "' of SQLite database '" +
                             output_.database + "': " + ec.message());
    }
    Result<std::unique_ptr<SqliteDb>> db =
        SqliteDb::Open(output_.database, SqliteDb::Access::kReadWrite, options_.busy_timeout_ms);
    if (!db.ok()) return db.status().WithContext("output.path");
    db_ = std::move(*db);
    // WAL is a property of the database file: set once, every connection uses it.
    Result<std::string> mode = SetWal();
    if (!mode.ok()) return mode.status().WithContext("output.path");
    if (*mode != "wal") {
      spdlog::warn("output.path: SQLite database '{}' cannot use WAL mode (journal mode {}); its readers will "
                   "block commits", output_.database, *mode);
    }
    Status st = db_->Exec("PRAGMA synchronous = FULL");
    if (st.ok()) st = db_->Exec(kCreateProgressTable);
    return st.WithContext("output.path");
  }

  Result<std::optional<std::string>> CommittedMarker(const std::string& unit_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(SqliteStmt stmt, db_->Prepare("SELECT marker FROM sluice_units WHERE job = ? AND unit = ?"));
    RETURN_IF_ERROR(stmt.BindText(1, fingerprint_));
    RETURN_IF_ERROR(stmt.BindText(2, unit_id));
    Result<bool> row = stmt.Step();
    if (!row.ok()) return row.status().WithContext("sluice_units");
    if (!*row) return std::optional<std::string>();
    return std::optional<std::string>(std::string(stmt.ColumnText(0)));
  }

  Status PrepareTable(const Schema& schema) override {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(CheckTableName(output_));
    Status st = PrepareLocked(schema);
    if (!st.ok()) return st;
    schema_ = schema;
    return Status::OK();
  }

  Result<std::unique_ptr<TableUnitWriter>> OpenUnit(const std::string& unit_id) override {
    Schema schema;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!schema_) return Status::Internal("OpenUnit before PrepareTable");
      schema = *schema_;
    }
    auto writer = std::make_unique<SqliteUnitWriter>(output_, fingerprint_, unit_id, std::move(schema));
    Status st = writer->Open(options_.busy_timeout_ms);
    if (!st.ok()) return st.WithContext(TableContext(output_) + ", unit " + unit_id);
    return std::unique_ptr<TableUnitWriter>(std::move(writer));
  }

 private:
  // Puts the database in WAL mode; the journal mode it is in then.
  Result<std::string> SetWal() {
    ASSIGN_OR_RETURN(SqliteStmt stmt, db_->Prepare("PRAGMA journal_mode = WAL"));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    return row ? std::string(stmt.ColumnText(0)) : std::string("unknown");
  }

  Status PrepareLocked(const Schema& schema) {
    const std::string table = QuoteSqliteIdentifier(output_.table);
    Transaction txn(db_.get());
    RETURN_IF_ERROR(txn.Begin());
    bool exists = false;
    RETURN_IF_ERROR(CheckTable(db_.get(), output_, schema, &exists));
    if (!exists) {
      std::string columns;
      for (const Field& field : schema.fields()) {
        columns += (columns.empty() ? "" : ", ") + QuoteSqliteIdentifier(field.name) + " " +
                   std::string(SqliteColumnType(field.type));
      }
      RETURN_IF_ERROR(db_->Exec("CREATE TABLE " + table + " (" + columns + ")").WithContext(TableContext(output_)));
    }
    if (output_.mode == OutputMode::kUpsert) {
      std::string keys;
      for (const std::string& key : output_.keys) keys += (keys.empty() ? "" : ", ") + QuoteSqliteIdentifier(key);
      Status st = db_->Exec("CREATE UNIQUE INDEX IF NOT EXISTS " + QuoteSqliteIdentifier(output_.table + "_sluice_keys") +
                            " ON " + table + " (" + keys + ")");
      if (!st.ok()) {
        return Status(st.code(), TableContext(output_) + ": cannot create the unique index on output.keys (" +
                                     JoinNames(output_.keys) + ") that upsert needs: " + st.message());
      }
    }
    if (output_.mode == OutputMode::kOverwrite) {
      ASSIGN_OR_RETURN(SqliteStmt started, db_->Prepare("SELECT 1 FROM sluice_units WHERE job = ? AND unit = ''"));
      RETURN_IF_ERROR(started.BindText(1, fingerprint_));
      ASSIGN_OR_RETURN(const bool resumed, started.Step());
      if (!resumed) {
        RETURN_IF_ERROR(db_->Exec("DELETE FROM " + table));
        ASSIGN_OR_RETURN(SqliteStmt others,
                         db_->Prepare("DELETE FROM sluice_units WHERE tbl = ? COLLATE NOCASE AND job <> ?"));
        RETURN_IF_ERROR(others.BindText(1, output_.table));
        RETURN_IF_ERROR(others.BindText(2, fingerprint_));
        RETURN_IF_ERROR(others.Run());
        ASSIGN_OR_RETURN(SqliteStmt start, db_->Prepare("INSERT INTO sluice_units (job, unit, tbl, marker, committed_at) "
                                                        "VALUES (?, '', ?, '{}', " + std::string(kNow) + ")"));
        RETURN_IF_ERROR(start.BindText(1, fingerprint_));
        RETURN_IF_ERROR(start.BindText(2, output_.table));
        RETURN_IF_ERROR(start.Run());
      }
    }
    return txn.Commit();
  }

  const OutputSpec output_;
  const std::string fingerprint_;
  const SqliteSinkOptions options_;
  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;  // guarded by mu_ after Open
  std::optional<Schema> schema_;  // guarded by mu_: set by PrepareTable
};

}  // namespace

Status CheckSqliteTableSink(const OutputSpec& output, const Schema& schema) {
  RETURN_IF_ERROR(CheckTableName(output));
  std::error_code ec;
  if (!std::filesystem::exists(output.database, ec)) return Status::OK();  // created at the run's start
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(output.database, SqliteDb::Access::kReadOnly, 30000);
  if (!db.ok()) return db.status().WithContext("output.path");
  bool exists = false;
  return CheckTable(db->get(), output, schema, &exists);
}

Result<std::unique_ptr<TableSink>> OpenSqliteTableSink(const OutputSpec& output, const std::string& fingerprint,
                                                       const SqliteSinkOptions& options) {
  auto sink = std::make_unique<SqliteTableSink>(output, fingerprint, options);
  RETURN_IF_ERROR(sink->Open());
  return std::unique_ptr<TableSink>(std::move(sink));
}

}  // namespace sluice
