#include "sink/postgres_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "core/strings.h"
#include "db/postgres_conn.h"
#include "sink/value_format.h"

namespace sluice {
namespace {

// The progress table (sink.h), beside output.table in the search_path's first schema.
constexpr std::string_view kUnitsTable = "sluice_units";
// COPY data is sent once this much is buffered.
constexpr size_t kCopyFlushBytes = size_t{256} << 10;
// pg_advisory_xact_lock key held while sluice_units is created ("sluice" in ASCII).
constexpr std::string_view kCreateLockKey = "126943048975973";

std::string_view SqlType(DataType type) {
  switch (type) {
    case DataType::kInt64: return "BIGINT";
    case DataType::kFloat32: return "REAL";
    case DataType::kFloat64: return "DOUBLE PRECISION";
    case DataType::kBool: return "BOOLEAN";
    case DataType::kString: return "TEXT";
    case DataType::kTimestamp: return "TIMESTAMPTZ";
    case DataType::kDate: return "DATE";
  }
  return "TEXT";
}

// Whether a column of type `oid` takes values of `type` (see postgres_sink.h).
bool Holds(Oid oid, DataType type) {
  using namespace pg_oid;
  switch (type) {
    case DataType::kInt64: return PgIsIntegerType(oid) || oid == kNumeric || oid == kFloat4 || oid == kFloat8;
    case DataType::kFloat32:
    case DataType::kFloat64: return oid == kFloat4 || oid == kFloat8 || oid == kNumeric;
    case DataType::kBool: return oid == kBool;
    case DataType::kString: return oid == kText || oid == kVarchar || oid == kBpchar;
    case DataType::kTimestamp: return oid == kTimestamp || oid == kTimestampTz;
    case DataType::kDate: return oid == kDate || oid == kTimestamp || oid == kTimestampTz;
  }
  return false;
}

std::string ColumnList(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + PgQuoteIdentifier(n);
  return out;
}

// `text` escaped for COPY's text format.
void AppendCopyText(std::string_view text, std::string* out) {
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    char escaped = 0;
    switch (c) {
      case '\\': escaped = '\\'; break;
      case '\n': escaped = 'n'; break;
      case '\r': escaped = 'r'; break;
      case '\t': escaped = 't'; break;
      default: continue;
    }
    out->append(text.substr(run, i - run));
    out->push_back('\\');
    out->push_back(escaped);
    run = i + 1;
  }
  out->append(text.substr(run));
}

void AppendCopyValue(const Column& column, size_t row, std::string* out) {
  if (column.IsNull(row)) {
    out->append("\\N");
    return;
  }
  switch (column.type()) {
    case DataType::kInt64: AppendInt64Text(column.int64s()[row], out); break;
    case DataType::kFloat32: AppendFloat32Text(column.float32s()[row], TextFormat::kCsv, out); break;
    case DataType::kFloat64: AppendFloat64Text(column.float64s()[row], TextFormat::kCsv, out); break;
    case DataType::kBool: out->push_back(column.bools()[row] ? 't' : 'f'); break;
    case DataType::kString: AppendCopyText(column.StringAt(row), out); break;
    case DataType::kTimestamp: AppendTimestampText(column.int64s()[row], out); break;
    case DataType::kDate: AppendDateValueText(column.int64s()[row], out); break;
  }
}

struct TableColumn {
  std::string name;
  Oid oid = 0;
  std::string type_name;  // as format_type writes it
};

// The columns of output.table, or nullopt when there is no such table.
Result<std::optional<std::vector<TableColumn>>> ReadTableColumns(PgConnection* conn, const std::string& table,
                                                                 const std::string& what) {
  ASSIGN_OR_RETURN(const PgResult exists, conn->ExecParams("SELECT to_regclass($1) IS NOT NULL", {PgQuoteIdentifier(table)}, what));
  if (std::string_view(PQgetvalue(exists.get(), 0, 0)) != "t") return std::optional<std::vector<TableColumn>>();
  ASSIGN_OR_RETURN(const PgResult res,
                   conn->ExecParams("SELECT a.attname, a.atttypid::int8, format_type(a.atttypid, a.atttypmod) "
                                    "FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 "
                                    "AND NOT a.attisdropped ORDER BY a.attnum",
                                    {PgQuoteIdentifier(table)}, what));
  std::vector<TableColumn> columns;
  for (int row = 0; row < PQntuples(res.get()); ++row) {
    columns.push_back({PQgetvalue(res.get(), row, 0), static_cast<Oid>(std::stoul(PQgetvalue(res.get(), row, 1))),
                       PQgetvalue(res.get(), row, 2)});
  }
  return std::optional<std::vector<TableColumn>>(std::move(columns));
}

Status CheckColumns(const std::vector<TableColumn>& columns, const Schema& schema, const std::string& what) {
  for (const Field& f : schema.fields()) {
    const auto it = std::find_if(columns.begin(), columns.end(), [&](const TableColumn& c) { return c.name == f.name; });
    if (it == columns.end()) {
      std::vector<std::string> names;
      for (const TableColumn& c : columns) names.push_back(c.name);
      return Status::InvalidArgument(fmt::format("{}: the table has no column '{}' for the output column of that name (columns: {})",
                                                 what, f.name, JoinNames(names)));
    }
    if (!Holds(it->oid, f.type)) {
      return Status::InvalidArgument(fmt::format("{}: column '{}' is {}, which cannot hold the output's {} values", what,
                                                 f.name, it->type_name, DataTypeName(f.type)));
    }
  }
  return Status::OK();
}

Status CheckKeys(const OutputSpec& output, const Schema& schema, const std::string& what) {
  if (output.mode != OutputMode::kUpsert) return Status::OK();
  for (const std::string& key : output.keys) {
    if (!schema.FieldIndex(key)) {
      return Status::InvalidArgument(fmt::format("output.keys: '{}' is not an output column, which upsert into {} needs",
                                                 key, what));
    }
  }
  return Status::OK();
}

std::string What(const OutputSpec& output, const std::string& redacted) {
  return "output.table '" + output.table + "' in " + redacted;
}

// Everything a unit writer needs, fixed by PrepareTable.
struct WriterConfig {
  std::string fingerprint;
  std::string table;     // output.table as written
  std::string what;      // "output.table 't' in <redacted>"
  std::string copy_sql;  // COPY … FROM STDIN
  std::string stage_sql;   // upsert: the temporary staging table
  std::string upsert_sql;  // upsert: staging table -> output.table
  std::string progress_sql;
};

class PostgresUnitWriter final : public TableUnitWriter {
 public:
  PostgresUnitWriter(std::shared_ptr<const WriterConfig> config, std::string unit_id, std::unique_ptr<PgConnection> conn)
      : config_(std::move(config)),
        unit_id_(std::move(unit_id)),
        what_(config_->what + " unit " + unit_id_),
        conn_(std::move(conn)) {}
  ~PostgresUnitWriter() override { Abort(); }

