// PlanPostgresUnits: units of a PostgreSQL table or query (see planner.h).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <optional>

#include "core/strings.h"
#include "db/postgres_conn.h"
#include "plan/planner.h"
#include "plan/time_window.h"
#include "sink/value_format.h"
#include "source/source_common.h"

namespace sluice {
namespace {

// Units a time, column or hash plan may have: more is a misconfigured column.
constexpr size_t kMaxUnits = 100000;

// The stable bucket of a value (md5 of its text form, 60 bits): the same on
// every server and version, unlike PostgreSQL's internal hash functions.
constexpr std::string_view kHashExpr = "(('x' || substr(md5(coalesce({}::text, '')), 1, 15))::bit(60)::int8 % ?)";

std::optional<int64_t> ParseInt(const char* text) {
  int64_t v = 0;
  const char* end = text + std::strlen(text);
  const auto r = std::from_chars(text, end, v);
  if (r.ec != std::errc() || r.ptr != end) return std::nullopt;
  return v;
}

std::string IsoText(int64_t micros) {
  std::string out;
  AppendTimestampText(micros, &out);
  return out;
}

class PostgresPlanner {
 public:
  PostgresPlanner(const InputSpec& input, const PartitionSpec& partition, PgConnection* conn)
      : input_(input),
        partition_(partition),
        conn_(conn),
        what_((input.table.empty() ? "input.query" : "input.table '" + input.table + "'") + " in " + conn->redacted()),
        rel_(PgRelation(input.table, input.query) + " q") {}

  Result<Plan> Run() {
    ASSIGN_OR_RETURN(const PgResult desc, conn_->Exec("SELECT * FROM " + rel_ + " LIMIT 0", what_));
    for (int col_idx = 0; col_idx < PQnfields(desc.get()); ++col_idx) {
      columns_.emplace_back(PQfname(desc.get(), col_idx), PQftype(desc.get(), col_idx));
    }
    plan_.format = InputFormat::kPostgres;
    switch (partition_.by) {
      case PartitionBy::kFiles: AddUnit("all rows", "", {}, 0, 0, false); break;
      case PartitionBy::kSize: RETURN_IF_ERROR(PlanSize()); break;
      case PartitionBy::kTime: RETURN_IF_ERROR(PlanTime()); break;
      case PartitionBy::kColumn: RETURN_IF_ERROR(PlanColumn()); break;
      case PartitionBy::kHash: RETURN_IF_ERROR(PlanHash()); break;
    }
    return std::move(plan_);
  }

 private:
  // The type of partition.column; an error names it when the input has no such column.
  Result<Oid> ColumnType(const std::string& column) {
    for (const auto& [name, oid] : columns_) {
      if (name == column) return oid;
    }
    std::vector<std::string> names;
    for (const auto& c : columns_) names.push_back(c.first);
    return Status::InvalidArgument(
        fmt::format("partition.column: no column '{}' in {} (columns: {})", column, what_, JoinNames(names)));
  }

  void AddUnit(std::string label, std::string filter, std::vector<SqlParam> params, int64_t rows, uint64_t bytes,
               bool exact) {
    AddDatabaseUnit(&plan_, input_.database, std::move(filter), std::move(params), std::move(label), rows, exact)
        .est_bytes = bytes;
  }

  // ---- by size -----------------------------------------------------------------------------

  // Size of the input: a table's heap and TOAST (stable while its rows are),
  // and its row estimate. nullopt for a view, a partitioned table or a query.
  struct TableSize {
    uint64_t bytes = 0;
    int64_t rows = 0;
  };
  Result<std::optional<TableSize>> PlainTableSize() {
    if (input_.table.empty()) return std::optional<TableSize>();
    ASSIGN_OR_RETURN(const PgResult res,
                     conn_->ExecParams("SELECT c.relkind IN ('r', 'm'), pg_relation_size(c.oid) + "
                                       "coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0), c.reltuples::int8 "
                                       "FROM pg_class c WHERE c.oid = to_regclass($1)",
                                       {PgQuoteIdentifier(input_.table)}, what_));
    if (PQntuples(res.get()) != 1 || std::string_view(PQgetvalue(res.get(), 0, 0)) != "t") {
      return std::optional<TableSize>();
    }
    TableSize size;
    size.bytes = static_cast<uint64_t>(ParseInt(PQgetvalue(res.get(), 0, 1)).value_or(0));
    size.rows = ParseInt(PQgetvalue(res.get(), 0, 2)).value_or(-1);
    if (size.rows < 0) {  // never analyzed: the planner's estimate
      ASSIGN_OR_RETURN(size.rows, EstimateRows());
    }
    return std::optional<TableSize>(size);
  }

