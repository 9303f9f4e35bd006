#include "source/postgres_source.h"

#include <gtest/gtest.h>

#include <set>

#include "core/strings.h"
#include "db/postgres_test_util.h"
#include "source/csv_source.h"
#include "source/source_test_util.h"

namespace sluice {
namespace {

SourceOptions TableOptions(const std::string& table) {
  SourceOptions o;
  o.format = InputFormat::kPostgres;
  o.table = table;
  return o;
}

ReadOutput Read(const std::string& url, const SourceOptions& options, const InputRange& range_in = InputRange()) {
  InputRange range = range_in;
  range.path = url;
  Result<Schema> schema = InferPostgresSchema(url, options);
  if (!schema.ok()) {
    ReadOutput out;
    out.status = schema.status();
    return out;
  }
  return ReadAll([&](RejectSink* rejects) { return OpenPostgresSource(range, *schema, options, rejects); });
}

TEST(PostgresSourceTest, TypesAndNullsAsSluiceTypes) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, R"(CREATE TABLE t (i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, num numeric,
                  b boolean, s text, vc varchar(10), ch char(3), ts timestamp, tstz timestamptz, d date, u uuid,
                  j jsonb);
                 INSERT INTO t VALUES
                  (-2, 70000, 9007199254740993, 0.1, 0.1, 12.5, true, E'a\tb', 'hé', 'x', '1969-12-31 23:59:59',
                   '2024-03-01 12:00:00+02', '2024-02-29', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2]}'),
                  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                  (1, 2, 3, 'NaN', '-Infinity', -0.5, false, '', '', 'yz', '2024-01-05 10:11:12.345678',
                   '2024-01-05 10:11:12.345678+00', '1970-01-01', NULL, 'null'))");
  ReadOutput out = Read(pg->Url(db), TableOptions("t"));
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  const std::vector<Field> expected = {
      {"i2", DataType::kInt64},   {"i4", DataType::kInt64},       {"i8", DataType::kInt64},
      {"f4", DataType::kFloat32}, {"f8", DataType::kFloat64},     {"num", DataType::kFloat64},
      {"b", DataType::kBool},     {"s", DataType::kString},       {"vc", DataType::kString},
      {"ch", DataType::kString},  {"ts", DataType::kTimestamp},   {"tstz", DataType::kTimestamp},
      {"d", DataType::kTimestamp}, {"u", DataType::kString},      {"j", DataType::kString}};
  EXPECT_EQ(out.schema, Schema(expected));
  ASSERT_EQ(out.rows.size(), 3u);
  EXPECT_EQ(out.rows[0],
            "-2|70000|9007199254740993|0.1|0.1|12.5|true|a\tb|hé|x|-1000000|1709287200000000|1709164800000000|"
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|{\"k\": [1, 2]}");
  EXPECT_EQ(out.rows[1], "<null>|<null>|<null>|<null>|<null>|<null>|<null>|<null>|<null>|<null>|<null>|<null>|<null>|<null>|<null>");
  EXPECT_EQ(out.rows[2], "1|2|3|nan|-inf|-0.5|false|||yz|1704449472345678|1704449472345678|0|<null>|null");
  EXPECT_EQ(out.lines, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(out.rejects.empty());
}

TEST(PostgresSourceTest, CursorStreamsBoundedBatchesInOrder) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t AS SELECT g AS id, repeat('x', g % 50) AS pad FROM generate_series(1, 5000) g");
  SourceOptions options = TableOptions("t");
  options.batch_rows = 64;
  ReadOutput out = Read(pg->Url(db), options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.rows.size(), 5000u);
  EXPECT_EQ(out.batches, (5000u + 63) / 64);
  for (size_t row = 0; row < out.rows.size(); ++row) {
    ASSERT_EQ(out.rows[row].substr(0, out.rows[row].find('|')), std::to_string(row + 1));
    ASSERT_EQ(out.lines[row], static_cast<int64_t>(row + 1));
  }
  EXPECT_GT(out.bytes_read, 5000u * 8);

  // By bytes: every batch stops once its rows span the limit, so a batch holds
  // few rows whatever batch_rows says, and no rows are lost at the seams.
  Result<Schema> schema = InferPostgresSchema(pg->Url(db), options);
  ASSERT_TRUE(schema.ok());
  options.batch_rows = 100000;
  options.max_batch_bytes = 600;
  CollectRejects rejects;
  InputRange range;
  range.path = pg->Url(db);
  Result<std::unique_ptr<Source>> source = OpenPostgresSource(range, *schema, options, &rejects);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  const std::vector<size_t> sizes = BatchSizes(source->get(), /*change_at=*/40, /*new_rows=*/7, /*new_bytes=*/0);
  size_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    total += sizes[i];
    if (i < 40) {
      EXPECT_LE(sizes[i], 600u / 12 + 1) << "batch " << i;  // rows are 12 to 61 bytes
    } else if (i + 1 < sizes.size()) {
      EXPECT_EQ(sizes[i], 7u) << "batch " << i;
    }
  }
  EXPECT_EQ(total, 5000u);
}

TEST(PostgresSourceTest, QueryColumnsFilterAndParameters) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t AS SELECT g AS id, g * 0.5 AS x, 'n' || g AS \"Name\" FROM generate_series(1, 100) g");
  SourceOptions options;
  options.format = InputFormat::kPostgres;
  options.query = "SELECT id, x, \"Name\" FROM t WHERE x > 10 -- a comment\n;  ";
  options.columns = {"Name", "id"};
  InputRange range;
  range.filter = "id >= ? AND \"Name\" <> '?' AND id < ?";
  range.params = {int64_t{30}, int64_t{33}};
  range.label = "id 30-32";
  ReadOutput out = Read(pg->Url(db), options, range);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.schema, Schema({{"Name", DataType::kString}, {"id", DataType::kInt64}}));
  EXPECT_EQ(out.rows, (std::vector<std::string>{"n30|30", "n31|31", "n32|32"}));
}

