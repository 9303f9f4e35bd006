// PlanPostgresUnits against the test server: every row in exactly one unit,
// whatever partition.by, read back through the PostgreSQL source.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/strings.h"
#include "db/postgres_test_util.h"
#include "plan/planner.h"
#include "source/postgres_source.h"
#include "source/source_test_util.h"

namespace sluice {
namespace {

InputSpec Input(const std::string& url, const std::string& table, const std::string& query = "") {
  InputSpec in;
  in.database = url;
  in.format = InputFormat::kPostgres;
  in.table = table;
  in.query = query;
  return in;
}

PartitionSpec By(PartitionBy by, const std::string& column = "", uint64_t target_bytes = uint64_t{64} << 20) {
  PartitionSpec p;
  p.by = by;
  p.column = column;
  p.target_bytes = target_bytes;
  return p;
}

// The first column ("id") of every row of every unit, by unit; fails on read errors.
std::vector<std::vector<std::string>> ReadUnits(const InputSpec& in, const Plan& plan) {
  SourceOptions options;
  options.format = InputFormat::kPostgres;
  options.table = in.table;
  options.query = in.query;
  options.columns = {"id"};
  options.declared_types = {{"id", DataType::kString}};
  Result<Schema> schema = InferPostgresSchema(in.database, options);
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  std::vector<std::vector<std::string>> ids;
  for (const WorkUnit& unit : plan.units) {
    ReadOutput out = ReadAll([&](RejectSink* rejects) { return OpenPostgresSource(unit.range, *schema, options, rejects); });
    EXPECT_TRUE(out.status.ok()) << unit.range.label << ": " << out.status.ToString();
    ids.push_back(out.rows);
  }
  return ids;
}

// Every id in `expected` once across the units, and no other.
void ExpectEachRowOnce(const std::vector<std::vector<std::string>>& units, size_t expected_rows) {
  std::multiset<std::string> seen;
  for (const auto& unit : units) seen.insert(unit.begin(), unit.end());
  EXPECT_EQ(seen.size(), expected_rows);
  for (const std::string& id : seen) EXPECT_EQ(seen.count(id), 1u) << "id " << id;
}

TEST(PostgresPlanTest, SizeCutsThePrimaryKeyIntoRangesThatCoverEveryRowOnce) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  // Ids with gaps and negatives; about 10000 rows of ~100 bytes.
  pg->Sql(db, "CREATE TABLE t (id bigint PRIMARY KEY, pad text); INSERT INTO t SELECT g * 3 - 5000, repeat('p', 90) "
              "FROM generate_series(1, 10000) g");
  const InputSpec in = Input(pg->Url(db), "t");
  Result<Plan> plan = PlanPostgresUnits(in, By(PartitionBy::kSize, "", 128 << 10));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->format, InputFormat::kPostgres);
  EXPECT_TRUE(plan->files.empty());
  ASSERT_GE(plan->units.size(), 8u);
  ASSERT_LE(plan->units.size(), 12u);
  EXPECT_EQ(plan->units.front().id, "00000");
  EXPECT_EQ(plan->units.front().range.label.rfind("id -4997-", 0), 0u) << plan->units.front().range.label;
  EXPECT_EQ(plan->units.front().range.filter, "\"id\" >= ? AND \"id\" < ?");
  EXPECT_EQ(plan->units.back().range.filter, "\"id\" >= ? AND \"id\" <= ?");
  EXPECT_EQ(std::get<int64_t>(plan->units.back().range.params[1]), 25000);
  for (const WorkUnit& u : plan->units) EXPECT_EQ(u.range.path, in.database);
  ExpectEachRowOnce(ReadUnits(in, *plan), 10000);

  // The same table gives the same plan.
  Result<Plan> again = PlanPostgresUnits(in, By(PartitionBy::kSize, "", 128 << 10));
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->units.size(), plan->units.size());
  for (size_t i = 0; i < plan->units.size(); ++i) EXPECT_EQ(again->units[i].range.label, plan->units[i].range.label);

  // Small enough for one unit: no filter at all.
  Result<Plan> whole = PlanPostgresUnits(in, By(PartitionBy::kSize));
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(whole->units.size(), 1u);
  EXPECT_EQ(whole->units[0].range.filter, "");
  EXPECT_EQ(whole->units[0].range.label, "all rows");
}

