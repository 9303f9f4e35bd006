// SQLite units: every row of the input in exactly one unit (read back through
// the SQLite source), for rowid ranges with gaps, column ranges of queries and
// WITHOUT ROWID tables, time windows, distinct values and hash buckets; labels,
// estimates and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "batch/value_parse.h"
#include "db/sqlite_test_util.h"
#include "plan/planner.h"
#include "sink/partition_layout.h"
#include "source/source_test_util.h"
#include "source/sqlite_source.h"

namespace sluice {
namespace {

InputSpec TableInput(const std::string& db, const std::string& table) {
  InputSpec input;
  input.database = db;
  input.table = table;
  input.format = InputFormat::kSqlite;
  return input;
}

InputSpec QueryInput(const std::string& db, const std::string& query) {
  InputSpec input = TableInput(db, "");
  input.query = query;
  return input;
}

PartitionSpec By(PartitionBy by, const std::string& column = "", uint64_t target_bytes = uint64_t{64} << 20) {
  PartitionSpec partition;
  partition.by = by;
  partition.column = column;
  partition.target_bytes = target_bytes;
  return partition;
}

// Reads every unit of `plan` with the SQLite source; the first column of each
// row as text, per unit.
std::vector<std::vector<std::string>> ReadUnits(const InputSpec& input, const Plan& plan) {
  SourceOptions options;
  options.format = InputFormat::kSqlite;
  options.table = input.table;
  options.query = input.query;
  options.declared_types = input.schema;
  Result<Schema> schema = InferSqliteSchema(input.database, options);
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  std::vector<std::vector<std::string>> units;
  for (const WorkUnit& unit : plan.units) {
    const ReadOutput out =
        ReadAll([&](RejectSink* rejects) { return OpenSqliteSource(unit.range, *schema, options, rejects); });
    EXPECT_TRUE(out.status.ok()) << out.status.ToString();
    std::vector<std::string> firsts;
    for (const std::string& row : out.rows) firsts.push_back(row.substr(0, row.find('|')));
    for (const Reject& r : out.rejects) firsts.push_back("rejected:" + r.column);
    units.push_back(std::move(firsts));
  }
  return units;
}

// Every id of `all` exactly once over the units, and (unless `empty_ok`) no unit empty.
void ExpectEachRowOnce(const std::vector<std::vector<std::string>>& units, std::vector<std::string> all,
                       bool empty_ok = false) {
  std::vector<std::string> got;
  for (size_t i = 0; i < units.size(); ++i) {
    const auto& unit = units[i];
    EXPECT_TRUE(empty_ok || !unit.empty()) << "unit " << i;
    got.insert(got.end(), unit.begin(), unit.end());
  }
  std::sort(got.begin(), got.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(got, all);
}

TEST(SqlitePlanTest, RowidRangesCoverEveryRowOnceAcrossGaps) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE t (id INTEGER, pad TEXT);"
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
          "INSERT INTO t(rowid, id, pad) SELECT i, i, printf('%.200c', 'x') FROM n;"
          "DELETE FROM t WHERE rowid BETWEEN 500 AND 1700;"
          "INSERT INTO t(rowid, id, pad) VALUES (1000000, 1000000, 'far'), (-5, -5, 'negative');");
  const InputSpec input = TableInput(db, "t");
  Result<Plan> plan = PlanSqliteUnits(input, By(PartitionBy::kSize, "", 64 << 10));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->format, InputFormat::kSqlite);
  EXPECT_TRUE(plan->files.empty());
  ASSERT_GT(plan->units.size(), 3u);
  int64_t est = 0;
  for (size_t i = 0; i < plan->units.size(); ++i) {
    const WorkUnit& u = plan->units[i];
    EXPECT_EQ(u.id, UnitId(static_cast<int>(i)));
    EXPECT_EQ(u.range.path, db);
    EXPECT_EQ(u.range.filter, "rowid >= ? AND rowid <= ?");
    ASSERT_EQ(u.range.params.size(), 2u);
    const int64_t first = std::get<int64_t>(u.range.params[0]);
    const int64_t last = std::get<int64_t>(u.range.params[1]);
    EXPECT_EQ(u.range.label, "rowid " + std::to_string(first) + "-" + std::to_string(last));
    if (i > 0) {
      EXPECT_EQ(std::get<int64_t>(plan->units[i - 1].range.params[1]) + 1, first);
    }
    EXPECT_GT(u.est_bytes, 0u);
    est += u.est_rows;
  }
  EXPECT_EQ(std::get<int64_t>(plan->units.front().range.params[0]), -5);
  EXPECT_EQ(std::get<int64_t>(plan->units.back().range.params[1]), 1000000);
  EXPECT_EQ(est, 1801);
  for (const WorkUnit& u : plan->units) {
    EXPECT_TRUE(u.rows_exact);
    if (&u != &plan->units.back()) {
      EXPECT_EQ(u.est_rows, plan->units.front().est_rows);
    }
  }
  ExpectEachRowOnce(ReadUnits(input, *plan), QuerySql(db, "SELECT id FROM t"));

