// The SQLite reader: declared and inferred types, values by storage class,
// rejects with their location, filters with bound parameters, batch limits,
// sampling like the CSV reader, errors naming the table or query, and the
// sluice_bucket function against the output layout's HashBucket.
#include "source/sqlite_source.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "batch/value_parse.h"
#include "db/sqlite_test_util.h"
#include "sink/partition_layout.h"
#include "sluice/env.h"
#include "source/source_test_util.h"

namespace sluice {
namespace {

SourceOptions TableOptions(const std::string& table) {
  SourceOptions options;
  options.format = InputFormat::kSqlite;
  options.table = table;
  return options;
}

ReadOutput Read(const InputRange& range, const SourceOptions& options) {
  Result<Schema> schema = InferSqliteSchema(range.path, options);
  if (!schema.ok()) {
    ReadOutput out;
    out.status = schema.status();
    return out;
  }
  return ReadAll([&](RejectSink* rejects) { return OpenSqliteSource(range, *schema, options, rejects); });
}

std::string Micros(std::string_view text) { return std::to_string(*ParseTimestamp(text)); }

TEST(SqliteSourceTest, DeclaredTypesValuesAndNulls) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE t (id INTEGER PRIMARY KEY, amount REAL, name VARCHAR(20), ok BOOLEAN, ts TIMESTAMP, "
          "day DATE, price NUMERIC, n BIGINT);"
          "INSERT INTO t VALUES (1, 2.5, 'a', 1, '2024-01-05T10:00:00Z', '2024-01-05', 3, 7);"
          "INSERT INTO t VALUES (2, 3, 'b', 0, '2024-01-05 11:30:00', '2024-02-29', 4.25, -1);"
          "INSERT INTO t VALUES (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
          "INSERT INTO t VALUES (4, -1e300, '', 'true', '2024-01-05T12:00:00.123456+01:00', '1969-12-31', 1, 9);");
  const ReadOutput out = Read(InputRange{db}, TableOptions("t"));
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  const Schema expected({{"id", DataType::kInt64},
                         {"amount", DataType::kFloat64},
                         {"name", DataType::kString},
                         {"ok", DataType::kBool},
                         {"ts", DataType::kTimestamp},
                         {"day", DataType::kTimestamp},
                         {"price", DataType::kFloat64},
                         {"n", DataType::kInt64}});
  EXPECT_EQ(out.schema, expected);
  EXPECT_EQ(out.rows, (std::vector<std::string>{
                          "1|2.5|a|true|" + Micros("2024-01-05T10:00:00Z") + "|" + Micros("2024-01-05") + "|3|7",
                          "2|3|b|false|" + Micros("2024-01-05T11:30:00Z") + "|" + Micros("2024-02-29") + "|4.25|-1",
                          "3|<null>|<null>|<null>|<null>|<null>|<null>|<null>",
                          "4|-1e+300||true|" + Micros("2024-01-05T11:00:00.123456Z") + "|" + Micros("1969-12-31") +
                              "|1|9"}));
  EXPECT_EQ(out.lines, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(out.rejects.empty());
  EXPECT_GT(out.bytes_read, 0u);
}

TEST(SqliteSourceTest, UndeclaredColumnsAreInferredFromStorageClasses) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE t (a, b, c, d, e, f);"
          "INSERT INTO t VALUES (1, 1, 'x', '2024-01-05', NULL, 1);"
          "INSERT INTO t VALUES (2, 2.5, 'y', '2024-01-06 10:00:00', NULL, 'z');");
  Result<Schema> schema = InferSqliteSchema(db, TableOptions("t"));
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(*schema, Schema({{"a", DataType::kInt64},
                             {"b", DataType::kFloat64},
                             {"c", DataType::kString},
                             {"d", DataType::kTimestamp},
                             {"e", DataType::kFloat64},
                             {"f", DataType::kString}}));
  // The mixed column reads its INTEGER as decimal text.
  SourceOptions options = TableOptions("t");
  options.columns = {"f", "b"};
  const ReadOutput out = Read(InputRange{db}, options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.rows, (std::vector<std::string>{"1|1", "z|2.5"}));
}