  Status Write(const Batch& batch) override {
    if (!conn_) return Status::FailedPrecondition(what_ + ": write after commit or abort");
    if (!copying_) RETURN_IF_ERROR(StartCopy());
    const size_t rows = batch.num_rows();
    const size_t cols = batch.columns.size();
    for (size_t row = 0; row < rows; ++row) {
      for (size_t col_idx = 0; col_idx < cols; ++col_idx) {
        AppendCopyValue(batch.columns[col_idx], row, &buffer_);
        buffer_.push_back(col_idx + 1 < cols ? '\t' : '\n');
      }
      if (buffer_.size() >= kCopyFlushBytes) RETURN_IF_ERROR(Flush());
    }
    rows_ += static_cast<int64_t>(rows);
    return Status::OK();
  }

  Result<bool> Commit(const std::string& marker_json) override {
    if (!conn_) return Status::FailedPrecondition(what_ + ": commit after commit or abort");
    if (copying_) {
      RETURN_IF_ERROR(EndCopy());
    } else {
      RETURN_IF_ERROR(conn_->Exec("BEGIN", what_).status());
    }
    if (!config_->upsert_sql.empty() && rows_ > 0) RETURN_IF_ERROR(conn_->Exec(config_->upsert_sql, what_).status());
    Result<PgResult> progress =
        conn_->ExecParams(config_->progress_sql, {config_->fingerprint, unit_id_, config_->table, marker_json}, what_);
    if (!progress.ok()) {
      if (progress.status().code() != StatusCode::kAlreadyExists) return progress.status();
      Abort();  // the earlier attempt's rows stand; the server rolls this transaction back
      return false;
    }
    ASSIGN_OR_RETURN(const PgResult done, conn_->Exec("COMMIT", what_));
    if (std::string_view(PQcmdStatus(done.get())) != "COMMIT") {
      return Status::Internal(what_ + ": COMMIT answered '" + PQcmdStatus(done.get()) + "'");
    }
    conn_.reset();
    return true;
  }

