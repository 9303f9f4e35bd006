// PlanParquetUnits on files written by DuckDB: row groups grouped toward
// target_bytes, one unit per file, time windows that skip row groups by their
// statistics, distinct values and hash buckets with exact counts, hive
// directories, schema drift and bad files. Units are read back through the
// Parquet source: every row lands in exactly one unit.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "plan/planner.h"
#include "sink/partition_layout.h"
#include "source/parquet_test_util.h"
#include "source/source_test_util.h"

namespace sluice {
namespace {

constexpr int64_t kMicrosPerMinute = 60 * 1'000'000LL;
constexpr int64_t kJan1Micros = 19'723LL * 86'400 * 1'000'000;  // 2024-01-01T00:00:00Z

InputSpec ParquetInput(const std::string& path) {
  InputSpec input;
  input.path = path;
  return input;
}

PartitionSpec By(PartitionBy by, const std::string& column = "") {
  PartitionSpec partition;
  partition.by = by;
  partition.column = column;
  return partition;
}

Plan MustPlan(const InputSpec& input, const PartitionSpec& partition) {
  Result<Plan> plan = PlanUnits(Env::Default(), input, partition);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return plan.ok() ? *std::move(plan) : Plan{};
}

std::vector<std::string> Labels(const Plan& plan) {
  std::vector<std::string> labels;
  for (const WorkUnit& u : plan.units) labels.push_back(u.range.label);
  return labels;
}

// The compressed bytes of each row group of `path`, as DuckDB's footer says.
std::vector<uint64_t> GroupBytes(const std::string& path) {
  std::vector<uint64_t> bytes;
  auto db = DuckDb::Open();
  EXPECT_TRUE(db.ok());
  auto stmt = (*db)->Prepare("SELECT sum(total_compressed_size)::BIGINT FROM parquet_metadata(?) GROUP BY row_group_id ORDER BY row_group_id");
  EXPECT_TRUE(stmt.ok());
  EXPECT_TRUE(stmt->Bind(0, path).ok());
  auto result = stmt->Query();
  EXPECT_TRUE(result.ok());
  while (true) {
    auto chunk = result->Next();
    if (!chunk.ok() || !*chunk) break;
    for (size_t row = 0; row < chunk->size(); ++row) bytes.push_back(static_cast<uint64_t>(chunk->Int64At(0, row)));
  }
  return bytes;
}

// The rows of each unit as read by the Parquet source (columns `columns`).
std::vector<ReadOutput> ReadUnits(const Plan& plan, const std::vector<std::string>& columns,
                                  const std::map<std::string, DataType>& declared = {}) {
  std::vector<ReadOutput> outs;
  for (const WorkUnit& unit : plan.units) {
    SourceOptions options;
    options.format = InputFormat::kParquet;
    options.declared_types = declared;
    Result<Schema> schema = InferSchema(Env::Default(), unit.range.path, options);
    EXPECT_TRUE(schema.ok()) << schema.status().ToString();
    options.columns = columns;
    outs.push_back(ReadAll([&](RejectSink* r) { return OpenSource(Env::Default(), unit.range, *schema, options, r); }));
    EXPECT_TRUE(outs.back().status.ok()) << outs.back().status.ToString();
  }
  return outs;
}

// Every id of [0, rows) is read by exactly one unit.
void ExpectEachRowOnce(const std::vector<ReadOutput>& outs, int64_t rows, const std::string& file = "") {
  std::vector<int> seen(static_cast<size_t>(rows), 0);
  for (const ReadOutput& out : outs) {
    for (const std::string& row : out.rows) {
      const int64_t id = std::stoll(row.substr(0, row.find('|')));
      ASSERT_GE(id, 0);
      ASSERT_LT(id, rows);
      ++seen[static_cast<size_t>(id)];
    }
  }
  for (int64_t id = 0; id < rows; ++id) ASSERT_EQ(seen[static_cast<size_t>(id)], 1) << file << " id " << id;
}

class ParquetPlanTest : public ::testing::Test {
 protected:
  ParquetTempDir dir_;
};

TEST_F(ParquetPlanTest, RunsOfRowGroupsTowardTargetBytes) {
  const std::string a = dir_.Path("in/a.parquet");
  const std::string b = dir_.Path("in/b.parquet");
  WriteParquet(a, "SELECT i AS id, i * 0.5 AS x FROM range(10000) t(i)", 2048);  // 5 row groups, the last 1808 rows
  WriteParquet(b, "SELECT i AS id, i * 0.5 AS x FROM range(100) t(i)");
  const std::vector<uint64_t> bytes = GroupBytes(a);
  ASSERT_EQ(bytes.size(), 5u);

  PartitionSpec one_group = By(PartitionBy::kSize);
  one_group.target_bytes = 1;
  Plan plan = MustPlan(ParquetInput(dir_.Path("in")), one_group);
  EXPECT_EQ(plan.format, InputFormat::kParquet);
  ASSERT_EQ(plan.files.size(), 2u);
  EXPECT_EQ(plan.files[0].path, a);
  EXPECT_EQ(plan.files[0].size, std::filesystem::file_size(a));
  EXPECT_EQ(Labels(plan), (std::vector<std::string>{"rows 0-2047", "rows 2048-4095", "rows 4096-6143",
                                                    "rows 6144-8191", "rows 8192-9999", "rows 0-99"}));
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(plan.units[i].range.begin, 2048 * i);
    EXPECT_EQ(plan.units[i].est_bytes, bytes[i]);
    EXPECT_TRUE(plan.units[i].rows_exact);
    EXPECT_TRUE(plan.units[i].range.filter.empty());
    EXPECT_EQ(plan.units[i].id, UnitId(static_cast<int>(i)));
  }
  EXPECT_EQ(plan.units[4].est_rows, 1808);

