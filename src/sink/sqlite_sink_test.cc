// The SQLite table sink, checked through SQLite itself (sqlite_test_util.h)
// and the SQLite source: types and NULLs, nothing visible before commit, abort,
// duplicate commits, upsert, overwrite and its resume, preflight checks, a
// busy database (transient, retried), concurrent writers.
#include "sink/sqlite_sink.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "batch/value_parse.h"
#include "db/sqlite_test_util.h"
#include "plan/planner.h"
#include "source/source_test_util.h"
#include "source/sqlite_source.h"

namespace sluice {
namespace {

OutputSpec Output(const std::string& db, OutputMode mode = OutputMode::kAppend) {
  OutputSpec output;
  output.format = OutputFormat::kSqlite;
  output.database = db;
  output.table = "preds";
  output.mode = mode;
  output.keys = {"id"};
  return output;
}

const Schema kSchema({{"id", DataType::kInt64}, {"score", DataType::kFloat64}});

// Rows (id, id / 10.0) for ids in [first, last].
Batch Rows(int64_t first, int64_t last, double offset = 0) {
  Batch batch;
  batch.Reset(kSchema);
  for (int64_t id = first; id <= last; ++id) {
    batch.columns[0].AppendInt64(id);
    batch.columns[1].AppendFloat64(static_cast<double>(id) / 10 + offset);
  }
  return batch;
}

std::unique_ptr<TableSink> OpenSink(const OutputSpec& output, const std::string& job = "job-a",
                                    const SqliteSinkOptions& options = {}) {
  Result<std::unique_ptr<TableSink>> sink = OpenSqliteTableSink(output, job, options);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  return sink.ok() ? std::move(*sink) : nullptr;
}

// Writes `batch` as unit `unit` and commits it; the Commit result.
Result<bool> CommitUnit(TableSink* sink, const std::string& unit, const Batch& batch) {
  ASSIGN_OR_RETURN(std::unique_ptr<TableUnitWriter> writer, sink->OpenUnit(unit));
  RETURN_IF_ERROR(writer->Write(batch));
  return writer->Commit("{\"unit\":\"" + unit + "\",\"rows\":" + std::to_string(batch.num_rows()) + "}");
}

std::string Count(const std::string& db, const std::string& sql) { return QuerySql(db, sql).at(0); }

// The progress row's marker of `unit`, "<none>" without one, "<error …>" on failure.
std::string Marker(TableSink* sink, const std::string& unit) {
  Result<std::optional<std::string>> marker = sink->CommittedMarker(unit);
  if (!marker.ok()) return "<error " + marker.status().ToString() + ">";
  return marker->value_or("<none>");
}

TEST(SqliteSinkTest, EveryTypeAndNullsRoundTrip) {
  TempDir dir;
  const std::string db = dir.File("sub/out.db");  // the directory is created too
  const Schema schema({{"id", DataType::kInt64},
                       {"p32", DataType::kFloat32},
                       {"p64", DataType::kFloat64},
                       {"ok", DataType::kBool},
                       {"name", DataType::kString},
                       {"ts", DataType::kTimestamp}});
  Batch batch;
  batch.Reset(schema);
  const int64_t ts = *ParseTimestamp("2024-01-05T10:00:00.5Z");
  batch.columns[0].AppendInt64(std::numeric_limits<int64_t>::min());
  batch.columns[1].AppendFloat32(0.1f);
  batch.columns[2].AppendFloat64(1e-300);
  batch.columns[3].AppendBool(true);
  batch.columns[4].AppendString("it's \"quoted\"; DROP TABLE preds; --");
  batch.columns[5].AppendInt64(ts);
  for (Column& c : batch.columns) c.AppendNull();
  batch.columns[0].AppendInt64(7);
  batch.columns[1].AppendFloat32(std::nanf(""));
  batch.columns[2].AppendFloat64(-0.0);
  batch.columns[3].AppendBool(false);
  batch.columns[4].AppendString("");
  batch.columns[5].AppendInt64(-1);

  OutputSpec output = Output(db);
  auto sink = OpenSink(output);
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->PrepareTable(schema).ok());
  EXPECT_EQ(QuerySql(db, "SELECT name, type FROM pragma_table_info('preds')"),
            (std::vector<std::string>{"id|INTEGER", "p32|REAL", "p64|REAL", "ok|BOOLEAN", "name|TEXT", "ts|TIMESTAMP"}));
  EXPECT_EQ(QuerySql(db, "PRAGMA journal_mode"), std::vector<std::string>{"wal"});
  Result<bool> committed = CommitUnit(sink.get(), "00000", batch);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_TRUE(*committed);
  EXPECT_EQ(QuerySql(db, "SELECT typeof(id), id, typeof(p32), p32 = 0.1, typeof(ok), ok, name, ts FROM preds "
                         "ORDER BY rowid"),
            (std::vector<std::string>{
                "integer|-9223372036854775808|real|1|integer|1|it's \"quoted\"; DROP TABLE preds; --|"
                "2024-01-05T10:00:00.500000Z",
                "null|<null>|null|<null>|null|<null>|<null>|<null>",
                "integer|7|null|<null>|integer|0||1969-12-31T23:59:59.999999Z"}));
  EXPECT_EQ(QuerySql(db, "SELECT job, unit, tbl, marker FROM sluice_units"),
            std::vector<std::string>{"job-a|00000|preds|{\"unit\":\"00000\",\"rows\":3}"});