TEST(PostgresPlanTest, SizeByATimestampColumnWithNullsAndAQuery) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t (id int, ts timestamp, pad text); INSERT INTO t SELECT g, CASE WHEN g % 97 = 0 THEN "
              "NULL ELSE timestamp '2024-01-01' + g * interval '7 minutes' END, repeat('p', 80) FROM generate_series(1, 8000) g");
  for (const InputSpec& in : {Input(pg->Url(db), "t"), Input(pg->Url(db), "", "SELECT id, ts, pad FROM t;")}) {
    SCOPED_TRACE(in.table.empty() ? "query" : "table");
    Result<Plan> plan = PlanPostgresUnits(in, By(PartitionBy::kSize, "ts", 100 << 10));
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    ASSERT_GE(plan->units.size(), 4u);
    EXPECT_EQ(plan->units.front().range.label.rfind("ts [2024-01-01T00:07:00Z, ", 0), 0u) << plan->units.front().range.label;
    EXPECT_EQ(plan->units.back().range.label, "ts null");
    EXPECT_EQ(plan->units.back().range.filter, "\"ts\" IS NULL");
    const auto ids = ReadUnits(in, *plan);
    EXPECT_EQ(ids.back().size(), 8000u / 97);
    ExpectEachRowOnce(ids, 8000);
  }
  // A table without an integer primary key and no partition.column is one unit.
  Result<Plan> plain = PlanPostgresUnits(Input(pg->Url(db), "t"), By(PartitionBy::kSize, "", 1024));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->units.size(), 1u);
}

TEST(PostgresPlanTest, TimeWindowsThatHoldRows) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  // Days 2024-01-30, 01-31, 02-02 (no rows on 02-01), one null; a date column too.
  pg->Sql(db, "CREATE TABLE t (id int, ts timestamptz, d date); INSERT INTO t VALUES "
              "(1, '2024-01-30 00:00:00+00', '2024-01-30'), (2, '2024-01-30 23:59:59.999999+00', '2024-01-30'), "
              "(3, '2024-01-31 12:00:00+00', '2024-01-31'), (4, '2024-02-02 01:00:00+05', '2024-02-02'), "
              "(5, NULL, NULL)");
  const InputSpec in = Input(pg->Url(db), "t");
  PartitionSpec by_day = By(PartitionBy::kTime, "ts");
  by_day.window = TimeWindow::kDay;
  Result<Plan> plan = PlanPostgresUnits(in, by_day);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::vector<std::string> labels;
  std::vector<int64_t> rows;
  for (const WorkUnit& u : plan->units) {
    labels.push_back(u.range.label);
    rows.push_back(u.est_rows);
    EXPECT_TRUE(u.rows_exact);
  }
  // 2024-02-02 01:00+05 is 2024-02-01 20:00 UTC.
  EXPECT_EQ(labels, (std::vector<std::string>{"ts day 2024-01-30", "ts day 2024-01-31", "ts day 2024-02-01", "ts null"}));
  EXPECT_EQ(rows, (std::vector<int64_t>{2, 1, 1, 1}));
  EXPECT_EQ(ReadUnits(in, *plan), (std::vector<std::vector<std::string>>{{"1", "2"}, {"3"}, {"4"}, {"5"}}));
  EXPECT_EQ(std::get<std::string>(plan->units[0].range.params[0]), "2024-01-30T00:00:00Z");

  by_day.column = "d";
  by_day.window = TimeWindow::kMonth;
  plan = PlanPostgresUnits(in, by_day);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->units.size(), 3u);
  EXPECT_EQ(plan->units[0].range.label, "d month 2024-01");
  EXPECT_EQ(ReadUnits(in, *plan), (std::vector<std::vector<std::string>>{{"1", "2", "3"}, {"4"}, {"5"}}));

  by_day.column = "id";
  Result<Plan> not_time = PlanPostgresUnits(in, by_day);
  ASSERT_FALSE(not_time.ok());
  EXPECT_EQ(not_time.status().message().rfind("partition.column: 'id' in input.table 't' in " + pg->Url(db), 0), 0u)
      << not_time.status().message();
}