  // A unit ends once it holds target_bytes: two groups each, then the rest.
  PartitionSpec two_groups = By(PartitionBy::kSize);
  two_groups.target_bytes = std::max(bytes[0] + bytes[1], bytes[2] + bytes[3]) - std::min(bytes[1], bytes[3]) + 1;
  plan = MustPlan(ParquetInput(dir_.Path("in")), two_groups);
  EXPECT_EQ(Labels(plan), (std::vector<std::string>{"rows 0-4095", "rows 4096-8191", "rows 8192-9999", "rows 0-99"}));
  EXPECT_EQ(plan.units[0].est_bytes, bytes[0] + bytes[1]);
  std::vector<ReadOutput> outs = ReadUnits(plan, {"id"});
  outs.pop_back();  // b.parquet
  ExpectEachRowOnce(outs, 10000);

  plan = MustPlan(ParquetInput(dir_.Path("in")), By(PartitionBy::kFiles));
  EXPECT_EQ(Labels(plan), (std::vector<std::string>{"rows 0-9999", "rows 0-99"}));
  EXPECT_EQ(plan.units[0].est_rows, 10000);
}

TEST_F(ParquetPlanTest, PlannerDatabaseGoesToThePoolForTheSources) {
  const std::string path = dir_.Path("pooled.parquet");
  WriteParquet(path, "SELECT i AS id, i % 7 AS k FROM range(5000) t(i)", 2048);
  SourceOptions options;
  options.format = InputFormat::kParquet;
  options.duckdb_pool = std::make_shared<DuckDbPool>();
  // Column planning runs an aggregate query in the same database as the footers.
  Result<Plan> plan = PlanUnits(Env::Default(), ParquetInput(path), By(PartitionBy::kColumn, "k"), options.duckdb_pool.get());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->units.size(), 7u);
  EXPECT_EQ(options.duckdb_pool->idle(), 1u);
  // Schema inference and a Source take that database again rather than a new one.
  Result<Schema> schema = InferSchema(Env::Default(), path, options);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(options.duckdb_pool->idle(), 1u);
  CollectRejects rejects;
  {
    auto source = OpenSource(Env::Default(), plan->units[0].range, *schema, options, &rejects);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    EXPECT_EQ(options.duckdb_pool->idle(), 0u);
  }
  EXPECT_EQ(options.duckdb_pool->idle(), 1u);
}

