// Parquet parts, read back by DuckDB's own reader through SQL (read_parquet,
// parquet_schema, parquet_metadata), not by Sluice's source: types kept, nulls,
// order, PartFile rows/bytes/checksum against the bytes on disk, compression,
// empty parts, the commit protocol under faults, abort, partitioned layouts.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "env/fault_injection_env.h"
#include "sluice/sink.h"
#include "source/parquet_test_util.h"

namespace sluice {
namespace {

constexpr int64_t kMicrosPerDay = 86'400LL * 1'000'000;
constexpr int64_t kJan1Micros = 19'723 * kMicrosPerDay;  // 2024-01-01T00:00:00Z

const Schema kSchema({{"id", DataType::kInt64},
                      {"score", DataType::kFloat32},
                      {"x", DataType::kFloat64},
                      {"flag", DataType::kBool},
                      {"name", DataType::kString},
                      {"ts", DataType::kTimestamp},
                      {"day", DataType::kDate}});

// Rows [first, first + n) of kSchema; every 7th row's optional values are null.
Batch MakeBatch(int64_t first, int64_t n) {
  Batch b;
  b.Reset(kSchema);
  for (int64_t i = first; i < first + n; ++i) {
    const bool nulls = i % 7 == 3;
    b.columns[0].AppendInt64(i);
    b.columns[1].AppendFloat32(static_cast<float>(i) / 3);
    if (nulls) {
      for (size_t col = 2; col < 7; ++col) b.columns[col].AppendNull();
      continue;
    }
    b.columns[2].AppendFloat64(static_cast<double>(i) / 7);
    b.columns[3].AppendBool(i % 2 == 0);
    b.columns[4].AppendString(i % 5 == 0 ? "" : "name \"" + std::to_string(i) + "\", ünï");
    b.columns[5].AppendInt64(kJan1Micros + i * 1'000'123);
    b.columns[6].AppendInt64(kJan1Micros + (i - 500) * kMicrosPerDay);
  }
  return b;
}

PartOptions Options(const std::string& dir, int index) {
  PartOptions options;
  options.format = OutputFormat::kParquet;
  options.dir = dir;
  options.part_index = index;
  options.schema = kSchema;
  return options;
}

// Rows of `sql` run by DuckDB, each as its values' text joined by '|' (null: "<null>").
std::vector<std::string> Query(const std::string& sql, const std::string& path) {
  std::vector<std::string> rows;
  auto db = DuckDb::Open();
  EXPECT_TRUE(db.ok());
  auto text = (*db)->Prepare("SELECT COLUMNS(*)::VARCHAR FROM (" + sql + ")");
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  if (!text.ok()) return rows;
  EXPECT_TRUE(text->Bind(0, path).ok());
  auto result = text->Query();
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok()) return rows;
  const size_t cols = result->column_count();
  while (true) {
    auto chunk = result->Next();
    if (!chunk.ok() || !*chunk) break;
    for (size_t row = 0; row < chunk->size(); ++row) {
      std::string line;
      for (size_t col = 0; col < cols; ++col) {
        if (col > 0) line += '|';
        line += chunk->IsNull(col, row) ? "<null>" : std::string(chunk->StringAt(col, row));
      }
      rows.push_back(line);
    }
  }
  return rows;
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class ParquetPartWriterTest : public ::testing::Test {
 protected:
  ParquetTempDir dir_;
};

TEST_F(ParquetPartWriterTest, TypesValuesAndOrderReadBackByDuckDb) {
  const std::string out = dir_.Path("out");
  auto part = OpenPartWriter(Env::Default(), Options(out, 3));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  ASSERT_TRUE((*part)->Write(MakeBatch(0, 10)).ok());
  ASSERT_TRUE((*part)->Write(MakeBatch(10, 5000)).ok());  // crosses DuckDB's 2048-row chunks
  ASSERT_TRUE((*part)->Write(MakeBatch(5010, 0)).ok());
  EXPECT_FALSE(std::filesystem::exists(out + "/part-00003.parquet"));
  ASSERT_TRUE((*part)->Commit().ok());
  const std::string path = out + "/part-00003.parquet";
  EXPECT_EQ(Names(out), (std::vector<std::string>{"_sluice", "part-00003.parquet"}));

  const std::vector<PartFile>& files = (*part)->files();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path, "part-00003.parquet");
  EXPECT_EQ(files[0].rows, 5010);
  const std::string bytes = FileBytes(path);
  EXPECT_EQ(files[0].bytes, bytes.size());
  EXPECT_EQ(files[0].sha256, Sha256Hex(bytes));
  EXPECT_EQ(bytes.substr(0, 4), "PAR1");