  void Abort() override {
    conn_.reset();
    buffer_.clear();
  }

  int64_t rows_written() const override { return rows_; }

 private:
  Status StartCopy() {
    RETURN_IF_ERROR(conn_->Exec("BEGIN", what_).status());
    if (!config_->stage_sql.empty()) RETURN_IF_ERROR(conn_->Exec(config_->stage_sql, what_).status());
    RETURN_IF_ERROR(conn_->Exec(config_->copy_sql, what_).status());
    copying_ = true;
    return Status::OK();
  }

  Status Flush() {
    if (buffer_.empty()) return Status::OK();
    if (PQputCopyData(conn_->get(), buffer_.data(), static_cast<int>(buffer_.size())) != 1) return CopyFailure();
    buffer_.clear();
    return Status::OK();
  }

  // Why a COPY call failed: the server's error when it refused the data
  // (permanent: a value the column cannot take), else the lost connection.
  Status CopyFailure() {
    if (conn_->ok()) {
      PgResult res(PQgetResult(conn_->get()));
      if (res && PQresultStatus(res.get()) == PGRES_FATAL_ERROR) return conn_->Error(res.get(), what_);
    }
    return conn_->Error(nullptr, what_);
  }

  Status EndCopy() {
    RETURN_IF_ERROR(Flush());
    if (PQputCopyEnd(conn_->get(), nullptr) != 1) return CopyFailure();
    copying_ = false;
    PgResult res(PQgetResult(conn_->get()));
    Status st = PQresultStatus(res.get()) == PGRES_COMMAND_OK ? Status::OK() : conn_->Error(res.get(), what_);
    while (PgResult(PQgetResult(conn_->get()))) {
    }
    return st;
  }

  const std::shared_ptr<const WriterConfig> config_;
  const std::string unit_id_;
  const std::string what_;
  std::unique_ptr<PgConnection> conn_;  // null after Commit or Abort
  std::string buffer_;  // COPY data not sent yet
  bool copying_ = false;
  int64_t rows_ = 0;
};

class PostgresTableSink final : public TableSink {
 public:
  PostgresTableSink(const OutputSpec& output, std::string fingerprint, std::unique_ptr<PgConnection> conn)
      : output_(output),
        fingerprint_(std::move(fingerprint)),
        what_(What(output, conn->redacted())),
        conn_(std::move(conn)) {}

  Status CreateUnitsTable() {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction([&]() -> Status {
      RETURN_IF_ERROR(conn_->Exec(fmt::format("SELECT pg_advisory_xact_lock({})", kCreateLockKey), what_).status());
      return conn_
          ->Exec(fmt::format("CREATE TABLE IF NOT EXISTS {} (job text NOT NULL, unit text NOT NULL, tbl text NOT NULL, "
                             "marker text NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), "
                             "PRIMARY KEY (job, unit))",
                             kUnitsTable),
                 what_)
          .status();
    });
  }