TEST_F(ParquetPlanTest, TimeWindowsSkipRowGroupsByStatistics) {
  // One row a minute from 2024-01-01: 2048-row groups span about 1.4 days;
  // the last group's odd rows have no time.
  const std::string path = dir_.Path("t.parquet");
  WriteParquet(path,
               "SELECT i AS id, CASE WHEN i >= 8192 AND i % 2 = 1 THEN NULL"
               " ELSE TIMESTAMP '2024-01-01' + to_minutes(i) END AS ts FROM range(10000) t(i)",
               2048);
  PartitionSpec partition = By(PartitionBy::kTime, "ts");
  partition.window = TimeWindow::kDay;
  const Plan plan = MustPlan(ParquetInput(path), partition);
  // Day d holds rows [1440 d, 1440 (d + 1)): the row groups [2048 k, 2048 (k + 1)) that overlap them.
  EXPECT_EQ(Labels(plan), (std::vector<std::string>{
                              "rows 0-2047, ts in [2024-01-01, 2024-01-02)",
                              "rows 0-4095, ts in [2024-01-02, 2024-01-03)",
                              "rows 2048-6143, ts in [2024-01-03, 2024-01-04)",
                              "rows 4096-6143, ts in [2024-01-04, 2024-01-05)",
                              "rows 4096-8191, ts in [2024-01-05, 2024-01-06)",
                              "rows 6144-9999, ts in [2024-01-06, 2024-01-07)",
                              "rows 8192-9999, ts in [2024-01-07, 2024-01-08)",
                              "rows 8192-9999, ts is null"}));
  // Estimates: a group's rows spread evenly over its time range; nulls from the footer.
  EXPECT_NEAR(plan.units[0].est_rows, 1440, 1);
  EXPECT_NEAR(plan.units[6].est_rows, 680, 1);  // rows 8640-9999, half of them null
  EXPECT_EQ(plan.units[7].est_rows, 904);
  EXPECT_FALSE(plan.units[0].rows_exact);
  const std::vector<ReadOutput> outs = ReadUnits(plan, {"id", "ts"});
  ExpectEachRowOnce(outs, 10000);
  for (size_t u = 0; u + 1 < outs.size(); ++u) {
    const int64_t start = kJan1Micros + static_cast<int64_t>(u) * 1440 * kMicrosPerMinute;
    for (const std::string& row : outs[u].rows) {
      const int64_t ts = std::stoll(row.substr(row.find('|') + 1));
      ASSERT_GE(ts, start);
      ASSERT_LT(ts, start + 1440 * kMicrosPerMinute);
    }
  }
  EXPECT_EQ(outs.back().rows.size(), 904u);

  // Hourly windows of a file whose times fall in two hours, far apart: two units.
  const std::string two = dir_.Path("two.parquet");
  WriteParquet(two,
               "SELECT i AS id, TIMESTAMP '2024-03-01 10:00' + to_hours(CASE WHEN i < 2048 THEN 0 ELSE 500 END)"
               " + to_seconds(i % 60) AS ts FROM range(4096) t(i)",
               2048);
  partition.window = TimeWindow::kHour;
  const Plan hours = MustPlan(ParquetInput(two), partition);
  EXPECT_EQ(Labels(hours), (std::vector<std::string>{"rows 0-2047, ts in [2024-03-01T10, 2024-03-01T11)",
                                                     "rows 2048-4095, ts in [2024-03-22T06, 2024-03-22T07)"}));
}