TEST(SqliteSourceTest, QueryColumnsTakeDeclaredTypesOrAreInferred) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE t (id INTEGER, x REAL, ts TIMESTAMP, name TEXT);"
          "INSERT INTO t VALUES (1, 0.5, '2024-01-05', 'a'), (2, 1.5, '2024-01-06', 'b'), (3, 2.5, NULL, 'c');");
  SourceOptions options;
  options.format = InputFormat::kSqlite;
  options.query = "SELECT id, x * 2 AS x2, ts, upper(name) AS up, id + 1 AS next FROM t WHERE id < 3 ;\n";
  const ReadOutput out = Read(InputRange{db}, options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.schema, Schema({{"id", DataType::kInt64},
                                {"x2", DataType::kFloat64},
                                {"ts", DataType::kTimestamp},
                                {"up", DataType::kString},
                                {"next", DataType::kInt64}}));
  EXPECT_EQ(out.rows, (std::vector<std::string>{"1|1|" + Micros("2024-01-05") + "|A|2",
                                                "2|3|" + Micros("2024-01-06") + "|B|3"}));
}

TEST(SqliteSourceTest, DeclaredSchemaWins) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  // As the sqlite3 shell's .import makes them: every column TEXT.
  ExecSql(db,
          "CREATE TABLE t (code INTEGER, x TEXT, flag TEXT);"
          "INSERT INTO t VALUES (42, '3.5', 'yes'), (7, ' 1e3 ', 'no');");
  SourceOptions options = TableOptions("t");
  options.declared_types = {{"code", DataType::kString}, {"x", DataType::kFloat64}, {"flag", DataType::kBool}};
  const ReadOutput out = Read(InputRange{db}, options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.schema, Schema({{"code", DataType::kString}, {"x", DataType::kFloat64}, {"flag", DataType::kBool}}));
  EXPECT_EQ(out.rows, (std::vector<std::string>{"42|3.5|true", "7|1000|false"}));
}

TEST(SqliteSourceTest, ValuesOfTheWrongStorageClassRejectTheRowWithItsLocation) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE t (id INTEGER, n INTEGER, ok BOOLEAN, ts TIMESTAMP, name TEXT, x REAL);"
          "INSERT INTO t VALUES (1, 10, 1, '2024-01-05', 'fine', 1.5);"
          "INSERT INTO t VALUES (2, 'abc', 1, '2024-01-05', 'a', 1);"     // text in an INTEGER column
          "INSERT INTO t VALUES (3, 2.5, 1, '2024-01-05', 'a', 1);"       // REAL in an INTEGER column
          "INSERT INTO t VALUES (4, 1, 2, '2024-01-05', 'a', 1);"         // 2 in a BOOLEAN column
          "INSERT INTO t VALUES (5, 1, 0, 1704448800, 'a', 1);"           // INTEGER in a TIMESTAMP column
          "INSERT INTO t VALUES (6, 1, 0, 'soon', 'a', 1);"               // text that is no timestamp
          "INSERT INTO t VALUES (7, 1, 0, '2024-01-05', CAST(x'ff41' AS TEXT), 1);"  // not UTF-8
          "INSERT INTO t VALUES (8, 1, 0, '2024-01-05', 'a', x'0102');"   // a BLOB
          "INSERT INTO t VALUES (9, 3, 0, '2024-01-05', 'last', 'NaN?');");  // text in a REAL column
  InputRange range{db};
  range.filter = "\"id\" >= ?";
  range.params = {int64_t{1}};
  range.label = "rowid 1-9";
  const ReadOutput out = Read(range, TableOptions("t"));
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(out.lines, (std::vector<int64_t>{1}));
  const std::vector<ExpectedReject> expected = {
      {2, "bad_value", "n"}, {3, "bad_value", "n"},  {4, "bad_value", "ok"},          {5, "bad_value", "ts"},
      {6, "bad_value", "ts"}, {7, "invalid_utf8", "name"}, {8, "bad_value", "x"}, {9, "bad_value", "x"}};
  ASSERT_EQ(out.rejects.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const Reject& r = out.rejects[i];
    EXPECT_EQ(r.line, expected[i].line);
    EXPECT_EQ(r.reason, expected[i].reason);
    EXPECT_EQ(r.column, expected[i].column);
    EXPECT_EQ(r.file, db + " table t");
    EXPECT_EQ(r.message.find('\n'), std::string::npos);
    EXPECT_EQ(r.message.rfind("input '" + db + " table t' rowid 1-9 row " + std::to_string(r.line) + ", column '" +
                                  r.column + "': ",
                              0),
              0u)
        << r.message;
  }
  EXPECT_NE(out.rejects[0].message.find("cannot read TEXT value 'abc' as int64 (declared INTEGER"), std::string::npos)
      << out.rejects[0].message;
  EXPECT_EQ(out.rejects[0].value, "abc");
  EXPECT_NE(out.rejects[6].message.find("BLOB"), std::string::npos) << out.rejects[6].message;
}