  EXPECT_EQ(Query("SELECT name, type, logical_type IS NOT NULL, converted_type FROM parquet_schema(?) WHERE name <> 'duckdb_schema'", path),
            (std::vector<std::string>{
                "id|INT64|false|INT_64", "score|FLOAT|false|<null>", "x|DOUBLE|false|<null>",
                "flag|BOOLEAN|false|<null>", "name|BYTE_ARRAY|false|UTF8",
                "ts|INT64|true|TIMESTAMP_MICROS", "day|INT32|false|DATE"}));
  EXPECT_EQ(Query("SELECT DISTINCT compression FROM parquet_metadata(?)", path), (std::vector<std::string>{"ZSTD"}));
  // The times as UTC instants: isAdjustedToUTC.
  const auto ts_type = Query("SELECT logical_type FROM parquet_schema(?) WHERE name = 'ts'", path);
  ASSERT_EQ(ts_type.size(), 1u);
  EXPECT_NE(ts_type[0].find("isAdjustedToUTC=1"), std::string::npos) << ts_type[0];

  const std::vector<std::string> rows =
      Query("SELECT id, score = (id / 3)::FLOAT, x = id / 7, flag, name, epoch_us(ts), day"
            " FROM read_parquet(?)",
            path);
  ASSERT_EQ(rows.size(), 5010u);
  for (int64_t i = 0; i < 5010; ++i) {
    std::string expected = std::to_string(i) + "|true|";
    if (i % 7 == 3) {
      expected += "<null>|<null>|<null>|<null>|<null>";
    } else {
      // DuckDB prints dates as YYYY-MM-DD; day i - 500 from 2024-01-01.
      const auto day = std::chrono::sys_days{std::chrono::year{2024} / 1 / 1} + std::chrono::days{i - 500};
      const std::chrono::year_month_day ymd{day};
      char date[16];
      std::snprintf(date, sizeof date, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
      expected += std::string("true|") + (i % 2 == 0 ? "true" : "false") + "|" +
                  (i % 5 == 0 ? "" : "name \"" + std::to_string(i) + "\", ünï") + "|" +
                  std::to_string(kJan1Micros + i * 1'000'123) + "|" + date;
    }
    ASSERT_EQ(rows[i], expected) << "row " << i;
  }
}

TEST_F(ParquetPartWriterTest, SnappyAndEmptyParts) {
  PartOptions options = Options(dir_.Path("out"), 0);
  options.compression = ParquetCompression::kSnappy;
  auto part = OpenPartWriter(Env::Default(), options);
  ASSERT_TRUE(part.ok());
  ASSERT_TRUE((*part)->Write(MakeBatch(0, 100)).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(Query("SELECT DISTINCT compression FROM parquet_metadata(?)", dir_.Path("out/part-00000.parquet")),
            (std::vector<std::string>{"SNAPPY"}));

  auto empty = OpenPartWriter(Env::Default(), Options(dir_.Path("out"), 1));
  ASSERT_TRUE(empty.ok());
  ASSERT_TRUE((*empty)->Commit().ok());
  ASSERT_EQ((*empty)->files().size(), 1u);
  EXPECT_EQ((*empty)->files()[0].rows, 0);
  const std::string path = dir_.Path("out/part-00001.parquet");
  EXPECT_EQ(Query("SELECT count(*) FROM read_parquet(?)", path), (std::vector<std::string>{"0"}));
  EXPECT_EQ(Query("SELECT count(*) FROM parquet_schema(?) WHERE name <> 'duckdb_schema'", path),
            (std::vector<std::string>{"7"}));
}

TEST_F(ParquetPartWriterTest, AbortAndDestructionLeaveNothing) {
  const std::string out = dir_.Path("out");
  {
    auto part = OpenPartWriter(Env::Default(), Options(out, 4));
    ASSERT_TRUE(part.ok());
    ASSERT_TRUE((*part)->Write(MakeBatch(0, 100)).ok());
    (*part)->Abort();
    (*part)->Abort();
    EXPECT_FALSE((*part)->Write(MakeBatch(0, 1)).ok());
    EXPECT_EQ((*part)->Commit().code(), StatusCode::kFailedPrecondition);
  }
  {
    auto part = OpenPartWriter(Env::Default(), Options(out, 5));
    ASSERT_TRUE(part.ok());
    ASSERT_TRUE((*part)->Write(MakeBatch(0, 100)).ok());
  }
  EXPECT_EQ(Names(out), (std::vector<std::string>{"_sluice"}));
}

TEST_F(ParquetPartWriterTest, FailedCommitStepsLeaveNoVisiblePart) {
  for (FaultOp op : {FaultOp::kSync, FaultOp::kRename, FaultOp::kRead, FaultOp::kCreate}) {
    SCOPED_TRACE(std::string(FaultOpName(op)));
    const std::string out = dir_.Path(std::string("out-") + std::string(FaultOpName(op)));
    FaultInjectionEnv env(Env::Default());
    env.FailOnce(op, "part-00006");
    auto part = OpenPartWriter(&env, Options(out, 6));
    ASSERT_TRUE(part.ok()) << part.status().ToString();
    ASSERT_TRUE((*part)->Write(MakeBatch(0, 1000)).ok());
    Status s = (*part)->Commit();
    EXPECT_EQ(s.code(), StatusCode::kIOError);
    EXPECT_NE(s.message().find("injected fault"), std::string::npos) << s.message();
    EXPECT_EQ(Names(out), (std::vector<std::string>{"_sluice"}));
    EXPECT_EQ(env.Injected(op), 1);
  }
}

TEST_F(ParquetPartWriterTest, LeftoverSpillFilesOfAKilledRunAreRemoved) {
  const std::string out = dir_.Path("out");
  const std::string spill = out + "/_sluice/spill/part-00002";
  std::filesystem::create_directories(spill);
  std::ofstream(spill + "/duckdb_temp_storage_S32K-0.tmp") << "old";
  auto part = OpenPartWriter(Env::Default(), Options(out, 2));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  EXPECT_TRUE(std::filesystem::is_empty(spill));
}

TEST_F(ParquetPartWriterTest, PartsShareTheDatabasesOfTheirPool) {
  const std::string out = dir_.Path("out");
  auto write = [&](const PartOptions& options, bool commit) {
    auto part = OpenPartWriter(Env::Default(), options);
    ASSERT_TRUE(part.ok()) << part.status().ToString();
    ASSERT_TRUE((*part)->Write(MakeBatch(0, 3000)).ok());
    if (commit) {
      ASSERT_TRUE((*part)->Commit().ok());
    }
  };
  write(Options(dir_.Path("alone"), 1), true);
  PartOptions options = Options(out, 1);
  options.duckdb_pool = std::make_shared<DuckDbPool>();
  // The first copy opens a readers' database; every later one connects to it.
  write(options, true);
  EXPECT_EQ(options.duckdb_pool->idle(), 1u);
  options.part_index = 2;
  write(options, false);  // aborted with its rows held
  EXPECT_EQ(options.duckdb_pool->idle(), 1u);
  {
    // A reader holds the database: the copy connects to it all the same.
    auto reader = DuckDbPool::Take(options.duckdb_pool.get(), ParquetReadDbOptions());
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    options.part_index = 3;
    write(options, true);
    EXPECT_EQ(options.duckdb_pool->idle(), 0u);
  }
  EXPECT_EQ(options.duckdb_pool->idle(), 1u);
  // Same bytes as a part written by a database of its own.
  const std::string alone = FileBytes(dir_.Path("alone") + "/part-00001.parquet");
  EXPECT_EQ(FileBytes(out + "/part-00001.parquet"), alone);
  EXPECT_EQ(Query("SELECT count(*), sum(id) FROM read_parquet(?)", out + "/part-00003.parquet"),
            (std::vector<std::string>{"3000|4498500"}));
  EXPECT_EQ(Names(out), (std::vector<std::string>{"_sluice", "part-00001.parquet", "part-00003.parquet"}));

  // A staged part takes a database of its own; one that spilled is closed
  // (removing its spill directory), not given back.
  options.part_index = 4;
  {
    auto part = OpenPartWriter(Env::Default(), options);
    ASSERT_TRUE(part.ok()) << part.status().ToString();
    for (int64_t first = 0; first < 600'000; first += 50'000) {
      ASSERT_TRUE((*part)->Write(MakeBatch(first, 50'000)).ok());
    }
    EXPECT_TRUE(std::filesystem::exists(out + "/_sluice/spill/part-00004"));
    ASSERT_TRUE((*part)->Commit().ok());
  }
  EXPECT_EQ(options.duckdb_pool->idle(), 1u);
  EXPECT_FALSE(std::filesystem::exists(out + "/_sluice/spill/part-00004"));
  EXPECT_EQ(Query("SELECT count(*) FROM read_parquet(?)", out + "/part-00004.parquet"),
            (std::vector<std::string>{"600000"}));
  options.part_index = 5;
  write(options, true);
  EXPECT_EQ(options.duckdb_pool->idle(), 1u);
  EXPECT_EQ(FileBytes(out + "/part-00005.parquet"), alone);
}

// A part whose rows outgrow what the writer holds (a quarter of its 23 MiB
// memory limit) moves them into a table mid-way: it writes the same rows, in
// order, as parts small enough to hold theirs.
TEST_F(ParquetPartWriterTest, PartsOverTheHoldLimitWriteTheSameRows) {
  constexpr int64_t kRows = 200'000;  // about 13 MB of values
  constexpr int64_t kBatch = 20'000;
  const std::string root = dir_.Path("cmp");
  auto big = OpenPartWriter(Env::Default(), Options(root + "/big", 0));
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  for (int64_t first = 0; first < kRows; first += kBatch) {
    const Batch batch = MakeBatch(first, kBatch);
    ASSERT_TRUE((*big)->Write(batch).ok());
    auto small = OpenPartWriter(Env::Default(), Options(root + "/small", static_cast<int>(first / kBatch)));
    ASSERT_TRUE(small.ok()) << small.status().ToString();
    ASSERT_TRUE((*small)->Write(batch).ok());
    ASSERT_TRUE((*small)->Commit().ok());
  }
  ASSERT_TRUE((*big)->Commit().ok());
  const std::string big_file = root + "/big/part-00000.parquet";
  EXPECT_EQ(Query("SELECT count(*), count(*) FILTER (id <> file_row_number) FROM read_parquet(?, file_row_number = true)",
                  big_file),
            (std::vector<std::string>{"200000|0"}));
  // Every row once in each directory.
  EXPECT_EQ(Query("SELECT count(*), count(*) FILTER (n <> 2 OR big <> 1) FROM (SELECT count(*) AS n, "
                  "count(*) FILTER (filename LIKE '%/big/%') AS big FROM read_parquet(?, filename = true) "
                  "GROUP BY id, score, x, flag, name, ts, day)",
                  root + "/*/*.parquet"),
            (std::vector<std::string>{"200000|0"}));
}

TEST_F(ParquetPartWriterTest, OneFilePerPartitionDirectory) {
  const std::string out = dir_.Path("out");
  PartOptions options = Options(out, 9);
  options.schema = Schema({{"id", DataType::kInt64}, {"seg", DataType::kString}, {"ts", DataType::kTimestamp}});
  PartitionKey seg;
  seg.column = "seg";
  PartitionKey day;
  day.column = "ts";
  day.window = TimeWindow::kDay;
  options.partition_by = {day, seg};
  options.max_open_files = 1;
  auto part = OpenPartWriter(Env::Default(), options);
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  for (int batch = 0; batch < 3; ++batch) {
    Batch b;
    b.Reset(options.schema);
    for (int64_t i = batch * 1000; i < (batch + 1) * 1000; ++i) {
      b.columns[0].AppendInt64(i);
      b.columns[1].AppendString(i % 3 == 0 ? "a/b" : "c");
      b.columns[2].AppendInt64(kJan1Micros + (i % 2) * kMicrosPerDay);
    }
    ASSERT_TRUE((*part)->Write(b).ok());
  }
  ASSERT_TRUE((*part)->Commit().ok());
  std::vector<std::string> paths;
  int64_t rows = 0;
  for (const PartFile& f : (*part)->files()) {
    paths.push_back(f.path);
    rows += f.rows;
    const std::string path = out + "/" + f.path;
    EXPECT_EQ(f.sha256, Sha256Hex(FileBytes(path)));
    // The plain key is the directory, not a column; ids ascend within a file.
    EXPECT_EQ(Query("SELECT string_agg(name, ',') FROM parquet_schema(?) WHERE name <> 'duckdb_schema'", path),
              (std::vector<std::string>{"id,ts"}));
    const auto ordered = Query("SELECT bool_and(id > prev) FROM (SELECT id, lag(id, 1, -1) OVER () AS prev FROM read_parquet(?))", path);
    EXPECT_EQ(ordered, (std::vector<std::string>{"true"}));
    EXPECT_EQ(Query("SELECT count(*) FROM read_parquet(?)", path), (std::vector<std::string>{std::to_string(f.rows)}));
  }
  EXPECT_EQ(rows, 3000);
  EXPECT_EQ(paths, (std::vector<std::string>{"ts_day=2024-01-01/seg=a%2Fb/part-00009.parquet",
                                             "ts_day=2024-01-01/seg=c/part-00009.parquet",
                                             "ts_day=2024-01-02/seg=a%2Fb/part-00009.parquet",
                                             "ts_day=2024-01-02/seg=c/part-00009.parquet"}));
}

}  // namespace
}  // namespace sluice