TEST_F(ParquetPlanTest, DistinctValuesWithExactCountsAndTheirRowGroups) {
  const std::string path = dir_.Path("v.parquet");
  WriteParquet(path,
               "SELECT i AS id, CASE WHEN i >= 8192 THEN 'late' WHEN i % 10 = 0 THEN NULL"
               " WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END AS kind, i % 3 = 0 AS third FROM range(10000) t(i)",
               2048);
  const Plan plan = MustPlan(ParquetInput(path), By(PartitionBy::kColumn, "kind"));
  EXPECT_EQ(Labels(plan), (std::vector<std::string>{"rows 0-8191, kind = 'even'", "rows 8192-9999, kind = 'late'",
                                                    "rows 0-8191, kind = 'odd'", "rows 0-8191, kind is null"}));
  EXPECT_EQ(plan.units[0].est_rows, 3276);  // even, not a multiple of 10, below 8192
  EXPECT_EQ(plan.units[1].est_rows, 1808);
  EXPECT_EQ(plan.units[3].est_rows, 820);
  EXPECT_TRUE(plan.units[0].rows_exact);
  const std::vector<ReadOutput> outs = ReadUnits(plan, {"id", "kind"});
  ExpectEachRowOnce(outs, 10000);
  for (size_t u = 0; u < outs.size(); ++u) EXPECT_EQ(static_cast<int64_t>(outs[u].rows.size()), plan.units[u].est_rows);

  const Plan flags = MustPlan(ParquetInput(path), By(PartitionBy::kColumn, "third"));
  EXPECT_EQ(Labels(flags), (std::vector<std::string>{"rows 0-9999, third = false", "rows 0-9999, third = true"}));
  ExpectEachRowOnce(ReadUnits(flags, {"id"}), 10000);
}

TEST_F(ParquetPlanTest, HashBucketsMatchTheOutputLayoutHash) {
  const std::string path = dir_.Path("h.parquet");
  WriteParquet(path, "SELECT i AS id, 'user-' || (i % 97) AS user FROM range(5000) t(i)", 2048);
  PartitionSpec partition = By(PartitionBy::kHash, "user");
  partition.buckets = 4;
  const Plan plan = MustPlan(ParquetInput(path), partition);
  ASSERT_EQ(plan.units.size(), 4u);
  EXPECT_EQ(plan.units[2].range.label, "rows 0-4999, user bucket 2 of 4");
  const std::vector<ReadOutput> outs = ReadUnits(plan, {"id", "user"});
  ExpectEachRowOnce(outs, 5000);
  for (size_t u = 0; u < outs.size(); ++u) {
    EXPECT_EQ(static_cast<int64_t>(outs[u].rows.size()), plan.units[u].est_rows);
    Column users(DataType::kString);
    for (const std::string& row : outs[u].rows) users.AppendString(row.substr(row.find('|') + 1));
    for (size_t r = 0; r < users.size(); ++r) ASSERT_EQ(HashBucket(users, r, 4), u) << outs[u].rows[r];
  }
}

TEST_F(ParquetPlanTest, HiveDirectoriesFoundRecursively) {
  const std::string root = dir_.Path("data");
  WriteParquet(root + "/date=2024-01-02/region=eu/part-0.parquet", "SELECT i AS id FROM range(10) t(i)");
  WriteParquet(root + "/date=2024-01-01/region=us/part-0.parquet", "SELECT i + 10 AS id FROM range(5) t(i)");
  WriteParquet(root + "/date=2024-01-01/region=eu/part-0.parquet", "SELECT i + 15 AS id FROM range(7) t(i)");
  std::ofstream(root + "/_SUCCESS") << "";
  std::ofstream(root + "/date=2024-01-01/.part-1.parquet.crc") << "x";
  std::filesystem::create_directories(root + "/_sluice/units");
  std::ofstream(root + "/_sluice/units/00000.json") << "{}";

  Result<std::vector<std::string>> files = ListParquetInput(Env::Default(), root);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(*files, (std::vector<std::string>{root + "/date=2024-01-01/region=eu/part-0.parquet",
                                              root + "/date=2024-01-01/region=us/part-0.parquet",
                                              root + "/date=2024-01-02/region=eu/part-0.parquet"}));
  // No input.format: the directory's files say Parquet.
  Plan plan = MustPlan(ParquetInput(root), By(PartitionBy::kSize));
  EXPECT_EQ(plan.format, InputFormat::kParquet);
  ASSERT_EQ(plan.units.size(), 3u);
  EXPECT_EQ(plan.units[1].range.hive,
            (std::vector<std::pair<std::string, std::string>>{{"date", "2024-01-01"}, {"region", "us"}}));

  // A hive column as the time or value partition: each file is one unit, no filter.
  InputSpec input = ParquetInput(root);
  input.schema = {{"date", DataType::kDate}};
  PartitionSpec by_week = By(PartitionBy::kTime, "date");
  by_week.window = TimeWindow::kWeek;
  plan = MustPlan(input, by_week);
  EXPECT_EQ(Labels(plan), (std::vector<std::string>{"rows 0-6, date in [2024-01-01, 2024-01-08)",
                                                    "rows 0-4, date in [2024-01-01, 2024-01-08)",
                                                    "rows 0-9, date in [2024-01-01, 2024-01-08)"}));
  EXPECT_TRUE(plan.units[0].range.filter.empty());
  plan = MustPlan(input, By(PartitionBy::kColumn, "region"));
  EXPECT_EQ(Labels(plan), (std::vector<std::string>{"rows 0-6, region = 'eu'", "rows 0-4, region = 'us'",
                                                    "rows 0-9, region = 'eu'"}));
  const std::vector<ReadOutput> outs = ReadUnits(plan, {"id", "region", "date"}, input.schema);
  ExpectEachRowOnce(outs, 22);
  EXPECT_EQ(outs[1].rows.front(), "10|us|" + std::to_string(kJan1Micros));
}

