#include "db/sqlite_db.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <utility>

namespace sluice {
namespace {

StatusCode CodeOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return StatusCode::kUnavailable;
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL: return StatusCode::kIOError;
    case SQLITE_FULL:
    case SQLITE_NOMEM: return StatusCode::kResourceExhausted;
    case SQLITE_CANTOPEN: return StatusCode::kNotFound;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return StatusCode::kCorruption;
    case SQLITE_CONSTRAINT: return StatusCode::kAlreadyExists;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return StatusCode::kFailedPrecondition;
    case SQLITE_INTERRUPT: return StatusCode::kCancelled;
    default: return StatusCode::kInvalidArgument;
  }
}

std::string DbContext(const std::string& path) { return "SQLite database '" + path + "'"; }

}  // namespace

// ---- SqliteStmt ----------------------------------------------------------------

SqliteStmt::~SqliteStmt() { sqlite3_finalize(stmt_); }

SqliteStmt::SqliteStmt(SqliteStmt&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}

SqliteStmt& SqliteStmt::operator=(SqliteStmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Status SqliteStmt::BindInt64(int index, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  return rc == SQLITE_OK ? Status::OK() : db_->Error(rc);
}

Status SqliteStmt::BindDouble(int index, double value) {
  const int rc = sqlite3_bind_double(stmt_, index, value);
  return rc == SQLITE_OK ? Status::OK() : db_->Error(rc);
}

Status SqliteStmt::BindText(int index, std::string_view value) {
  const int rc = sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return rc == SQLITE_OK ? Status::OK() : db_->Error(rc);
}

Status SqliteStmt::BindTextNoCopy(int index, std::string_view value) {
  const int rc = sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8);
  return rc == SQLITE_OK ? Status::OK() : db_->Error(rc);
}

Status SqliteStmt::BindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  return rc == SQLITE_OK ? Status::OK() : db_->Error(rc);
}

Status SqliteStmt::Bind(int index, const SqlParam& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return BindInt64(index, *i);
  if (const auto* d = std::get_if<double>(&value)) return BindDouble(index, *d);
  if (const auto* s = std::get_if<std::string>(&value)) return BindText(index, *s);
  return BindNull(index);
}

Status SqliteStmt::BindAll(const std::vector<SqlParam>& params, int first) {
  for (size_t i = 0; i < params.size(); ++i) RETURN_IF_ERROR(Bind(first + static_cast<int>(i), params[i]));
  return Status::OK();
}

Result<bool> SqliteStmt::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc);
}

Status SqliteStmt::Run() {
  while (true) {
    ASSIGN_OR_RETURN(const bool row, Step());
    if (!row) return Status::OK();
  }
}

void SqliteStmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int SqliteStmt::column_count() const { return sqlite3_column_count(stmt_); }
int SqliteStmt::ColumnType(int col) const { return sqlite3_column_type(stmt_, col); }
int64_t SqliteStmt::ColumnInt64(int col) const { return sqlite3_column_int64(stmt_, col); }
double SqliteStmt::ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }

std::string_view SqliteStmt::ColumnText(int col) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (text == nullptr) return {};
  return {text, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))};
}

std::string SqliteStmt::ColumnName(int col) const {
  const char* name = sqlite3_column_name(stmt_, col);
  return name == nullptr ? std::string() : std::string(name);
}

std::string SqliteStmt::ColumnDeclType(int col) const {
  const char* decl = sqlite3_column_decltype(stmt_, col);
  return decl == nullptr ? std::string() : std::string(decl);
}

// ---- SqliteDb ------------------------------------------------------------------

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, Access access, int busy_timeout_ms) {
  sqlite3* handle = nullptr;
  const int flags = (access == Access::kReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                    SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &handle, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    sqlite3_close_v2(handle);
    if ((rc & 0xff) == SQLITE_CANTOPEN) {
      message = access == Access::kReadOnly ? "no such database file" : "cannot open or create the file";
    }
    return Status(CodeOf(rc), DbContext(path) + ": " + message);
  }
  std::unique_ptr<SqliteDb> db(new SqliteDb(handle, path));
  sqlite3_extended_result_codes(handle, 1);
  sqlite3_busy_timeout(handle, busy_timeout_ms);
  return db;
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

Status SqliteDb::Error(int rc) const {
  // The connection's message describes its last failed call, which is this one.
  std::string message = sqlite3_errmsg(db_);
  if (message.empty() || message == "not an error") message = sqlite3_errstr(rc);
  std::replace(message.begin(), message.end(), '\n', ' ');
  return Status(CodeOf(rc), DbContext(path_) + ": " + message);
}

Status SqliteDb::Exec(std::string_view sql) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::OK() : Error(rc);
}

Result<SqliteStmt> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) return Error(rc);
  SqliteStmt owned(this, stmt);
  if (stmt == nullptr) return Status::InvalidArgument(DbContext(path_) + ": no SQL statement");
  const std::string_view rest = sql.substr(static_cast<size_t>(tail - sql.data()));
  const bool more = std::any_of(rest.begin(), rest.end(), [](char c) {
    return !std::isspace(static_cast<unsigned char>(c)) && c != ';';
  });
  if (more) return Status::InvalidArgument(DbContext(path_) + ": more than one SQL statement");
  return owned;
}

std::string QuoteSqliteIdentifier(std::string_view name) {
  std::string quoted = "\"";
  for (const char c : name) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

std::optional<DataType> SqliteDeclaredType(std::string_view declared) {
  std::string upper(declared);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const auto has = [&upper](std::string_view part) { return upper.find(part) != std::string::npos; };
  if (has("BOOL")) return DataType::kBool;
  if (has("DATE") || has("TIMESTAMP")) return DataType::kTimestamp;
  if (has("INT")) return DataType::kInt64;
  if (has("CHAR") || has("CLOB") || has("TEXT")) return DataType::kString;
  if (has("REAL") || has("FLOA") || has("DOUB") || has("NUMERIC") || has("DECIMAL")) return DataType::kFloat64;
  return std::nullopt;
}

std::string_view SqliteColumnType(DataType type) {
  switch (type) {
    case DataType::kInt64: return "INTEGER";
    case DataType::kFloat32:
    case DataType::kFloat64: return "REAL";
    case DataType::kBool: return "BOOLEAN";
    case DataType::kString: return "TEXT";
    case DataType::kTimestamp: return "TIMESTAMP";
    case DataType::kDate: return "DATE";
  }
  return "TEXT";
}

}  // namespace sluice