  // The same rows give the same plan.
  Result<Plan> again = PlanSqliteUnits(input, By(PartitionBy::kSize, "", 64 << 10));
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->units.size(), plan->units.size());
  for (size_t i = 0; i < plan->units.size(); ++i) EXPECT_EQ(again->units[i].range.label, plan->units[i].range.label);

  // Big units: one, counted.
  Result<Plan> one = PlanSqliteUnits(input, By(PartitionBy::kSize));
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->units.size(), 1u);
  EXPECT_EQ(one->units[0].est_rows, 1801);
  EXPECT_TRUE(one->units[0].rows_exact);
}

TEST(SqlitePlanTest, FilesModeAndEmptyTablesAreOneUnit) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db, "CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1), (2), (3); CREATE TABLE e (id INTEGER);");
  for (const auto& [table, by] : {std::pair{"t", PartitionBy::kFiles}, std::pair{"e", PartitionBy::kSize}}) {
    Result<Plan> plan = PlanSqliteUnits(TableInput(db, table), By(by, "", 1));
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    ASSERT_EQ(plan->units.size(), 1u);
    EXPECT_EQ(plan->units[0].range.filter, "");
    EXPECT_EQ(plan->units[0].est_rows, std::string(table) == "t" ? 3 : 0);
    EXPECT_TRUE(plan->units[0].rows_exact);
  }
}

TEST(SqlitePlanTest, QueriesAndWithoutRowidTablesUseColumnRanges) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE k (id INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID;"
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
          "INSERT INTO k SELECT i * 3, printf('%.100c', 'v') FROM n;"
          "CREATE TABLE q (id INTEGER, grp);"
          "INSERT INTO q SELECT id, id % 7 FROM k;"
          "INSERT INTO q VALUES (90001, NULL), (90002, 'text'), (90003, 2.5);");
  // WITHOUT ROWID: one unit, or ranges of partition.column.
  Result<Plan> one = PlanSqliteUnits(TableInput(db, "k"), By(PartitionBy::kSize, "", 16 << 10));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->units.size(), 1u);
  const InputSpec keyed = TableInput(db, "k");
  Result<Plan> ranges = PlanSqliteUnits(keyed, By(PartitionBy::kSize, "id", 16 << 10));
  ASSERT_TRUE(ranges.ok()) << ranges.status().ToString();
  ASSERT_GT(ranges->units.size(), 3u);
  EXPECT_EQ(ranges->units.front().range.filter, "\"id\" < ?");
  EXPECT_EQ(ranges->units[1].range.filter, "\"id\" >= ? AND \"id\" < ?");
  EXPECT_EQ(ranges->units.back().range.filter, "\"id\" >= ?");
  ExpectEachRowOnce(ReadUnits(keyed, *ranges), QuerySql(db, "SELECT id FROM k"));

  // A query: its grp column holds integers, a NULL, text and a REAL (rejected, but read once).
  const InputSpec query = QueryInput(db, "SELECT grp, id FROM q");
  Result<Plan> by_query = PlanSqliteUnits(query, By(PartitionBy::kSize, "grp", 1 << 10));
  ASSERT_TRUE(by_query.ok()) << by_query.status().ToString();
  EXPECT_EQ(by_query->units.front().range.filter, "\"grp\" IS NULL");
  EXPECT_EQ(by_query->units.front().range.label, "grp is null");
  EXPECT_EQ(by_query->units.front().est_rows, 1);
  const std::vector<std::vector<std::string>> units = ReadUnits(query, *by_query);
  std::vector<std::string> all = QuerySql(db, "SELECT grp FROM q WHERE typeof(grp) = 'integer'");
  all.push_back("<null>");
  all.push_back("rejected:grp");  // 'text' and 2.5 are no int64: rejected, each in one unit
  all.push_back("rejected:grp");
  std::vector<std::string> got;
  for (const auto& unit : units) got.insert(got.end(), unit.begin(), unit.end());
  std::sort(got.begin(), got.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(got, all);
  // Without a column a query is one unit.
  Result<Plan> whole = PlanSqliteUnits(query, By(PartitionBy::kSize, "", 1));
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->units.size(), 1u);
  EXPECT_EQ(whole->units[0].est_rows, 2003);
}