TEST_F(ParquetPlanTest, SchemaDriftBetweenFilesNamesBothFiles) {
  const std::string a = dir_.Path("drift/a.parquet");
  const std::string b = dir_.Path("drift/b.parquet");
  WriteParquet(a, "SELECT 1 AS id, 2.5 AS x");
  WriteParquet(b, "SELECT 1::INTEGER AS id, 'text' AS x");
  Result<Plan> plan = PlanUnits(Env::Default(), ParquetInput(dir_.Path("drift")), By(PartitionBy::kSize));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(plan.status().message(), "input: the files' schemas differ: column 'x' is float64 (DECIMAL) in '" + a +
                                         "' but string (VARCHAR) in '" + b + "'");
  WriteParquet(b, "SELECT 7 AS id");
  plan = PlanUnits(Env::Default(), ParquetInput(dir_.Path("drift")), By(PartitionBy::kSize));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), "input: the files' schemas differ: column 'x' is float64 (DECIMAL) in '" + a +
                                         "' but missing in '" + b + "'");

  const std::string h1 = dir_.Path("hive/k=1/a.parquet");
  const std::string h2 = dir_.Path("hive/k=2/j=3/a.parquet");
  WriteParquet(h1, "SELECT 1 AS id");
  WriteParquet(h2, "SELECT 1 AS id");
  plan = PlanUnits(Env::Default(), ParquetInput(dir_.Path("hive")), By(PartitionBy::kSize));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), "input: the files' partition directories differ: '" + h1 + "' has k but '" +
                                         h2 + "' has k, j");
}

TEST_F(ParquetPlanTest, BadFilesAndColumnsFailThePlan) {
  const std::string good = dir_.Path("bad/a.parquet");
  WriteParquet(good, "SELECT i AS id, i::VARCHAR AS s FROM range(10) t(i)");
  const std::string truncated = dir_.Path("bad/b.parquet");
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes(std::istreambuf_iterator<char>(in), {});
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  }
  Result<Plan> plan = PlanUnits(Env::Default(), ParquetInput(dir_.Path("bad")), By(PartitionBy::kSize));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(plan.status().message().rfind("input '" + truncated + "': cannot read the Parquet footer: ", 0), 0u)
      << plan.status().message();

  plan = PlanUnits(Env::Default(), ParquetInput(good), By(PartitionBy::kTime, "s"));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), "partition.column: by: time needs a timestamp or date column; 's' is string");
  plan = PlanUnits(Env::Default(), ParquetInput(good), By(PartitionBy::kHash, "nope"));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), "partition.column: no column 'nope' in '" + good + "' (columns: id, s)");
  plan = PlanUnits(Env::Default(), ParquetInput(dir_.Path("none/*.parquet")), By(PartitionBy::kSize));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sluice