  Result<std::optional<std::string>> CommittedMarker(const std::string& unit_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string sql = fmt::format("SELECT marker FROM {} WHERE job = $1 AND unit = $2", kUnitsTable);
    RETURN_IF_ERROR(Reconnect());
    Result<PgResult> res = conn_->ExecParams(sql, {fingerprint_, unit_id}, what_);
    if (!res.ok() && !conn_->ok()) {  // lost while idle (the server restarted, a timeout): once more
      RETURN_IF_ERROR(Reconnect());
      res = conn_->ExecParams(sql, {fingerprint_, unit_id}, what_);
    }
    if (!res.ok()) return res.status();
    if (PQntuples(res->get()) == 0) return std::optional<std::string>();
    return std::optional<std::string>(PQgetvalue(res->get(), 0, 0));
  }

  Status PrepareTable(const Schema& schema) override {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(Reconnect());
    RETURN_IF_ERROR(CheckKeys(output_, schema, what_));
    const std::string table = PgQuoteIdentifier(output_.table);
    RETURN_IF_ERROR(InTransaction([&]() -> Status {
      RETURN_IF_ERROR(conn_->Exec(fmt::format("LOCK TABLE {} IN EXCLUSIVE MODE", kUnitsTable), what_).status());
      ASSIGN_OR_RETURN(const std::optional<std::vector<TableColumn>> columns, ReadTableColumns(conn_.get(), output_.table, what_));
      if (columns) {
        RETURN_IF_ERROR(CheckColumns(*columns, schema, what_));
      } else {
        std::string defs;
        for (const Field& f : schema.fields()) {
          defs += (defs.empty() ? "" : ", ") + PgQuoteIdentifier(f.name) + " " + std::string(SqlType(f.type));
        }
        RETURN_IF_ERROR(conn_->Exec(fmt::format("CREATE TABLE {} ({})", table, defs), what_).status());
      }
      if (output_.mode == OutputMode::kUpsert) RETURN_IF_ERROR(EnsureKeyIndex());
      if (output_.mode == OutputMode::kOverwrite) {
        ASSIGN_OR_RETURN(const PgResult started,
                         conn_->ExecParams(fmt::format("SELECT 1 FROM {} WHERE job = $1 AND unit = ''", kUnitsTable),
                                           {fingerprint_}, what_));
        if (PQntuples(started.get()) == 0) {
          RETURN_IF_ERROR(conn_->Exec("TRUNCATE " + table, what_).status());
          RETURN_IF_ERROR(conn_->ExecParams(fmt::format("INSERT INTO {} (job, unit, tbl, marker) VALUES ($1, '', $2, '{{}}')", kUnitsTable),
                                            {fingerprint_, output_.table}, what_)
                              .status());
        }
      }
      return Status::OK();
    }));

    auto config = std::make_shared<WriterConfig>();
    config->fingerprint = fingerprint_;
    config->table = output_.table;
    config->what = what_;
    std::vector<std::string> names;
    for (const Field& f : schema.fields()) names.push_back(f.name);
    const std::string columns = ColumnList(names);
    if (output_.mode == OutputMode::kUpsert) {
      config->stage_sql = fmt::format("CREATE TEMP TABLE sluice_stage ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA",
                                      columns, table);
      config->copy_sql = fmt::format("COPY pg_temp.sluice_stage ({}) FROM STDIN", columns);
      const std::string keys = ColumnList(output_.keys);
      std::string updates;
      for (const std::string& n : names) {
        if (std::find(output_.keys.begin(), output_.keys.end(), n) != output_.keys.end()) continue;
        updates += fmt::format("{}{} = EXCLUDED.{}", updates.empty() ? "" : ", ", PgQuoteIdentifier(n), PgQuoteIdentifier(n));
      }
      // DISTINCT ON: one row per key (the unit's last: a fresh table's ctid follows the COPY's order).
      config->upsert_sql = fmt::format(
          "INSERT INTO {0} ({1}) SELECT DISTINCT ON ({2}) {1} FROM pg_temp.sluice_stage ORDER BY {2}, ctid DESC "
          "ON CONFLICT ({2}) DO {3}",
          table, columns, keys, updates.empty() ? "NOTHING" : "UPDATE SET " + updates);
    } else {
      config->copy_sql = fmt::format("COPY {} ({}) FROM STDIN", table, columns);
    }
    config->progress_sql =
        fmt::format("INSERT INTO {} (job, unit, tbl, marker, committed_at) VALUES ($1, $2, $3, $4, now())", kUnitsTable);
    config_ = std::move(config);
    return Status::OK();
  }