  // The SQLite source reads the table back with the same types and values.
  SourceOptions options;
  options.format = InputFormat::kSqlite;
  options.table = "preds";
  Result<Schema> read_schema = InferSqliteSchema(db, options);
  ASSERT_TRUE(read_schema.ok());
  EXPECT_EQ(*read_schema, Schema({{"id", DataType::kInt64},
                                  {"p32", DataType::kFloat64},
                                  {"p64", DataType::kFloat64},
                                  {"ok", DataType::kBool},
                                  {"name", DataType::kString},
                                  {"ts", DataType::kTimestamp}}));
  const ReadOutput back =
      ReadAll([&](RejectSink* rejects) { return OpenSqliteSource(InputRange{db}, *read_schema, options, rejects); });
  ASSERT_TRUE(back.status.ok()) << back.status.ToString();
  EXPECT_EQ(back.rows, (std::vector<std::string>{
                           "-9223372036854775808|0.1|1e-300|true|it's \"quoted\"; DROP TABLE preds; --|" +
                               std::to_string(ts),
                           // SQLite keeps a REAL column's integral values as integers on disk: -0.0 comes back 0.
                           "<null>|<null>|<null>|<null>|<null>|<null>", "7|<null>|0|false||-1"}));
}

TEST(SqliteSinkTest, RowsAppearOnlyOnCommitAndAbortDropsThem) {
  TempDir dir;
  const std::string db = dir.File("out.db");
  auto sink = OpenSink(Output(db));
  ASSERT_TRUE(sink->PrepareTable(kSchema).ok());
  Result<std::unique_ptr<TableUnitWriter>> writer = sink->OpenUnit("00000");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(Rows(1, 1000)).ok());
  ASSERT_TRUE((*writer)->Write(Rows(1001, 1500)).ok());
  EXPECT_EQ((*writer)->rows_written(), 1500);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM preds"), "0");  // staged in the writer's TEMP table only
  (*writer)->Abort();
  (*writer)->Abort();
  EXPECT_FALSE((*writer)->Write(Rows(1, 1)).ok());
  {
    Result<std::unique_ptr<TableUnitWriter>> dropped = sink->OpenUnit("00001");
    ASSERT_TRUE(dropped.ok());
    ASSERT_TRUE((*dropped)->Write(Rows(1, 10)).ok());
  }  // destroyed without Commit
  EXPECT_EQ(Count(db, "SELECT count(*) FROM preds"), "0");
  EXPECT_EQ(Count(db, "SELECT count(*) FROM sluice_units"), "0");
  EXPECT_EQ(Marker(sink.get(), "00000"), "<none>");
  ASSERT_TRUE(CommitUnit(sink.get(), "00000", Rows(1, 1500)).ok());
  EXPECT_EQ(Count(db, "SELECT count(*) || ',' || count(DISTINCT id) || ',' || min(id) || ',' || max(id) FROM preds"),
            "1500,1500,1,1500");
}