  // The planner's row estimate of the whole input (for display only).
  Result<int64_t> EstimateRows() {
    ASSIGN_OR_RETURN(const PgResult res, conn_->Exec("EXPLAIN (FORMAT JSON) SELECT * FROM " + rel_, what_));
    const nlohmann::json plan = nlohmann::json::parse(PQgetvalue(res.get(), 0, 0), nullptr, false);
    if (plan.is_discarded() || !plan.is_array() || plan.empty()) return int64_t{0};
    return plan[0]["Plan"].value("Plan Rows", int64_t{0});
  }

  // A table's single-column integer primary key, if it has one.
  Result<std::string> IntegerPrimaryKey() {
    if (input_.table.empty()) return std::string();
    ASSIGN_OR_RETURN(const PgResult res,
                     conn_->ExecParams("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                                       "i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass($1) "
                                       "AND i.indisprimary AND i.indnkeyatts = 1",
                                       {PgQuoteIdentifier(input_.table)}, what_));
    if (PQntuples(res.get()) != 1) return std::string();
    std::string column = PQgetvalue(res.get(), 0, 0);
    ASSIGN_OR_RETURN(const Oid oid, ColumnType(column));
    return PgIsIntegerType(oid) ? column : std::string();
  }

  // partition.column as an int8 value expression: the integer, or a time as
  // microseconds since the Unix epoch (UTC).
  static std::string AsInt8(const std::string& expr, bool time) {
    return time ? fmt::format("(extract(epoch from {}) * 1000000)::int8", expr) : expr + "::int8";
  }

  Status PlanSize() {
    ASSIGN_OR_RETURN(const std::optional<TableSize> table, PlainTableSize());
    std::string column = partition_.column;
    if (column.empty()) { ASSIGN_OR_RETURN(column, IntegerPrimaryKey()); }
    if (column.empty()) {
      const int64_t rows = table ? table->rows : 0;
      AddUnit("all rows", "", {}, rows, table ? table->bytes : 0, false);
      return Status::OK();
    }
    ASSIGN_OR_RETURN(const Oid oid, ColumnType(column));
    const bool time = PgIsTimeType(oid);
    if (!time && !PgIsIntegerType(oid)) {
      return Status::InvalidArgument(fmt::format(
          "partition.column: '{}' in {} is not an integer, timestamp or date column, which partition.by size needs",
          column, what_));
    }
    const std::string col = "q." + PgQuoteIdentifier(column);
    // min, max, whether there are nulls, and (views and queries, which need a
    // pass anyway) rows and bytes.
    std::string sql;
    if (table) {
      sql = fmt::format("SELECT {}, {}, EXISTS (SELECT 1 FROM {} WHERE {} IS NULL) FROM {}", AsInt8("min(" + col + ")", time),
                        AsInt8("max(" + col + ")", time), rel_, col, rel_);
    } else {
      sql = fmt::format("SELECT {}, {}, count(*) > count({}), count(*), coalesce(sum(pg_column_size(q.*)), 0)::int8 FROM {}",
                        AsInt8("min(" + col + ")", time), AsInt8("max(" + col + ")", time), col, rel_);
    }
    ASSIGN_OR_RETURN(const PgResult res, conn_->Exec(sql, what_));
    const std::optional<int64_t> min = ParseInt(PQgetvalue(res.get(), 0, 0));
    const std::optional<int64_t> max = ParseInt(PQgetvalue(res.get(), 0, 1));
    const bool nulls = std::string_view(PQgetvalue(res.get(), 0, 2)) == "t";
    const int64_t rows = table ? table->rows : ParseInt(PQgetvalue(res.get(), 0, 3)).value_or(0);
    const uint64_t bytes = table ? table->bytes : static_cast<uint64_t>(ParseInt(PQgetvalue(res.get(), 0, 4)).value_or(0));
    const uint64_t target = std::max<uint64_t>(partition_.target_bytes, 1);
    const uint64_t wanted = std::max<uint64_t>(1, (bytes + target - 1) / target);
    if (!min || !max || wanted == 1) {
      AddUnit("all rows", "", {}, rows, bytes, false);
      return Status::OK();
    }
    // [min, max] cut into `wanted` ranges of equal width (the last one closed).
    const uint64_t span = static_cast<uint64_t>(*max) - static_cast<uint64_t>(*min);  // max - min, exact
    const uint64_t step = span / wanted + 1;
    const uint64_t ranges = span / step + 1;
    const std::string quoted = PgQuoteIdentifier(column);
    const std::string cast = time ? "::timestamptz" : "";
    auto param = [time](int64_t v) -> SqlParam { return time ? SqlParam(IsoText(v)) : SqlParam(v); };
    auto text = [time](int64_t v) { return time ? IsoText(v) : std::to_string(v); };
    for (int64_t lo = *min;;) {
      const bool last = static_cast<uint64_t>(*max) - static_cast<uint64_t>(lo) < step;
      const int64_t hi = last ? *max : static_cast<int64_t>(static_cast<uint64_t>(lo) + step);
      const std::string label = time ? fmt::format("{} [{}, {}{}", column, text(lo), text(hi), last ? "]" : ")")
                                     : fmt::format("{} {}-{}", column, lo, last ? hi : hi - 1);
      AddUnit(label, fmt::format("{0} >= ?{1} AND {0} {2} ?{1}", quoted, cast, last ? "<=" : "<"), {param(lo), param(hi)},
              rows / static_cast<int64_t>(ranges), bytes / ranges, false);
      if (last) break;
      lo = hi;
    }
    if (nulls) AddUnit(column + " null", quoted + " IS NULL", {}, 0, 0, false);
    return Status::OK();
  }