  Result<std::unique_ptr<TableUnitWriter>> OpenUnit(const std::string& unit_id) override {
    std::shared_ptr<const WriterConfig> config;
    {
      std::lock_guard<std::mutex> lock(mu_);
      config = config_;
    }
    if (!config) return Status::Internal(what_ + ": OpenUnit before PrepareTable");
    ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Connect(output_.database, "output.path"));
    return std::unique_ptr<TableUnitWriter>(std::make_unique<PostgresUnitWriter>(config, unit_id, std::move(conn)));
  }

 private:
  // Runs `body` between BEGIN and COMMIT; on failure the connection is dropped
  // (the server rolls back) and made again on next use.
  Status InTransaction(const std::function<Status()>& body) {
    Status st = conn_->Exec("BEGIN", what_).status();
    if (st.ok()) st = body();
    if (st.ok()) st = conn_->Exec("COMMIT", what_).status();
    if (!st.ok()) conn_.reset();
    return st;
  }

  // A fresh connection when the last one was lost or dropped.
  Status Reconnect() {
    if (conn_ && conn_->ok()) return Status::OK();
    conn_.reset();
    ASSIGN_OR_RETURN(conn_, PgConnection::Connect(output_.database, "output.path"));
    return Status::OK();
  }

  // A unique index on exactly output.keys, created when missing.
  Status EnsureKeyIndex() {
    std::vector<std::string> sorted = output_.keys;
    std::sort(sorted.begin(), sorted.end());
    std::string array = "{";
    for (const std::string& k : sorted) {
      array += array.size() > 1 ? ",\"" : "\"";
      for (const char c : k) {
        if (c == '"' || c == '\\') array += '\\';
        array += c;
      }
      array += '"';
    }
    array += "}";
    ASSIGN_OR_RETURN(const PgResult res,
                     conn_->ExecParams("SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisunique "
                                       "AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = $3::int "
                                       "AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM "
                                       "pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY "
                                       "((i.indkey::int2[])[0:i.indnkeyatts - 1])) = $2::text[]",
                                       {PgQuoteIdentifier(output_.table), array, static_cast<int64_t>(sorted.size())}, what_));
    if (PQntuples(res.get()) > 0) return Status::OK();
    const Status st = conn_->Exec(fmt::format("CREATE UNIQUE INDEX ON {} ({})", PgQuoteIdentifier(output_.table),
                                              ColumnList(output_.keys)),
                                  what_)
                          .status();
    if (st.ok()) return st;
    return Status(st.code(), fmt::format("output.mode upsert: cannot create the unique index on output.keys ({}) of {}",
                                         JoinNames(output_.keys), st.message()));
  }

  const OutputSpec output_;
  const std::string fingerprint_;
  const std::string what_;
  std::mutex mu_;
  std::unique_ptr<PgConnection> conn_;           // guarded by mu_
  std::shared_ptr<const WriterConfig> config_;   // guarded by mu_; set by PrepareTable
};

}  // namespace

Status CheckPostgresTableSink(const OutputSpec& output, const Schema& schema) {
  ASSIGN_OR_RETURN(const std::unique_ptr<PgConnection> conn, PgConnection::Connect(output.database, "output.path"));
  const std::string what = What(output, conn->redacted());
  RETURN_IF_ERROR(CheckKeys(output, schema, what));
  ASSIGN_OR_RETURN(const std::optional<std::vector<TableColumn>> columns, ReadTableColumns(conn.get(), output.table, what));
  if (columns) RETURN_IF_ERROR(CheckColumns(*columns, schema, what));
  return Status::OK();
}

Result<std::unique_ptr<TableSink>> OpenPostgresTableSink(const OutputSpec& output, const std::string& fingerprint) {
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Connect(output.database, "output.path"));
  auto sink = std::make_unique<PostgresTableSink>(output, fingerprint, std::move(conn));
  RETURN_IF_ERROR(sink->CreateUnitsTable());
  return std::unique_ptr<TableSink>(std::move(sink));
}

}  // namespace sluice