TEST(SqliteSinkTest, ASecondCommitOfAUnitIsRefusedAndDropsItsRows) {
  TempDir dir;
  const std::string db = dir.File("out.db");
  auto sink = OpenSink(Output(db));
  ASSERT_TRUE(sink->PrepareTable(kSchema).ok());
  // Two attempts of the same unit are open at once; the first to commit wins.
  Result<std::unique_ptr<TableUnitWriter>> first = sink->OpenUnit("00003");
  Result<std::unique_ptr<TableUnitWriter>> second = sink->OpenUnit("00003");
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE((*first)->Write(Rows(1, 5)).ok());
  ASSERT_TRUE((*second)->Write(Rows(1, 5, 100)).ok());
  Result<bool> a = (*first)->Commit("{\"first\":true}");
  Result<bool> b = (*second)->Commit("{\"first\":false}");
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
  EXPECT_TRUE(*a);
  EXPECT_FALSE(*b);
  EXPECT_EQ(Count(db, "SELECT count(*) || ',' || max(score) FROM preds"), "5,0.5");
  EXPECT_EQ(Marker(sink.get(), "00003"), "{\"first\":true}");
  // Another job's progress is its own.
  auto other = OpenSink(Output(db), "job-b");
  EXPECT_EQ(Marker(other.get(), "00003"), "<none>");
}

TEST(SqliteSinkTest, UpsertReplacesRowsByKey) {
  TempDir dir;
  const std::string db = dir.File("out.db");
  auto sink = OpenSink(Output(db, OutputMode::kUpsert));
  ASSERT_TRUE(sink->PrepareTable(kSchema).ok());
  EXPECT_EQ(QuerySql(db, "SELECT name, \"unique\" FROM pragma_index_list('preds')"),
            std::vector<std::string>{"preds_sluice_keys|1"});
  ASSERT_TRUE(CommitUnit(sink.get(), "00000", Rows(1, 3)).ok());
  Batch again = Rows(2, 4, 100);
  again.columns[0].AppendInt64(4);  // a key twice in one unit: the later row wins
  again.columns[1].AppendFloat64(-1);
  ASSERT_TRUE(CommitUnit(sink.get(), "00001", again).ok());
  EXPECT_EQ(QuerySql(db, "SELECT id, score FROM preds ORDER BY id"),
            (std::vector<std::string>{"1|0.1", "2|100.2", "3|100.3", "4|-1.0"}));

  // Rows that repeat a key already: the index cannot be made.
  const std::string dup = dir.File("dup.db");
  ExecSql(dup, "CREATE TABLE preds (id INTEGER, score REAL); INSERT INTO preds VALUES (1, 0), (1, 1);");
  auto dup_sink = OpenSink(Output(dup, OutputMode::kUpsert));
  const Status st = dup_sink->PrepareTable(kSchema);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("output.table 'preds' in SQLite database '" + dup +
                              "': cannot create the unique index on output.keys (id)"),
            std::string::npos)
      << st.message();
}

TEST(SqliteSinkTest, OverwriteEmptiesTheTableOncePerJob) {
  TempDir dir;
  const std::string db = dir.File("out.db");
  ExecSql(db, "CREATE TABLE preds (id INTEGER, score REAL); INSERT INTO preds VALUES (-1, 0), (-2, 0);");
  {
    auto earlier = OpenSink(Output(db), "job-0");  // an append job that ran before
    ASSERT_TRUE(earlier->PrepareTable(kSchema).ok());
    ASSERT_TRUE(CommitUnit(earlier.get(), "00000", Rows(100, 101)).ok());
  }
  auto a = OpenSink(Output(db, OutputMode::kOverwrite), "job-a");
  ASSERT_TRUE(a->PrepareTable(kSchema).ok());
  EXPECT_EQ(Count(db, "SELECT count(*) FROM preds"), "0");
  EXPECT_EQ(QuerySql(db, "SELECT job || ':' || unit FROM sluice_units"), std::vector<std::string>{"job-a:"});
  ASSERT_TRUE(CommitUnit(a.get(), "00000", Rows(1, 10)).ok());

  // A resumed run (or another shard) of the same job keeps what is committed.
  auto resumed = OpenSink(Output(db, OutputMode::kOverwrite), "job-a");
  ASSERT_TRUE(resumed->PrepareTable(kSchema).ok());
  ASSERT_TRUE(CommitUnit(resumed.get(), "00001", Rows(11, 20)).ok());
  EXPECT_EQ(Count(db, "SELECT count(*) FROM preds"), "20");

  // Another job starts over: the table and job-a's progress go.
  auto b = OpenSink(Output(db, OutputMode::kOverwrite), "job-b");
  ASSERT_TRUE(b->PrepareTable(kSchema).ok());
  EXPECT_EQ(Count(db, "SELECT count(*) FROM preds"), "0");
  EXPECT_EQ(QuerySql(db, "SELECT job || ':' || unit FROM sluice_units"), std::vector<std::string>{"job-b:"});
  EXPECT_EQ(Marker(a.get(), "00000"), "<none>");
}