  // ---- by time, column, hash ------------------------------------------------------------------

  // Average bytes per row, for the estimates of counted units.
  Result<uint64_t> RowBytes() {
    ASSIGN_OR_RETURN(const std::optional<TableSize> table, PlainTableSize());
    if (!table || table->rows <= 0) return uint64_t{0};
    return table->bytes / static_cast<uint64_t>(table->rows);
  }

  Status CheckUnitCount(size_t n, std::string_view what) const {
    if (n <= kMaxUnits) return Status::OK();
    return Status::InvalidArgument(fmt::format("partition.column: '{}' in {} has more than {} {}; use partition.by hash",
                                               partition_.column, what_, kMaxUnits, what));
  }

  Status PlanTime() {
    ASSIGN_OR_RETURN(const Oid oid, ColumnType(partition_.column));
    if (!PgIsTimeType(oid)) {
      return Status::InvalidArgument(fmt::format(
          "partition.column: '{}' in {} is not a timestamp or date column, which partition.by time needs",
          partition_.column, what_));
    }
    static constexpr const char* kTrunc[] = {"hour", "day", "week", "month"};  // TimeWindow order
    const std::string col = "q." + PgQuoteIdentifier(partition_.column);
    ASSIGN_OR_RETURN(const PgResult res,
                     conn_->Exec(fmt::format("SELECT {}, count(*) FROM {} GROUP BY 1 ORDER BY 1 NULLS LAST",
                                             AsInt8(fmt::format("date_trunc('{}', {})", kTrunc[static_cast<int>(partition_.window)], col), true),
                                             rel_),
                                 what_));
    RETURN_IF_ERROR(CheckUnitCount(static_cast<size_t>(PQntuples(res.get())), "time windows"));
    ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes());
    // date_trunc's buckets are the windows of time_window.h; WindowStart keeps them exactly so.
    std::map<int64_t, int64_t> windows;
    int64_t null_rows = 0;
    for (int row = 0; row < PQntuples(res.get()); ++row) {
      const int64_t count = ParseInt(PQgetvalue(res.get(), row, 1)).value_or(0);
      if (PQgetisnull(res.get(), row, 0)) {
        null_rows += count;
      } else if (const std::optional<int64_t> start = ParseInt(PQgetvalue(res.get(), row, 0))) {
        windows[WindowStart(*start, partition_.window)] += count;
      }
    }
    const std::string quoted = PgQuoteIdentifier(partition_.column);
    for (const auto& [start, count] : windows) {
      std::string bucket;
      AppendTimeBucketText(start, partition_.window, &bucket);
      AddUnit(fmt::format("{} {} {}", partition_.column, TimeWindowName(partition_.window), bucket),
              fmt::format("{0} >= ?::timestamptz AND {0} < ?::timestamptz", quoted),
              {IsoText(start), IsoText(NextWindowStart(start, partition_.window))}, count,
              static_cast<uint64_t>(count) * row_bytes, true);
    }
    if (null_rows > 0) {
      AddUnit(partition_.column + " null", quoted + " IS NULL", {}, null_rows, static_cast<uint64_t>(null_rows) * row_bytes, true);
    }
    return Status::OK();
  }