TEST(PostgresSourceTest, DeclaredTypesAreServerCasts) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t (id integer, code text, x integer); INSERT INTO t VALUES (1, '17', 3), (2, 'abc', 4)");
  SourceOptions options = TableOptions("t");
  options.declared_types = {{"id", DataType::kString}, {"x", DataType::kFloat64}};
  ReadOutput out = Read(pg->Url(db), options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.schema, Schema({{"id", DataType::kString}, {"code", DataType::kString}, {"x", DataType::kFloat64}}));
  EXPECT_EQ(out.rows, (std::vector<std::string>{"1|17|3", "2|abc|4"}));

  // A value the server cannot cast fails the range, naming the cast columns.
  options.declared_types = {{"code", DataType::kInt64}};
  out = Read(pg->Url(db), options);
  EXPECT_EQ(out.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status.message().find("table t"), std::string::npos) << out.status.message();
  EXPECT_NE(out.status.message().find("input.schema types: code"), std::string::npos) << out.status.message();
}

TEST(PostgresSourceTest, SamplingMatchesTheCsvSource) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t AS SELECT g AS id, g % 7 AS x FROM generate_series(1, 2000) g");
  SourceOptions options = TableOptions("t");
  options.sample = 0.3;
  options.sample_keys = {"id"};
  ReadOutput out = Read(pg->Url(db), options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();

  // The same rows as CSV, sampled by the CSV reader: the same rows are kept.
  std::unique_ptr<Env> env = NewMemEnv();
  std::string csv = "id,x\n";
  for (int id = 1; id <= 2000; ++id) csv += std::to_string(id) + "," + std::to_string(id % 7) + "\n";
  WriteFile(env.get(), "/t.csv", csv);
  SourceOptions csv_options = options;
  csv_options.format = InputFormat::kCsv;
  ReadOutput expected = InferAndRead(
      InputRange("/t.csv"), [&](const std::string& p) { return InferCsvSchema(env.get(), p, csv_options); },
      [&](const InputRange& r, const Schema& s, RejectSink* rj) { return OpenCsvSource(env.get(), r, s, csv_options, rj); });
  ASSERT_TRUE(expected.status.ok());
  EXPECT_EQ(out.rows, expected.rows);
  EXPECT_GT(out.rows.size(), 450u);
  EXPECT_LT(out.rows.size(), 750u);
}

TEST(PostgresSourceTest, InfiniteTimestampsAreRejectedRows) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t (id int, ts timestamptz, d date); INSERT INTO t VALUES (1, now(), '2024-01-01'), "
              "(2, 'infinity', '2024-01-01'), (3, '2024-01-01', '-infinity'), (4, '2024-01-01', '2024-01-01')");
  InputRange range;
  range.label = "all rows";
  ReadOutput out = Read(pg->Url(db, /*with_password=*/true), TableOptions("t"), range);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.lines, (std::vector<int64_t>{1, 4}));
  ASSERT_EQ(out.rejects.size(), 2u);
  const std::string file = RedactConnection(pg->Url(db, true)) + " table t";
  EXPECT_EQ(out.rejects[0].reason, "bad_value");
  EXPECT_EQ(out.rejects[0].line, 2);
  EXPECT_EQ(out.rejects[0].column, "ts");
  EXPECT_EQ(out.rejects[0].value, "infinity");
  EXPECT_EQ(out.rejects[0].file, file);
  EXPECT_EQ(out.rejects[0].message,
            "input '" + file + "' all rows row 2, column 'ts': an infinite timestamp has no timestamp value");
  EXPECT_EQ(out.rejects[1].line, 3);
  EXPECT_EQ(out.rejects[1].column, "d");
  EXPECT_EQ(out.rejects[1].value, "-infinity");
  for (const Reject& r : out.rejects) EXPECT_EQ(r.message.find(pg->password()), std::string::npos) << r.message;
}

TEST(PostgresSourceTest, ErrorsNameTheInputAndHideThePassword) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE t (id int, id2 int)");
  const std::string url = pg->Url(db, /*with_password=*/true);
  const std::string shown = RedactConnection(url);

  Result<Schema> missing = InferPostgresSchema(url, TableOptions("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "input.table 'nope' in " + shown + ": relation \"nope\" does not exist");

  SourceOptions query;
  query.format = InputFormat::kPostgres;
  query.query = "SELEC 1";
  Result<Schema> bad = InferPostgresSchema(url, query);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().rfind("input.query in " + shown + ": syntax error", 0), 0u) << bad.status().message();

  query.query = "SELECT id, id2 AS id FROM t";
  Result<Schema> twice = InferPostgresSchema(url, query);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("column 'id' appears twice"), std::string::npos) << twice.status().message();

  // Nothing listens on port 1.
  const std::string dead = "postgresql://sluice:" + pg->password() + "@127.0.0.1:1/" + db;
  Result<Schema> unreachable = InferPostgresSchema(dead, TableOptions("t"));
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(unreachable.status().message().rfind("input.path: cannot connect to " + RedactConnection(dead) + ": ", 0), 0u)
      << unreachable.status().message();
  for (const Status& st : {missing.status(), bad.status(), unreachable.status()}) {
    EXPECT_EQ(st.message().find(pg->password()), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace sluice
