// The Parquet reader on files written by DuckDB's own writer: every type it
// reads (and nulls), column selection and declared types, row ranges and
// filters, hive partition columns, batch limits, sampling as the CSV reader
// samples, wide integers out of range, and bad files.
#include "source/parquet_source.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "core/hash.h"
#include "source/parquet_test_util.h"
#include "source/source_test_util.h"

namespace sluice {

void PrintTo(const Schema& schema, std::ostream* os) {
  for (const Field& f : schema.fields()) *os << f.name << ":" << DataTypeName(f.type) << " ";
}

namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
constexpr int64_t kJan1Micros = 19'723 * kMicrosPerDay;  // 2024-01-01T00:00:00Z

SourceOptions ParquetOptions() {
  SourceOptions options;
  options.format = InputFormat::kParquet;
  options.batch_rows = 1000;
  return options;
}

// InferSchema then OpenSource over `range`, read to the end.
ReadOutput ReadParquet(const InputRange& range, const SourceOptions& options) {
  Result<Schema> schema = InferSchema(Env::Default(), range.path, options);
  if (!schema.ok()) {
    ReadOutput out;
    out.status = schema.status();
    return out;
  }
  return ReadAll([&](RejectSink* rejects) { return OpenSource(Env::Default(), range, *schema, options, rejects); });
}

std::string Text(int64_t v) { return std::to_string(v); }
template <typename Float>
std::string FloatText(Float v) {
  char buf[64];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

class ParquetSourceTest : public ::testing::Test {
 protected:
  ParquetTempDir dir_;
};

TEST_F(ParquetSourceTest, EveryTypeAndNulls) {
  const std::string path = dir_.Path("types.parquet");
  WriteParquet(path,
               "SELECT i AS id,"
               " CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 100)::TINYINT END AS tiny,"
               " (i * 1000)::INTEGER AS int32, (i * 3)::UBIGINT AS ubig,"
               " (i / 4)::FLOAT AS f32, CASE WHEN i % 3 = 0 THEN NULL ELSE i / 8 END AS f64,"
               " (i / 4)::DECIMAL(10, 2) AS dec, i % 2 = 0 AS flag,"
               " CASE WHEN i % 4 = 0 THEN NULL ELSE 'name-' || i END AS name,"
               " TIMESTAMP '2024-01-01' + to_seconds(i * 3600 + 1) AS ts,"
               " (TIMESTAMP '2024-01-01' + to_seconds(i))::TIMESTAMPTZ AS tstz,"
               " '2024-01-01 00:00:00.123456789'::TIMESTAMP_NS AS tsns,"
               " (TIMESTAMP '2024-01-01' + to_milliseconds(i))::TIMESTAMP_MS AS tsms,"
               " DATE '2024-01-01' + i::INTEGER AS day"
               " FROM range(5000) t(i)",
               2048);
  SourceOptions options = ParquetOptions();
  Result<Schema> schema = InferSchema(Env::Default(), path, options);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(*schema, Schema({{"id", DataType::kInt64},      {"tiny", DataType::kInt64},
                             {"int32", DataType::kInt64},   {"ubig", DataType::kInt64},
                             {"f32", DataType::kFloat32},
                             {"f64", DataType::kFloat64},   {"dec", DataType::kFloat64},
                             {"flag", DataType::kBool},     {"name", DataType::kString},
                             {"ts", DataType::kTimestamp},  {"tstz", DataType::kTimestamp},
                             {"tsns", DataType::kTimestamp}, {"tsms", DataType::kTimestamp},
                             {"day", DataType::kDate}}));

  const ReadOutput out = ReadParquet(InputRange(path), options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_TRUE(out.rejects.empty());
  ASSERT_EQ(out.rows.size(), 5000u);
  EXPECT_EQ(out.batches, 5u);
  for (int64_t i = 0; i < 5000; ++i) {
    const std::string expected =
        Text(i) + "|" + (i % 5 == 0 ? "<null>" : Text(i % 100)) + "|" + Text(i * 1000) + "|" + Text(i * 3) + "|" + FloatText(static_cast<float>(i) / 4) + "|" +
        (i % 3 == 0 ? "<null>" : FloatText(static_cast<double>(i) / 8)) + "|" + FloatText(static_cast<double>(i) / 4) +
        "|" + (i % 2 == 0 ? "true" : "false") + "|" + (i % 4 == 0 ? "<null>" : "name-" + Text(i)) + "|" +
        Text(kJan1Micros + (i * 3600 + 1) * kMicrosPerSecond) + "|" + Text(kJan1Micros + i * kMicrosPerSecond) +
        "|" + Text(kJan1Micros + 123456) + "|" + Text(kJan1Micros + i * 1000) + "|" +
        Text(kJan1Micros + i * kMicrosPerDay);
    ASSERT_EQ(out.rows[i], expected) << "row " << i;
    ASSERT_EQ(out.lines[i], i + 1);
  }
}

TEST_F(ParquetSourceTest, SelectedColumnsInOrderAndDeclaredTypes) {
  const std::string path = dir_.Path("sel.parquet");
  WriteParquet(path,
               "SELECT i AS id, 'n' || i AS name, TIMESTAMP '2024-01-01' + to_seconds(i) AS ts,"
               " DATE '2024-01-01' + i::INTEGER AS day FROM range(10) t(i)");
  SourceOptions options = ParquetOptions();
  options.declared_types = {{"id", DataType::kFloat64}, {"ts", DataType::kString}, {"day", DataType::kTimestamp}};
  Result<Schema> schema = InferSchema(Env::Default(), path, options);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  options.columns = {"day", "ts", "id"};
  const ReadOutput out = ReadAll([&](RejectSink* r) { return OpenSource(Env::Default(), InputRange(path), *schema, options, r); });
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.schema,
            Schema({{"day", DataType::kTimestamp}, {"ts", DataType::kString}, {"id", DataType::kFloat64}}));
  ASSERT_EQ(out.rows.size(), 10u);
  EXPECT_EQ(out.rows[3], Text(kJan1Micros + 3 * kMicrosPerDay) + "|2024-01-01 00:00:03|3");

  options.declared_types = {{"name", DataType::kInt64}};
  Result<Schema> bad = InferSchema(Env::Default(), path, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "input.schema.name: column 'name' of '" + path +
                                        "' is VARCHAR; it reads as string, not int64");
}

TEST_F(ParquetSourceTest, ColumnsOfOtherTypesAreLeftOutUnlessAsked) {
  const std::string path = dir_.Path("nested.parquet");
  WriteParquet(path, "SELECT i AS id, [i, i + 1] AS pair, {'a': i} AS rec, 'x' AS tail FROM range(3) t(i)");
  SourceOptions options = ParquetOptions();
  Result<Schema> schema = InferSchema(Env::Default(), path, options);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(*schema, Schema({{"id", DataType::kInt64}, {"tail", DataType::kString}}));
  const ReadOutput out = ReadParquet(InputRange(path), options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.rows, (std::vector<std::string>{"0|x", "1|x", "2|x"}));

  options.declared_types = {{"pair", DataType::kString}};
  Result<Schema> asked = InferSchema(Env::Default(), path, options);
  ASSERT_FALSE(asked.ok());
  EXPECT_EQ(asked.status().message(), "input '" + path + "': column 'pair' is LIST, which Sluice cannot read");
}

TEST_F(ParquetSourceTest, RowRangesAndRowNumbers) {
  const std::string path = dir_.Path("rows.parquet");
  WriteParquet(path, "SELECT i AS id FROM range(5000) t(i)", 2048);
  SourceOptions options = ParquetOptions();
  const ReadOutput middle = ReadParquet(InputRange(path, 2048, 4096), options);
  ASSERT_TRUE(middle.status.ok()) << middle.status.ToString();
  ASSERT_EQ(middle.rows.size(), 2048u);
  EXPECT_EQ(middle.rows.front(), "2048");
  EXPECT_EQ(middle.lines.front(), 2049);
  EXPECT_EQ(middle.rows.back(), "4095");
  EXPECT_EQ(middle.lines.back(), 4096);
  const ReadOutput tail = ReadParquet(InputRange(path, 4096), options);
  ASSERT_TRUE(tail.status.ok());
  EXPECT_EQ(tail.rows.size(), 904u);
  EXPECT_EQ(tail.lines.back(), 5000);
  const ReadOutput none = ReadParquet(InputRange(path, 5000, 6000), options);
  ASSERT_TRUE(none.status.ok());
  EXPECT_TRUE(none.rows.empty());
}

TEST_F(ParquetSourceTest, SourcesReuseDatabasesOfTheirPool) {
  const std::string path = dir_.Path("pooled.parquet");
  WriteParquet(path,
               "SELECT i AS id, CASE WHEN i % 5 = 0 THEN NULL ELSE i / 4 END AS x, 's' || i AS s FROM range(5000) t(i)",
               2048);
  SourceOptions options = ParquetOptions();
  const ReadOutput alone = ReadParquet(InputRange(path, 2048), options);
  ASSERT_TRUE(alone.status.ok()) << alone.status.ToString();
  options.duckdb_pool = std::make_shared<DuckDbPool>();
  for (int round = 0; round < 3; ++round) {
    const ReadOutput pooled = ReadParquet(InputRange(path, 2048), options);
    ASSERT_TRUE(pooled.status.ok()) << pooled.status.ToString();
    EXPECT_EQ(pooled.rows, alone.rows);
    EXPECT_EQ(pooled.lines, alone.lines);
    EXPECT_EQ(options.duckdb_pool->idle(), 1u);
  }
  // A Source that fails its query gives a database back that still reads.
  InputRange bad(path);
  bad.filter = "no_such_column > 1";
  EXPECT_FALSE(ReadParquet(bad, options).status.ok());
  const ReadOutput after = ReadParquet(InputRange(path, 2048), options);
  ASSERT_TRUE(after.status.ok()) << after.status.ToString();
  EXPECT_EQ(after.rows, alone.rows);
}

TEST_F(ParquetSourceTest, FilterWithBoundValues) {
  const std::string path = dir_.Path("filter.parquet");
  WriteParquet(path, "SELECT i AS id, 'n' || (i % 3) AS \"odd \"\"name\"\"\" FROM range(100) t(i)");
  SourceOptions options = ParquetOptions();
  InputRange range(path, 10, 40);
  range.filter = "\"id\" % ? = ? AND \"odd \"\"name\"\"\" = ?";
  range.params = {int64_t{7}, int64_t{3}, std::string("n1")};
  const ReadOutput out = ReadParquet(range, options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  // 10 <= id < 40, id % 7 == 3, id % 3 == 1: 10, 31.
  EXPECT_EQ(out.rows, (std::vector<std::string>{"10|n1", "31|n1"}));
  EXPECT_EQ(out.lines, (std::vector<int64_t>{11, 32}));
}

TEST_F(ParquetSourceTest, HiveDirectoriesAreColumns) {
  const std::string path = dir_.Path("data/day=2024-01-02/region=e%2Fu/misc=__null__/part-0.parquet");
  WriteParquet(path, "SELECT i AS id FROM range(3) t(i)");
  SourceOptions options = ParquetOptions();
  options.declared_types = {{"day", DataType::kDate}};
  Result<Schema> schema = InferSchema(Env::Default(), path, options);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  // Every key=value directory of the path counts, the temporary directory's none.
  EXPECT_EQ(*schema, Schema({{"id", DataType::kInt64},
                             {"day", DataType::kDate},
                             {"region", DataType::kString},
                             {"misc", DataType::kString}}));
  options.columns = {"region", "id", "day", "misc"};
  const ReadOutput out = ReadAll([&](RejectSink* r) { return OpenSource(Env::Default(), InputRange(path), *schema, options, r); });
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  const std::string day = Text(kJan1Micros + kMicrosPerDay);
  EXPECT_EQ(out.rows, (std::vector<std::string>{"e/u|0|" + day + "|<null>", "e/u|1|" + day + "|<null>",
                                                "e/u|2|" + day + "|<null>"}));

  options.declared_types = {{"region", DataType::kInt64}};
  Result<Schema> bad = InferSchema(Env::Default(), path, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "input '" + path + "': partition directory region=e%2Fu is not a int64 (input.schema.region)");

  const std::string clash = dir_.Path("clash/id=4/part-0.parquet");
  WriteParquet(clash, "SELECT 1 AS id");
  Result<Schema> both = InferSchema(Env::Default(), clash, ParquetOptions());
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().message(), "input '" + clash + "': 'id' is both a column of the file and a partition directory");
}

TEST(HivePartitionsTest, KeysValuesAndSluiceEscapes) {
  auto hive = HivePartitions("a/k=v/x=1=2/y=/z%3Dq=%41/f=9.parquet");
  ASSERT_TRUE(hive.ok());
  EXPECT_EQ(*hive, (std::vector<std::pair<std::string, std::string>>{{"k", "v"}, {"x", "1=2"}, {"y", ""}, {"z=q", "%41"}}));
  EXPECT_FALSE(HivePartitions("k=1/k=2/f.parquet").ok());
  EXPECT_FALSE(HivePartitions("=1/f.parquet").ok());
  EXPECT_EQ(HiveValue("%41%2fb%zz%4"), "A/b%zz%4");
  EXPECT_EQ(HiveValue("__null__"), std::nullopt);
  EXPECT_EQ(HiveValue("__HIVE_DEFAULT_PARTITION__"), std::nullopt);
  EXPECT_EQ(HiveValue("__empty__"), "");
  EXPECT_EQ(HiveValue("%5F_x"), "__x");
}

// Decoded bytes the reader counts for a row of (id BIGINT, name VARCHAR).
uint64_t RowBytes(int64_t id) { return 16 + ("name-" + Text(id)).size(); }

TEST_F(ParquetSourceTest, BatchLimitsInRowsAndBytes) {
  const std::string path = dir_.Path("limits.parquet");
  WriteParquet(path, "SELECT i AS id, 'name-' || i AS name FROM range(5000) t(i)", 2048);
  SourceOptions options = ParquetOptions();
  options.batch_rows = 1500;
  Result<Schema> schema = InferSchema(Env::Default(), path, options);
  ASSERT_TRUE(schema.ok());
  CollectRejects rejects;
  auto source = OpenSource(Env::Default(), InputRange(path), *schema, options, &rejects);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  // 1500-row batches cross the 2048-row chunks; after two, each batch ends
  // with the row that brings it to 700 bytes or more.
  std::vector<size_t> expected = {1500, 1500};
  uint64_t bytes = 0;
  for (int64_t i = 3000; i < 5000; ++i) {
    if (bytes == 0) expected.push_back(0);
    ++expected.back();
    bytes += RowBytes(i);
    if (bytes >= 700) bytes = 0;
  }
  EXPECT_EQ(BatchSizes(source->get(), 2, 100000, 700), expected);
  uint64_t total = 0;
  for (int64_t i = 0; i < 5000; ++i) total += RowBytes(i);
  EXPECT_EQ((*source)->bytes_read(), total);
}

TEST_F(ParquetSourceTest, SamplesLikeTheCsvReader) {
  const std::string parquet = dir_.Path("sample.parquet");
  const std::string csv = dir_.Path("sample.csv");
  WriteParquet(parquet, "SELECT i AS id, 'n' || i AS name FROM range(20000) t(i)", 4096);
  {
    std::ofstream out(csv);
    out << "id,name\n";
    for (int i = 0; i < 20000; ++i) out << i << ",n" << i << "\n";
  }
  auto read = [](const std::string& path, InputFormat format, std::vector<std::string> keys, int64_t* sampled_out) {
    SourceOptions options = ParquetOptions();
    options.format = format;
    options.sample = 0.3;
    options.sample_keys = std::move(keys);
    Result<Schema> schema = InferSchema(Env::Default(), path, options);
    EXPECT_TRUE(schema.ok()) << schema.status().ToString();
    ReadOutput out;
    CollectRejects rejects;
    auto source = OpenSource(Env::Default(), InputRange(path), *schema, options, &rejects);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    if (source.ok()) {
      DrainSource(source->get(), &out);
      *sampled_out = (*source)->rows_sampled_out();
    }
    return out;
  };
  int64_t parquet_out = 0;
  int64_t csv_out = 0;
  const ReadOutput by_key = read(parquet, InputFormat::kParquet, {"id"}, &parquet_out);
  const ReadOutput csv_by_key = read(csv, InputFormat::kCsv, {"id"}, &csv_out);
  EXPECT_EQ(by_key.rows, csv_by_key.rows);
  EXPECT_EQ(parquet_out, csv_out);
  EXPECT_EQ(static_cast<int64_t>(by_key.rows.size()) + parquet_out, 20000);
  EXPECT_NEAR(static_cast<double>(by_key.rows.size()), 6000.0, 400.0);

  // Without keys: by file and row number.
  const ReadOutput by_row = read(parquet, InputFormat::kParquet, {}, &parquet_out);
  std::vector<std::string> expected;
  for (int64_t i = 0; i < 20000; ++i) {
    if (SampleKeep(HashRowLocation(parquet, i + 1), 0.3)) expected.push_back(Text(i) + "|n" + Text(i));
  }
  EXPECT_EQ(by_row.rows, expected);
  EXPECT_EQ(parquet_out, 20000 - static_cast<int64_t>(expected.size()));
}

TEST_F(ParquetSourceTest, WideIntegersOutsideInt64RejectTheRow) {
  const std::string path = dir_.Path("wide.parquet");
  WriteParquet(path,
               "SELECT i AS id, CASE WHEN i % 4 = 3 THEN 18446744073709551615 - i ELSE i END::UBIGINT AS big"
               " FROM range(10) t(i)");
  const ReadOutput out = ReadParquet(InputRange(path), ParquetOptions());
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.rows, (std::vector<std::string>{"0|0", "1|1", "2|2", "4|4", "5|5", "6|6", "8|8", "9|9"}));
  ASSERT_EQ(out.rejects.size(), 2u);
  EXPECT_EQ(out.rejects[0].line, 4);
  EXPECT_EQ(out.rejects[0].column, "big");
  EXPECT_EQ(out.rejects[0].reason, "bad_value");
  EXPECT_EQ(out.rejects[0].value, "18446744073709551612");
  EXPECT_EQ(out.rejects[0].message, "input '" + path + "' row 4, column 'big': 18446744073709551612 does not fit int64");
  EXPECT_EQ(out.rejects[1].line, 8);
  EXPECT_EQ(out.rejects[1].value, "18446744073709551608");
}

// Values go into the batch a vector run at a time when every row of the run is
// kept, value by value when a rejected row sits inside it: both keep nulls.
TEST_F(ParquetSourceTest, NullsAroundRejectedRowsAndBatchEdges) {
  const std::string path = dir_.Path("runs.parquet");
  WriteParquet(path,
               "SELECT i AS id, CASE WHEN i % 3 = 0 THEN NULL ELSE i / 2 END AS f,"
               " CASE WHEN i % 5 = 0 THEN NULL ELSE i % 2 = 0 END AS flag,"
               " CASE WHEN i IN (700, 2100, 2999) THEN 18446744073709551615 ELSE i END::UBIGINT AS big"
               " FROM range(3000) t(i)",
               2048);
  SourceOptions options = ParquetOptions();
  options.batch_rows = 777;
  const ReadOutput out = ReadParquet(InputRange(path), options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  std::vector<std::string> expected;
  for (int64_t i = 0; i < 3000; ++i) {
    if (i == 700 || i == 2100 || i == 2999) continue;
    expected.push_back(Text(i) + "|" + (i % 3 == 0 ? "<null>" : FloatText(static_cast<double>(i) / 2)) + "|" +
                       (i % 5 == 0 ? "<null>" : (i % 2 == 0 ? "true" : "false")) + "|" + Text(i));
  }
  EXPECT_EQ(out.rows, expected);
  EXPECT_EQ(out.rejects.size(), 3u);
}

TEST_F(ParquetSourceTest, BadFilesAreOneLineErrorsNamingTheFile) {
  const std::string good = dir_.Path("good.parquet");
  WriteParquet(good, "SELECT i AS id FROM range(1000) t(i)");
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& name, const std::string& data) {
    std::ofstream(dir_.Path(name), std::ios::binary) << data;
    return dir_.Path(name);
  };
  const std::string empty = write("empty.parquet", "");
  const std::string truncated = write("truncated.parquet", bytes.substr(0, bytes.size() / 2));
  const std::string magic = write("magic.parquet", "id\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n");
  std::string bad_footer = bytes;
  for (size_t i = bad_footer.size() - 40; i < bad_footer.size() - 8; ++i) bad_footer[i] = '\x7f';
  const std::string footer = write("footer.parquet", bad_footer);
  for (const std::string& path : {empty, truncated, magic, footer}) {
    Result<Schema> schema = InferSchema(Env::Default(), path, ParquetOptions());
    ASSERT_FALSE(schema.ok()) << path;
    EXPECT_EQ(schema.status().code(), StatusCode::kCorruption) << schema.status().ToString();
    EXPECT_EQ(schema.status().message().rfind("input '" + path + "': cannot read the Parquet footer: ", 0), 0u)
        << schema.status().message();
    EXPECT_EQ(schema.status().message().find('\n'), std::string::npos);
  }
  Result<Schema> missing = InferSchema(Env::Default(), dir_.Path("missing.parquet"), ParquetOptions());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "input '" + dir_.Path("missing.parquet") + "': no such file");
}

}  // namespace
}  // namespace sluice