TEST(SqlitePlanTest, TimestampRangesAndWindowsUseTheColumnsOwnFormat) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  std::string sql = "CREATE TABLE t (id INTEGER, ts TIMESTAMP); INSERT INTO t VALUES ";
  // 60 hours from 2024-01-30 00:00, every 20 minutes, with SQLite's own ' ' separator; two days without rows.
  int id = 0;
  for (int minute = 0; minute < 60 * 60; minute += 20) {
    const int day = 30 + minute / (24 * 60);
    if (day == 31) continue;
    char ts[32];
    std::snprintf(ts, sizeof ts, "2024-%02d-%02d %02d:%02d:00", day > 31 ? 2 : 1, day > 31 ? day - 31 : day,
                  minute / 60 % 24, minute % 60);
    sql += (id > 0 ? ",(" : "(") + std::to_string(id) + ",'" + ts + "')";
    ++id;
  }
  sql += ",(1000, NULL), (1001, NULL), (1002, 'whenever');";
  ExecSql(db, sql);
  const InputSpec input = TableInput(db, "t");

  PartitionSpec hourly = By(PartitionBy::kTime, "ts");
  hourly.window = TimeWindow::kHour;
  Result<Plan> hours = PlanSqliteUnits(input, hourly);
  ASSERT_TRUE(hours.ok()) << hours.status().ToString();
  EXPECT_EQ(hours->units.size(), 1u + 36u);  // nulls, then the 36 hours that hold rows
  EXPECT_EQ(hours->units[0].range.label, "ts is null");
  EXPECT_EQ(hours->units[1].range.label, "ts < 2024-01-30 01");
  EXPECT_EQ(hours->units[2].range.label, "ts in [2024-01-30 01, 2024-01-30 02)");
  EXPECT_EQ(hours->units[24].range.label, "ts in [2024-01-30 23, 2024-02-01)");
  EXPECT_EQ(hours->units.back().range.label, "ts >= 2024-02-01 11");
  EXPECT_EQ(hours->units[2].est_rows, 3);
  ExpectEachRowOnce(ReadUnits(input, *hours), [&] {
    std::vector<std::string> all = QuerySql(db, "SELECT id FROM t WHERE id <> 1002");
    all.push_back("rejected:ts");  // 'whenever' sorts after every date: the last unit rejects it
    return all;
  }());

  PartitionSpec daily = By(PartitionBy::kTime, "ts");
  Result<Plan> days = PlanSqliteUnits(input, daily);
  ASSERT_TRUE(days.ok());
  ASSERT_EQ(days->units.size(), 3u);
  EXPECT_EQ(days->units[1].range.filter, "\"ts\" < ?");
  EXPECT_EQ(days->units[1].range.params, std::vector<SqlParam>{std::string("2024-02-01")});
  EXPECT_EQ(days->units[1].est_rows, 72);

  // partition.by size on a query cuts even ranges of the timestamps (Jan 31's are empty).
  const InputSpec query = QueryInput(db, "SELECT * FROM t");
  Result<Plan> ranges = PlanSqliteUnits(query, By(PartitionBy::kSize, "ts", 512));
  ASSERT_TRUE(ranges.ok()) << ranges.status().ToString();
  EXPECT_GT(ranges->units.size(), 3u);
  EXPECT_EQ(ranges->units[1].range.label.rfind("ts < 2024-01-30 ", 0), 0u) << ranges->units[1].range.label;
  ExpectEachRowOnce(
      ReadUnits(query, *ranges),
      [&] {
        std::vector<std::string> all = QuerySql(db, "SELECT id FROM t WHERE id <> 1002");
        all.push_back("rejected:ts");
        return all;
      }(),
      /*empty_ok=*/true);
}

