#include "db/postgres_conn.h"

#include <charconv>

#include "core/strings.h"

namespace sluice {
namespace {

// libpq and server texts on one line: newlines and tabs become spaces, runs of
// spaces one, and the ends are trimmed.
std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const char s = (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    if (s == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(s);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

StatusCode CodeForSqlState(std::string_view state) {
  if (state.starts_with("08") || state.starts_with("53") || state == "57P01" || state == "57P02" ||
      state == "57P03" || state == "40001" || state == "40P01" || state == "55P03") {
    return StatusCode::kUnavailable;
  }
  if (state == "57014") return StatusCode::kTimeout;
  if (state == "42P01" || state == "42703") return StatusCode::kNotFound;
  if (state == "23505") return StatusCode::kAlreadyExists;
  if (state.starts_with("58") || state.starts_with("XX")) return StatusCode::kIOError;
  return StatusCode::kInvalidArgument;
}

}  // namespace

PgConnection::PgConnection(PGconn* conn, std::string conn_string)
    : conn_(conn), conn_string_(std::move(conn_string)), redacted_(RedactConnection(conn_string_)) {}

PgConnection::~PgConnection() { PQfinish(conn_); }

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& conn, std::string_view what) {
  // Later entries win over the connection string's, earlier ones are defaults it may override.
  const char* const keys[] = {"fallback_application_name", "connect_timeout", "keepalives", "keepalives_idle",
                              "keepalives_interval",       "keepalives_count", "dbname",     "client_encoding",
                              nullptr};
  const char* const values[] = {"sluice", "10", "1", "30", "10", "3", conn.c_str(), "UTF8", nullptr};
  PGconn* raw = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (raw == nullptr) return Status::Unavailable(std::string(what) + ": cannot connect to " + RedactConnection(conn) + ": out of memory");
  std::unique_ptr<PgConnection> c(new PgConnection(raw, conn));
  // NOTICEs ("… does not exist, skipping") are not for the user; errors come back as results.
  PQsetNoticeProcessor(raw, [](void*, const char*) {}, nullptr);
  if (PQstatus(raw) != CONNECTION_OK) {
    return Status::Unavailable(std::string(what) + ": cannot connect to " + c->redacted() + ": " +
                               RedactPassword(OneLine(PQerrorMessage(raw)), conn));
  }
  Result<PgResult> set = c->Exec("SET TimeZone = 'UTC'", std::string(what) + " (" + c->redacted() + ")");
  if (!set.ok()) return set.status();
  return c;
}

Result<PgResult> PgConnection::Exec(const std::string& sql, std::string_view what) {
  PgResult result(PQexec(conn_, sql.c_str()));
  const ExecStatusType st = PQresultStatus(result.get());
  if (result && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN)) return result;
  return Error(result.get(), what);
}

Result<PgResult> PgConnection::ExecParams(const std::string& sql, const std::vector<SqlParam>& params,
                                          std::string_view what, bool binary_result) {
  std::vector<std::string> text(params.size());
  std::vector<const char*> values(params.size(), nullptr);
  for (size_t i = 0; i < params.size(); ++i) {
    const SqlParam& p = params[i];
    if (std::holds_alternative<std::monostate>(p)) continue;
    if (const auto* s = std::get_if<std::string>(&p)) {
      values[i] = s->c_str();
      continue;
    }
    char buf[32];
    const std::to_chars_result r = std::holds_alternative<int64_t>(p)
                                       ? std::to_chars(buf, buf + sizeof(buf), std::get<int64_t>(p))
                                       : std::to_chars(buf, buf + sizeof(buf), std::get<double>(p));
    text[i].assign(buf, r.ptr);
    values[i] = text[i].c_str();
  }
  PgResult result(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), /*paramTypes=*/nullptr,
                               values.data(), /*paramLengths=*/nullptr, /*paramFormats=*/nullptr,
                               binary_result ? 1 : 0));
  const ExecStatusType st = PQresultStatus(result.get());
  if (result && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) return result;
  return Error(result.get(), what);
}

std::string_view PgConnection::SqlState(const PGresult* result) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return state != nullptr ? std::string_view(state) : std::string_view();
}

Status PgConnection::Error(const PGresult* result, std::string_view what) const {
  const std::string_view state = SqlState(result);
  std::string message;
  const char* primary = result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  if (primary != nullptr) {
    message = primary;
    if (const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL)) message += std::string("; ") + detail;
    if (const char* context = PQresultErrorField(result, PG_DIAG_CONTEXT)) {
      const std::string_view c(context);
      message += " (" + std::string(c.substr(0, c.find('\n'))) + ")";
    }
  } else {
    message = PQerrorMessage(conn_);
  }
  message = std::string(what) + ": " + RedactPassword(OneLine(message), conn_string_);
  // A lost connection has no SQLSTATE from the server, or one of class 08.
  const StatusCode code = !ok() || state.empty() ? StatusCode::kUnavailable : CodeForSqlState(state);
  return Status(code, std::move(message));
}

std::string PgQuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string PgNumberPlaceholders(std::string_view sql, int first) {
  std::string out;
  out.reserve(sql.size() + 8);
  char quote = 0;
  for (const char c : sql) {
    if (quote != 0) {
      if (c == quote) quote = 0;  // a doubled quote closes and reopens: same result
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      out += '$' + std::to_string(first++);
    } else {
      out += c;
    }
  }
  return out;
}

std::string PgRelation(const std::string& table, const std::string& query) {
  if (!table.empty()) return PgQuoteIdentifier(table);
  std::string_view q = query;
  while (!q.empty() && (q.back() == ';' || q.back() == ' ' || q.back() == '\n' || q.back() == '\t' || q.back() == '\r')) {
    q.remove_suffix(1);
  }
  return "(" + std::string(q) + "\n)";  // the newline ends a trailing -- comment
}

std::string PgRelationName(const std::string& table) { return table.empty() ? "query" : "table " + table; }

DataType PgColumnType(Oid oid) {
  if (PgIsIntegerType(oid) || oid == pg_oid::kOid) return DataType::kInt64;
  if (PgIsTimeType(oid)) return DataType::kTimestamp;
  switch (oid) {
    case pg_oid::kFloat4: return DataType::kFloat32;
    case pg_oid::kFloat8:
    case pg_oid::kNumeric: return DataType::kFloat64;
    case pg_oid::kBool: return DataType::kBool;
    default: return DataType::kString;
  }
}

bool PgIsIntegerType(Oid oid) { return oid == pg_oid::kInt2 || oid == pg_oid::kInt4 || oid == pg_oid::kInt8; }

bool PgIsTimeType(Oid oid) {
  return oid == pg_oid::kTimestamp || oid == pg_oid::kTimestampTz || oid == pg_oid::kDate;
}

}  // namespace sluice