TEST(SqliteSinkTest, PreflightChecksTheExistingTableReadOnly) {
  TempDir dir;
  const std::string missing = dir.File("new/out.db");
  EXPECT_TRUE(CheckSqliteTableSink(Output(missing), kSchema).ok());
  EXPECT_FALSE(std::filesystem::exists(dir.File("new")));

  const std::string db = dir.File("out.db");
  ExecSql(db,
          "CREATE TABLE fits (ID INTEGER PRIMARY KEY, score DOUBLE, note TEXT, seen TEXT NOT NULL DEFAULT 'x');"
          "CREATE TABLE anything (id, score);"
          "CREATE TABLE texty (id INTEGER, score TEXT);"
          "CREATE TABLE narrow (id INTEGER);"
          "CREATE TABLE strict (id INTEGER, score REAL, must TEXT NOT NULL);"
          "CREATE VIEW v AS SELECT 1 AS id, 2.0 AS score;");
  const auto check = [&](const std::string& table) {
    OutputSpec output = Output(db);
    output.table = table;
    return CheckSqliteTableSink(output, kSchema);
  };
  EXPECT_TRUE(check("fits").ok()) << check("fits").ToString();
  EXPECT_TRUE(check("anything").ok());
  EXPECT_TRUE(check("absent").ok());
  const std::string prefix = "output.table '";
  EXPECT_EQ(check("texty").message(), prefix + "texty' in SQLite database '" + db +
                                          "': column 'score' is TEXT, which cannot hold float64 values; drop the table "
                                          "or choose another output.table");
  EXPECT_EQ(check("narrow").message(), prefix + "narrow' in SQLite database '" + db +
                                           "': has no column 'score' (columns: id); drop the table or choose another "
                                           "output.table");
  EXPECT_NE(check("strict").message().find("column 'must' is NOT NULL without a default"), std::string::npos);
  EXPECT_NE(check("v").message().find("is a view, not a table"), std::string::npos);
  EXPECT_NE(check("sluice_units").message().find("Sluice's progress table"), std::string::npos);
  EXPECT_EQ(QuerySql(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'sluice_units'"),
            std::vector<std::string>{"0"});
}

TEST(SqliteSinkTest, ABusyDatabaseIsATransientError) {
  TempDir dir;
  const std::string db = dir.File("out.db");
  SqliteSinkOptions quick;
  quick.busy_timeout_ms = 100;
  auto sink = OpenSink(Output(db), "job-a", quick);
  ASSERT_TRUE(sink->PrepareTable(kSchema).ok());
  Result<std::unique_ptr<TableUnitWriter>> writer = sink->OpenUnit("00000");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(Rows(1, 10)).ok());
  // Another process holds the write lock past the timeout.
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  Result<bool> busy = (*writer)->Commit("{}");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(busy.status().IsTransient());
  EXPECT_NE(busy.status().message().find("output.table 'preds' in SQLite database '" + db + "', unit 00000"),
            std::string::npos)
      << busy.status().message();
  ASSERT_EQ(sqlite3_exec(holder, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(holder);
  // The retry (a new attempt of the unit) commits.
  Result<bool> retried = CommitUnit(sink.get(), "00000", Rows(1, 10));
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_TRUE(*retried);
  EXPECT_EQ(Count(db, "SELECT count(*) FROM preds"), "10");
}

TEST(SqliteSinkTest, ConcurrentWritersCommitEveryUnitOnce) {
  TempDir dir;
  const std::string db = dir.File("out.db");
  auto sink = OpenSink(Output(db));
  ASSERT_TRUE(sink->PrepareTable(kSchema).ok());
  constexpr int kThreads = 4;
  constexpr int kUnitsPerThread = 10;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int u = 0; u < kUnitsPerThread; ++u) {
        const int unit = t * kUnitsPerThread + u;
        // Every unit is attempted twice; only one attempt commits.
        for (int attempt = 0; attempt < 2; ++attempt) {
          Result<bool> r = CommitUnit(sink.get(), UnitId(unit), Rows(unit * 1000, unit * 1000 + 999));
          if (!r.ok()) errors[t] = r.status().ToString();
          if (r.ok() && *r != (attempt == 0)) errors[t] = "unit " + std::to_string(unit) + ": wrong commit result";
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(Count(db, "SELECT count(*) || ',' || count(DISTINCT id) FROM preds"), "40000,40000");
  EXPECT_EQ(Count(db, "SELECT count(*) FROM sluice_units"), "40");
}

}  // namespace
}  // namespace sluice