TEST(SqliteSourceTest, FilterParametersAreBoundAndTableRowsComeInRowidOrder) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db, "CREATE TABLE t (k TEXT, v INTEGER); CREATE INDEX t_k ON t(k);"
              "INSERT INTO t VALUES ('b', 1), ('a', 2), ('b''; DROP TABLE t; --', 3), ('b', 4);");
  for (const std::string& key : {std::string("b"), std::string("b'; DROP TABLE t; --")}) {
    InputRange range{db};
    range.filter = "\"k\" = ?";
    range.params = {key};
    SourceOptions options = TableOptions("t");
    options.columns = {"v"};
    const ReadOutput out = Read(range, options);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    const std::vector<std::string> expected = key == "b" ? std::vector<std::string>{"1", "4"} : std::vector<std::string>{"3"};
    EXPECT_EQ(out.rows, expected);
  }
  InputRange nulls{db};
  nulls.filter = "\"v\" IS ?";
  nulls.params = {std::monostate{}};
  EXPECT_TRUE(Read(nulls, TableOptions("t")).rows.empty());
  EXPECT_EQ(QuerySql(db, "SELECT count(*) FROM t"), std::vector<std::string>{"4"});
}

TEST(SqliteSourceTest, BatchesEndAtRowsOrBytes) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db, "CREATE TABLE t (id INTEGER, s TEXT);"
              "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
              "INSERT INTO t SELECT i, printf('%.92c', 'x') FROM n;");
  SourceOptions options = TableOptions("t");
  options.batch_rows = 30;
  Result<Schema> schema = InferSqliteSchema(db, options);
  ASSERT_TRUE(schema.ok());
  CollectRejects rejects;
  Result<std::unique_ptr<Source>> source = OpenSqliteSource(InputRange{db}, *schema, options, &rejects);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  // 100 bytes a row (8 for the number, 92 of text): 1000 bytes end a batch at 10 rows.
  EXPECT_EQ(BatchSizes(source->get(), 2, 30, 1000), (std::vector<size_t>{30, 30, 10, 10, 10, 10}));
  EXPECT_EQ((*source)->bytes_read(), 100u * 100u);
}

TEST(SqliteSourceTest, SamplingKeepsTheRowsTheCsvReaderKeeps) {
  TempDir dir;
  auto env = NewMemEnv();
  std::string csv = "id,name\n";
  std::string sql = "CREATE TABLE t (id INTEGER, name TEXT); INSERT INTO t VALUES ";
  for (int row = 0; row < 3000; ++row) {
    csv += std::to_string(row) + ",n" + std::to_string(row) + "\n";
    sql += (row > 0 ? ",(" : "(") + std::to_string(row) + ",'n" + std::to_string(row) + "')";
  }
  WriteFile(env.get(), "t.csv", csv);
  const std::string db = dir.File("in.db");
  ExecSql(db, sql);
  for (const auto& keys : {std::vector<std::string>{"id"}, std::vector<std::string>{"name", "id"}}) {
    SourceOptions options = TableOptions("t");
    options.sample = 0.3;
    options.sample_keys = keys;
    SourceOptions csv_options = options;
    csv_options.format = InputFormat::kCsv;
    const ReadOutput from_db = Read(InputRange{db}, options);
    const ReadOutput from_csv = InferAndRead(
        InputRange{"t.csv"}, [&](const std::string& p) { return InferSchema(env.get(), p, csv_options); },
        [&](const InputRange& r, const Schema& s, RejectSink* rj) { return OpenSource(env.get(), r, s, csv_options, rj); });
    ASSERT_TRUE(from_db.status.ok()) << from_db.status.ToString();
    EXPECT_EQ(from_db.rows, from_csv.rows);
    EXPECT_GT(from_db.rows.size(), 700u);
    EXPECT_LT(from_db.rows.size(), 1100u);
  }
}

TEST(SqliteSourceTest, ErrorsNameTheTableOrQueryAndTheDatabase) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db, "CREATE TABLE t (a INTEGER, b INTEGER);");
  const auto infer = [](const std::string& path, const std::string& table, const std::string& query) {
    SourceOptions options;
    options.format = InputFormat::kSqlite;
    options.table = table;
    options.query = query;
    return InferSqliteSchema(path, options).status();
  };
  Status st = infer(db, "nope", "");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "input.table 'nope': SQLite database '" + db + "': no such table: nope");
  st = infer(dir.File("missing.db"), "t", "");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("missing.db"), std::string::npos) << st.message();
  st = infer(db, "", "SELEC a FROM t");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message().rfind("input.query: SQLite database '" + db + "': near \"SELEC\": syntax error", 0), 0u)
      << st.message();
  EXPECT_NE(infer(db, "", "SELECT a FROM t; DROP TABLE t").message().find("more than one SQL statement"),
            std::string::npos);
  EXPECT_NE(infer(db, "", "SELECT a, b AS a FROM t").message().find("two result columns are named 'a'"),
            std::string::npos);
  EXPECT_NE(infer(db, "", "PRAGMA user_version = 3").message().find("returns no rows"), std::string::npos);
  WriteFile(Env::Default(), dir.File("junk.db"), "this is not a database, just some text for the header page");
  st = infer(dir.File("junk.db"), "t", "");
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("file is not a database"), std::string::npos) << st.message();
  // Read-only: a query that writes fails, and the table is intact.
  st = infer(db, "", "INSERT INTO t VALUES (1, 2) RETURNING a");
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(QuerySql(db, "SELECT * FROM t").empty());
}