TEST(PostgresPlanTest, OneUnitPerDistinctValue) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t (id int, merchant text, x double precision); INSERT INTO t VALUES "
              "(1, 'travel', 0.1), (2, 'o''brien; --', 0.1), (3, NULL, 1e-300), (4, 'travel', 0.30000000000000004), "
              "(5, 'food', 0.1)");
  const InputSpec in = Input(pg->Url(db), "t");
  Result<Plan> plan = PlanPostgresUnits(in, By(PartitionBy::kColumn, "merchant"));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::vector<std::string> labels;
  for (const WorkUnit& u : plan->units) labels.push_back(u.range.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"merchant = 'food'", "merchant = 'o'brien; --'", "merchant = 'travel'",
                                              "merchant null"}));
  EXPECT_EQ(ReadUnits(in, *plan), (std::vector<std::vector<std::string>>{{"5"}, {"2"}, {"1", "4"}, {"3"}}));

  // Floating-point values come back exactly through their text form.
  plan = PlanPostgresUnits(in, By(PartitionBy::kColumn, "x"));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(ReadUnits(in, *plan), (std::vector<std::vector<std::string>>{{"3"}, {"1", "2", "5"}, {"4"}}));
}

TEST(PostgresPlanTest, HashBucketsCoverEveryRowOnceAndAreStable) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t AS SELECT g AS id, CASE WHEN g % 50 = 0 THEN NULL ELSE 'k' || (g % 300) END AS k "
              "FROM generate_series(1, 3000) g");
  const InputSpec in = Input(pg->Url(db), "t");
  PartitionSpec by_hash = By(PartitionBy::kHash, "k");
  by_hash.buckets = 5;
  Result<Plan> plan = PlanPostgresUnits(in, by_hash);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->units.size(), 5u);
  int64_t counted = 0;
  for (const WorkUnit& u : plan->units) counted += u.est_rows;
  EXPECT_EQ(counted, 3000);
  EXPECT_EQ(plan->units[2].range.label, "k hash bucket 2 of 5");
  const auto ids = ReadUnits(in, *plan);
  ExpectEachRowOnce(ids, 3000);
  for (size_t b = 0; b < ids.size(); ++b) EXPECT_EQ(static_cast<int64_t>(ids[b].size()), plan->units[b].est_rows);
  // The bucket is the first 60 bits of the MD5 of the value's text, mod buckets (MD5 from OpenSSL here).
  for (int id : {1, 2, 299, 50}) {
    const std::string key = id % 50 == 0 ? "" : "k" + std::to_string(id % 300);  // null hashes as ''
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    ASSERT_EQ(EVP_Digest(key.data(), key.size(), md, &md_len, EVP_md5(), nullptr), 1);
    uint64_t first60 = 0;
    for (int i = 0; i < 8; ++i) first60 = (first60 << 8) | md[i];
    const size_t bucket = static_cast<size_t>((first60 >> 4) % 5);
    EXPECT_NE(std::find(ids[bucket].begin(), ids[bucket].end(), std::to_string(id)), ids[bucket].end())
        << "id " << id << " not in bucket " << bucket;
  }
}

TEST(PostgresPlanTest, ErrorsNameTheTableOrQueryAndHideThePassword) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t (id int, s text)");
  const std::string url = pg->Url(db, /*with_password=*/true);
  const std::string shown = RedactConnection(url);
  Result<Plan> missing = PlanPostgresUnits(Input(url, "public.t"), By(PartitionBy::kSize));  // one name, with a dot
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "input.table 'public.t' in " + shown + ": relation \"public.t\" does not exist");
  Result<Plan> failing = PlanPostgresUnits(Input(url, "", "SELECT 1/0 AS x"), By(PartitionBy::kColumn, "x"));
  ASSERT_FALSE(failing.ok());
  EXPECT_EQ(failing.status().message(), "input.query in " + shown + ": division by zero");
  Result<Plan> no_column = PlanPostgresUnits(Input(url, "t"), By(PartitionBy::kHash, "nope"));
  ASSERT_FALSE(no_column.ok());
  EXPECT_EQ(no_column.status().message(),
            "partition.column: no column 'nope' in input.table 't' in " + shown + " (columns: id, s)");
  Result<Plan> not_integer = PlanPostgresUnits(Input(url, "t"), By(PartitionBy::kSize, "s"));
  ASSERT_FALSE(not_integer.ok());
  EXPECT_NE(not_integer.status().message().find("is not an integer, timestamp or date column"), std::string::npos);
  const std::string dead = "postgresql://sluice:" + pg->password() + "@127.0.0.1:1/x";
  Result<Plan> unreachable = PlanPostgresUnits(Input(dead, "t"), By(PartitionBy::kSize));
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.status().code(), StatusCode::kUnavailable);
  for (const Status& st : {missing.status(), failing.status(), unreachable.status()}) {
    EXPECT_EQ(st.message().find(pg->password()), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace sluice