  Status PlanColumn() {
    RETURN_IF_ERROR(ColumnType(partition_.column).status());
    const std::string col = "q." + PgQuoteIdentifier(partition_.column);
    ASSIGN_OR_RETURN(const PgResult res,
                     conn_->Exec(fmt::format("SELECT {0}::text, count(*) FROM {1} GROUP BY {0} ORDER BY {0} NULLS LAST",
                                             col, rel_),
                                 what_));
    RETURN_IF_ERROR(CheckUnitCount(static_cast<size_t>(PQntuples(res.get())), "distinct values"));
    ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes());
    const std::string quoted = PgQuoteIdentifier(partition_.column);
    for (int row = 0; row < PQntuples(res.get()); ++row) {
      const int64_t count = ParseInt(PQgetvalue(res.get(), row, 1)).value_or(0);
      const uint64_t bytes = static_cast<uint64_t>(count) * row_bytes;
      if (PQgetisnull(res.get(), row, 0)) {
        AddUnit(partition_.column + " null", quoted + " IS NULL", {}, count, bytes, true);
        continue;
      }
      std::string value(PQgetvalue(res.get(), row, 0), static_cast<size_t>(PQgetlength(res.get(), row, 0)));
      // The value goes back as a parameter of the column's own type: its text form reads back exactly.
      std::string label = fmt::format("{} = '{}'", partition_.column, MessageValue(value));
      AddUnit(std::move(label), quoted + " = ?", {std::move(value)}, count, bytes, true);
    }
    return Status::OK();
  }

  Status PlanHash() {
    RETURN_IF_ERROR(ColumnType(partition_.column).status());
    const int buckets = partition_.buckets;
    const std::string col = "q." + PgQuoteIdentifier(partition_.column);
    ASSIGN_OR_RETURN(const PgResult res,
                     conn_->ExecParams(fmt::format("SELECT {}, count(*) FROM {} GROUP BY 1",
                                                   PgNumberPlaceholders(fmt::format(kHashExpr, col)), rel_),
                                       {int64_t{buckets}}, what_));
    ASSIGN_OR_RETURN(const uint64_t row_bytes, RowBytes());
    std::vector<int64_t> counts(static_cast<size_t>(buckets), 0);
    for (int row = 0; row < PQntuples(res.get()); ++row) {
      const std::optional<int64_t> bucket = ParseInt(PQgetvalue(res.get(), row, 0));
      if (bucket && *bucket >= 0 && *bucket < buckets) {
        counts[static_cast<size_t>(*bucket)] = ParseInt(PQgetvalue(res.get(), row, 1)).value_or(0);
      }
    }
    const std::string filter = fmt::format(kHashExpr, PgQuoteIdentifier(partition_.column)) + " = ?";
    for (int bucket = 0; bucket < buckets; ++bucket) {
      const int64_t count = counts[static_cast<size_t>(bucket)];
      AddUnit(fmt::format("{} hash bucket {} of {}", partition_.column, bucket, buckets), filter,
              {int64_t{buckets}, int64_t{bucket}}, count, static_cast<uint64_t>(count) * row_bytes, true);
    }
    return Status::OK();
  }

  const InputSpec& input_;
  const PartitionSpec& partition_;
  PgConnection* conn_;
  const std::string what_;  // "input.table 't' in postgresql://…" for errors
  const std::string rel_;   // "<table or (query)> q"
  std::vector<std::pair<std::string, Oid>> columns_;
  Plan plan_;
};

}  // namespace

Result<Plan> PlanPostgresUnits(const InputSpec& input, const PartitionSpec& partition) {
  ASSIGN_OR_RETURN(const std::unique_ptr<PgConnection> conn, PgConnection::Connect(input.database, "input.path"));
  return PostgresPlanner(input, partition, conn.get()).Run();
}

}  // namespace sluice