TEST(SqlitePlanTest, DistinctValuesAreUnits) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE t (id INTEGER, seg);"
          "INSERT INTO t VALUES (1, 'travel'), (2, 'grocery'), (3, 'travel'), (4, NULL), (5, 7), (6, 'o''brien'),"
          " (7, 7.0), (8, '7');");
  const InputSpec input = TableInput(db, "t");
  Result<Plan> plan = PlanSqliteUnits(input, By(PartitionBy::kColumn, "seg"));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::vector<std::string> labels;
  std::vector<int64_t> rows;
  for (const WorkUnit& u : plan->units) {
    labels.push_back(u.range.label);
    rows.push_back(u.est_rows);
    EXPECT_TRUE(u.rows_exact);
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"seg is null", "seg = 7", "seg = 7", "seg = grocery", "seg = o'brien",
                                              "seg = travel"}));
  EXPECT_EQ(rows, (std::vector<int64_t>{1, 2, 1, 1, 1, 2}));
  ExpectEachRowOnce(ReadUnits(input, *plan), QuerySql(db, "SELECT id FROM t"));
}

TEST(SqlitePlanTest, HashBucketsMatchTheOutputLayout) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE t (id INTEGER, name TEXT);"
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) "
          "INSERT INTO t SELECT i, 'n' || i FROM n; INSERT INTO t VALUES (NULL, NULL);");
  const InputSpec input = TableInput(db, "t");
  PartitionSpec partition = By(PartitionBy::kHash, "id");
  partition.buckets = 8;
  Result<Plan> plan = PlanSqliteUnits(input, partition);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->units.size(), 8u);
  const std::vector<std::vector<std::string>> units = ReadUnits(input, *plan);
  int64_t counted = 0;
  for (size_t i = 0; i < units.size(); ++i) {
    const WorkUnit& u = plan->units[i];
    EXPECT_EQ(u.range.filter, "sluice_bucket(\"id\", ?, ?) = ?");
    const int64_t bucket = std::get<int64_t>(u.range.params[2]);
    EXPECT_EQ(u.range.label, "id bucket " + std::to_string(bucket) + " of 8");
    EXPECT_EQ(u.est_rows, static_cast<int64_t>(units[i].size()));
    counted += u.est_rows;
    for (const std::string& id : units[i]) {
      Column column(DataType::kInt64);
      if (id == "<null>") {
        column.AppendNull();
      } else {
        column.AppendInt64(std::stoll(id));
      }
      EXPECT_EQ(HashBucket(column, 0, 8), static_cast<uint64_t>(bucket)) << id;
    }
  }
  EXPECT_EQ(counted, 501);
  ExpectEachRowOnce(units, QuerySql(db, "SELECT id FROM t"));
}

TEST(SqlitePlanTest, ErrorsNameTheInput) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db, "CREATE TABLE t (id INTEGER, name TEXT); INSERT INTO t VALUES (1, 'a');");
  Status st = PlanSqliteUnits(TableInput(db, "missing"), By(PartitionBy::kSize)).status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "input.table 'missing': SQLite database '" + db + "': no such table: missing");
  st = PlanSqliteUnits(QueryInput(db, "SELECT nope FROM t"), By(PartitionBy::kSize)).status();
  EXPECT_EQ(st.message(), "input.query: SQLite database '" + db + "': no such column: nope");
  // A query that fails only when it runs.
  st = PlanSqliteUnits(QueryInput(db, "SELECT abs(-9223372036854775807 - 1) AS x FROM t"), By(PartitionBy::kFiles))
           .status();
  EXPECT_EQ(st.message(), "input.query: SQLite database '" + db + "': integer overflow");
  st = PlanSqliteUnits(TableInput(db, "t"), By(PartitionBy::kColumn, "segment")).status();
  EXPECT_EQ(st.message(), "partition.column: no column 'segment' in '" + db + " table t' (columns: id, name)");
  st = PlanSqliteUnits(TableInput(db, "t"), By(PartitionBy::kTime, "name")).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'name' in '" + db + " table t' is string; partition.by time needs a timestamp column"),
            std::string::npos)
      << st.message();
  st = PlanSqliteUnits(QueryInput(db, "SELECT * FROM t"), By(PartitionBy::kSize, "name")).status();
  EXPECT_NE(st.message().find("int64 or timestamp"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace sluice