TEST(SqliteSourceTest, RowidNameViewsAndWithoutRowidTables) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db,
          "CREATE TABLE plain (a INTEGER);"
          "CREATE TABLE shadow (rowid TEXT, a INTEGER);"
          "CREATE TABLE keyed (k INTEGER PRIMARY KEY, a INTEGER) WITHOUT ROWID;"
          "CREATE VIEW v AS SELECT a FROM plain;");
  const auto rowid = [&](const std::string& table) {
    Result<SqliteInput> in = OpenSqliteInput(db, table, "");
    EXPECT_TRUE(in.ok()) << in.status().ToString();
    return in.ok() ? in->rowid : "?";
  };
  EXPECT_EQ(rowid("plain"), "rowid");
  EXPECT_EQ(rowid("shadow"), "_rowid_");
  EXPECT_EQ(rowid("keyed"), "");
  EXPECT_EQ(rowid("v"), "");
  Result<SqliteInput> query = OpenSqliteInput(db, "", "SELECT a FROM plain");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->rowid, "");
  EXPECT_EQ(query->from, "(SELECT a FROM plain)");
}

TEST(SqliteSourceTest, BucketFunctionAgreesWithTheOutputLayout) {
  TempDir dir;
  const std::string db = dir.File("in.db");
  ExecSql(db, "CREATE TABLE t (a INTEGER);");
  Result<SqliteInput> in = OpenSqliteInput(db, "t", "");
  ASSERT_TRUE(in.ok());
  Result<SqliteStmt> stmt = in->db->Prepare("SELECT sluice_bucket(?, ?, ?)");
  ASSERT_TRUE(stmt.ok());
  struct Case {
    DataType type;
    SqlParam sql_value;
    Column column;
  };
  std::vector<Case> cases;
  const auto add = [&](DataType type, SqlParam v, auto append) {
    Column c(type);
    append(&c);
    cases.push_back({type, std::move(v), std::move(c)});
  };
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-5}, int64_t{123456789012}}) {
    add(DataType::kInt64, v, [&](Column* c) { c->AppendInt64(v); });
    add(DataType::kFloat64, v, [&](Column* c) { c->AppendFloat64(static_cast<double>(v)); });
    add(DataType::kString, std::to_string(v), [&](Column* c) { c->AppendString(std::to_string(v)); });
  }
  add(DataType::kFloat64, 2.75, [](Column* c) { c->AppendFloat64(2.75); });
  add(DataType::kFloat32, 0.1, [](Column* c) { c->AppendFloat32(0.1f); });
  add(DataType::kBool, int64_t{1}, [](Column* c) { c->AppendBool(true); });
  add(DataType::kBool, int64_t{0}, [](Column* c) { c->AppendBool(false); });
  add(DataType::kTimestamp, std::string("2024-01-05T10:00:00.000000Z"),
      [](Column* c) { c->AppendInt64(*ParseTimestamp("2024-01-05T10:00:00Z")); });
  add(DataType::kString, std::string("travel"), [](Column* c) { c->AppendString("travel"); });
  add(DataType::kString, std::monostate{}, [](Column* c) { c->AppendNull(); });
  for (const int buckets : {1, 7, 16}) {
    for (const Case& c : cases) {
      stmt->Reset();
      ASSERT_TRUE(stmt->Bind(1, c.sql_value).ok());
      const std::string type(DataTypeName(c.type));
      ASSERT_TRUE(stmt->BindText(2, type).ok());
      ASSERT_TRUE(stmt->BindInt64(3, buckets).ok());
      Result<bool> row = stmt->Step();
      ASSERT_TRUE(row.ok() && *row) << row.status().ToString();
      EXPECT_EQ(static_cast<uint64_t>(stmt->ColumnInt64(0)), HashBucket(c.column, 0, buckets)) << type;
    }
  }
}

}  // namespace
}  // namespace sluice
