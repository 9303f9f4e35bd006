// The PostgreSQL table sink against the test server; what it wrote is read
// back with plain SQL (the server's own text output), not through Sluice.
#include "sink/postgres_sink.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/strings.h"
#include "db/postgres_test_util.h"
#include "sluice/sink.h"

namespace sluice {
namespace {

OutputSpec Out(const std::string& url, const std::string& table, OutputMode mode = OutputMode::kAppend,
               std::vector<std::string> keys = {}) {
  OutputSpec o;
  o.format = OutputFormat::kPostgres;
  o.database = url;
  o.table = table;
  o.mode = mode;
  o.keys = std::move(keys);
  return o;
}

const Schema kSchema({{"id", DataType::kInt64},
                      {"f32", DataType::kFloat32},
                      {"f64", DataType::kFloat64},
                      {"b", DataType::kBool},
                      {"s", DataType::kString},
                      {"ts", DataType::kTimestamp}});

struct Row {
  std::optional<int64_t> id;
  std::optional<float> f32;
  std::optional<double> f64;
  std::optional<bool> b;
  std::optional<std::string> s;
  std::optional<int64_t> ts;
};

Batch MakeBatch(const std::vector<Row>& rows) {
  Batch batch;
  batch.Reset(kSchema);
  for (const Row& r : rows) {
    r.id ? batch.columns[0].AppendInt64(*r.id) : batch.columns[0].AppendNull();
    r.f32 ? batch.columns[1].AppendFloat32(*r.f32) : batch.columns[1].AppendNull();
    r.f64 ? batch.columns[2].AppendFloat64(*r.f64) : batch.columns[2].AppendNull();
    r.b ? batch.columns[3].AppendBool(*r.b) : batch.columns[3].AppendNull();
    r.s ? batch.columns[4].AppendString(*r.s) : batch.columns[4].AppendNull();
    r.ts ? batch.columns[5].AppendInt64(*r.ts) : batch.columns[5].AppendNull();
  }
  return batch;
}

Batch IdBatch(int64_t first, int64_t count, const std::string& text) {
  std::vector<Row> rows;
  for (int64_t id = first; id < first + count; ++id) rows.push_back({id, 1.5f, 2.5, true, text, 0});
  return MakeBatch(rows);
}

// Every row of `table` as "v|v|…" (NULL as "NULL"), in `order`.
std::vector<std::string> Rows(const TestPgServer* pg, const std::string& db, const std::string& select) {
  PgResult r = TestPgServer::Run(pg->Url(db), select);
  std::vector<std::string> rows;
  if (r == nullptr) return rows;
  for (int row = 0; row < PQntuples(r.get()); ++row) {
    std::string text;
    for (int col = 0; col < PQnfields(r.get()); ++col) {
      if (col > 0) text += '|';
      text += PQgetisnull(r.get(), row, col) ? "NULL" : PQgetvalue(r.get(), row, col);
    }
    rows.push_back(text);
  }
  return rows;
}

std::unique_ptr<TableSink> OpenPrepared(const OutputSpec& out, const std::string& fingerprint,
                                        const Schema& schema = kSchema) {
  Result<std::unique_ptr<TableSink>> sink = OpenTableSink(out, fingerprint);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  if (!sink.ok()) return nullptr;
  const Status prepared = (*sink)->PrepareTable(schema);
  EXPECT_TRUE(prepared.ok()) << prepared.ToString();
  return std::move(*sink);
}

// Writes `batches` as unit `unit` and commits; returns Commit's answer.
Result<bool> WriteUnit(TableSink* sink, const std::string& unit, const std::vector<Batch>& batches) {
  ASSIGN_OR_RETURN(std::unique_ptr<TableUnitWriter> writer, sink->OpenUnit(unit));
  for (const Batch& b : batches) RETURN_IF_ERROR(writer->Write(b));
  return writer->Commit("{\"unit\": \"" + unit + "\"}");
}

TEST(PostgresSinkTest, CreatesTheTableAndWritesEveryTypeAndNull) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  std::unique_ptr<TableSink> sink = OpenPrepared(Out(pg->Url(db), "preds"), "fp1");
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(Rows(pg, db, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                         "'preds'::regclass AND attnum > 0 ORDER BY attnum"),
            (std::vector<std::string>{"id|bigint", "f32|real", "f64|double precision", "b|boolean", "s|text",
                                      "ts|timestamp with time zone"}));
  const double inf = std::numeric_limits<double>::infinity();
  const Batch batch = MakeBatch({
      {1, 0.1f, 0.1, true, "plain", 1704449472345678},
      {2, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt},
      {3, -0.0f, 1e-300, false, "tab\there, new\nline, cr\rback\\slash \\N", -1000000},
      {4, std::nanf(""), -inf, true, "", 0},
      {5, 3.4028235e38f, inf, false, "ünïcode \"quoted\"", 253402300799999999},
  });
  Result<bool> committed = WriteUnit(sink.get(), "00000", {batch});
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_TRUE(*committed);
  EXPECT_EQ(Rows(pg, db, "SELECT id, f32, f64, b, s, (extract(epoch FROM ts) * 1000000)::int8 FROM preds ORDER BY id"),
            (std::vector<std::string>{
                "1|0.1|0.1|t|plain|1704449472345678",
                "2|NULL|NULL|NULL|NULL|NULL",
                "3|-0|1e-300|f|tab\there, new\nline, cr\rback\\slash \\N|-1000000",
                "4|NaN|-Infinity|t||0",
                "5|3.4028235e+38|Infinity|f|ünïcode \"quoted\"|253402300799999999",
            }));
  EXPECT_EQ(Rows(pg, db, "SELECT job, unit, tbl, marker, committed_at <= now() FROM sluice_units"),
            (std::vector<std::string>{"fp1|00000|preds|{\"unit\": \"00000\"}|t"}));
  Result<std::optional<std::string>> marker = sink->CommittedMarker("00000");
  ASSERT_TRUE(marker.ok());
  EXPECT_EQ(marker->value_or(""), "{\"unit\": \"00000\"}");
  marker = sink->CommittedMarker("00001");
  ASSERT_TRUE(marker.ok());
  EXPECT_FALSE(marker->has_value());
}

TEST(PostgresSinkTest, ManyBatchesStreamAndAbortLeavesNothing) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  std::unique_ptr<TableSink> sink = OpenPrepared(Out(pg->Url(db), "preds"), "fp1");
  ASSERT_NE(sink, nullptr);
  // Several COPY flushes, then Abort: neither rows nor progress row.
  {
    Result<std::unique_ptr<TableUnitWriter>> writer = sink->OpenUnit("00000");
    ASSERT_TRUE(writer.ok());
    for (int64_t b = 0; b < 20; ++b) ASSERT_TRUE((*writer)->Write(IdBatch(b * 1000, 1000, std::string(40, 'x'))).ok());
    EXPECT_EQ((*writer)->rows_written(), 20000);
    (*writer)->Abort();
    (*writer)->Abort();
  }
  {  // Destroyed without Commit.
    Result<std::unique_ptr<TableUnitWriter>> writer = sink->OpenUnit("00001");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(IdBatch(0, 10, "x")).ok());
  }
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM preds"), "0");
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM sluice_units"), "0");
  // The same unit again commits, over many batches; an empty unit commits its progress row only.
  std::vector<Batch> batches;
  for (int64_t b = 0; b < 20; ++b) batches.push_back(IdBatch(b * 1000, 1000, std::string(40, 'x')));
  Result<bool> committed = WriteUnit(sink.get(), "00000", batches);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  committed = WriteUnit(sink.get(), "00001", {});
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(pg->Value(db, "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || max(id) FROM preds"), "20000 20000 19999");
  EXPECT_EQ(pg->Value(db, "SELECT string_agg(unit, ',' ORDER BY unit) FROM sluice_units"), "00000,00001");
}

TEST(PostgresSinkTest, ASecondCommitOfAUnitIsDiscarded) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  std::unique_ptr<TableSink> sink = OpenPrepared(Out(pg->Url(db), "preds"), "fp1");
  ASSERT_NE(sink, nullptr);
  // Two attempts of one unit in flight at once (a lost answer and its retry): the first commit wins.
  Result<std::unique_ptr<TableUnitWriter>> first = sink->OpenUnit("00003");
  Result<std::unique_ptr<TableUnitWriter>> second = sink->OpenUnit("00003");
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE((*first)->Write(IdBatch(1, 5, "first")).ok());
  ASSERT_TRUE((*second)->Write(IdBatch(1, 5, "second")).ok());
  Result<bool> a = (*first)->Commit("{\"attempt\": 1}");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(*a);
  Result<bool> b = (*second)->Commit("{\"attempt\": 2}");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE(*b);
  EXPECT_EQ(pg->Value(db, "SELECT count(*) || ' ' || min(s) || ' ' || max(s) FROM preds"), "5 first first");
  Result<std::optional<std::string>> marker = sink->CommittedMarker("00003");
  ASSERT_TRUE(marker.ok());
  EXPECT_EQ(marker->value_or(""), "{\"attempt\": 1}");
  // Another job (fingerprint) has its own progress rows.
  std::unique_ptr<TableSink> other = OpenPrepared(Out(pg->Url(db), "preds"), "fp2");
  Result<bool> c = WriteUnit(other.get(), "00003", {IdBatch(6, 1, "other job")});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(*c);
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM preds"), "6");
}

TEST(PostgresSinkTest, UpsertReplacesRowsWithTheSameKeys) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  const OutputSpec out = Out(pg->Url(db), "preds", OutputMode::kUpsert, {"id"});
  std::unique_ptr<TableSink> sink = OpenPrepared(out, "fp1");
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM pg_index WHERE indrelid = 'preds'::regclass AND indisunique"), "1");
  ASSERT_TRUE(WriteUnit(sink.get(), "00000", {IdBatch(1, 3, "old")}).ok());
  // Keys 2, 3 replaced, 4 new; 4 twice in the unit: its last row wins.
  Batch second = IdBatch(2, 3, "new");
  second.columns[4] = Column(DataType::kString);
  for (const char* s : {"new2", "new3", "first4"}) second.columns[4].AppendString(s);
  Batch third = IdBatch(4, 1, "last4");
  Result<bool> committed = WriteUnit(sink.get(), "00001", {second, third});
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(Rows(pg, db, "SELECT id, s FROM preds ORDER BY id"),
            (std::vector<std::string>{"1|old", "2|new2", "3|new3", "4|last4"}));

  // A table whose primary key is the keys gets no second index; duplicate keys refuse upsert.
  const std::string db2 = pg->FreshDatabase("_pk");
  pg->Sql(db2, "CREATE TABLE preds (id bigint PRIMARY KEY, f32 real, f64 float8, b bool, s text, ts timestamptz, extra int)");
  ASSERT_NE(OpenPrepared(Out(pg->Url(db2), "preds", OutputMode::kUpsert, {"id"}), "fp1"), nullptr);
  EXPECT_EQ(pg->Value(db2, "SELECT count(*) FROM pg_index WHERE indrelid = 'preds'::regclass"), "1");
  const std::string db3 = pg->FreshDatabase("_dup");
  pg->Sql(db3, "CREATE TABLE preds (id bigint, f32 real, f64 float8, b bool, s text, ts timestamptz); "
               "INSERT INTO preds (id) VALUES (7), (7)");
  Result<std::unique_ptr<TableSink>> dup = OpenTableSink(Out(pg->Url(db3), "preds", OutputMode::kUpsert, {"id"}), "fp1");
  ASSERT_TRUE(dup.ok());
  const Status st = (*dup)->PrepareTable(kSchema);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot create the unique index on output.keys (id)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("(id)=(7) is duplicated"), std::string::npos) << st.message();
}

TEST(PostgresSinkTest, OverwriteEmptiesTheTableOnlyWhenTheJobStarts) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE preds (id integer, f32 real, f64 numeric, b boolean, s varchar(20), ts timestamp); "
              "INSERT INTO preds (id, s) VALUES (100, 'before'), (101, 'before')");
  const OutputSpec out = Out(pg->Url(db), "preds", OutputMode::kOverwrite);
  std::unique_ptr<TableSink> sink = OpenPrepared(out, "fpA");
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM preds"), "0");
  ASSERT_TRUE(WriteUnit(sink.get(), "00000", {IdBatch(1, 2, "A")}).ok());
  // The same job again (resume, or another shard): what is committed stays.
  std::unique_ptr<TableSink> resumed = OpenPrepared(out, "fpA");
  ASSERT_NE(resumed, nullptr);
  ASSERT_TRUE(WriteUnit(resumed.get(), "00001", {IdBatch(3, 1, "A")}).ok());
  EXPECT_EQ(Rows(pg, db, "SELECT id, s, f64 FROM preds ORDER BY id"), (std::vector<std::string>{"1|A|2.5", "2|A|2.5", "3|A|2.5"}));
  // A different job starts over.
  std::unique_ptr<TableSink> other = OpenPrepared(out, "fpB");
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM preds"), "0");
}

TEST(PostgresSinkTest, AnExistingTableMustHoldTheOutputColumns) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  pg->Sql(db, "CREATE TABLE wrong_type (id bigint, f32 real, f64 text, b bool, s text, ts timestamptz); "
              "CREATE TABLE missing (id bigint, f32 real); CREATE SCHEMA s1");
  const std::string shown = RedactConnection(pg->Url(db));
  Status st = CheckTableSink(Out(pg->Url(db), "wrong_type"), kSchema);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "output.table 'wrong_type' in " + shown +
                              ": column 'f64' is text, which cannot hold the output's float64 values");
  st = CheckTableSink(Out(pg->Url(db), "missing"), kSchema);
  EXPECT_EQ(st.message(), "output.table 'missing' in " + shown +
                              ": the table has no column 'f64' for the output column of that name (columns: id, f32)");
  st = CheckTableSink(Out(pg->Url(db), "absent", OutputMode::kUpsert, {"nope"}), kSchema);
  EXPECT_NE(st.message().find("output.keys: 'nope' is not an output column"), std::string::npos) << st.message();
  EXPECT_TRUE(CheckTableSink(Out(pg->Url(db), "absent"), kSchema).ok());
  // A dot is part of the name; the schema is the search_path's, which the URL may set.
  std::unique_ptr<TableSink> sink = OpenPrepared(Out(pg->Url(db) + "?options=-csearch_path%3Ds1", "p.reds"), "fp1");
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(WriteUnit(sink.get(), "00000", {IdBatch(1, 2, "x")}).ok());
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM s1.\"p.reds\""), "2");
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM s1.sluice_units"), "1");
}

// Sets an environment variable for the scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = old;
    value != nullptr ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { old_ ? setenv(name_, old_->c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(PostgresSinkTest, PasswordsFromPgpassAndNeverInMessages) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  const std::string dir = ::testing::TempDir() + "pgpass-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string pgpass = dir + "/pgpass";
  ScopedEnv no_password("PGPASSWORD", nullptr);
  ScopedEnv passfile("PGPASSFILE", pgpass.c_str());
  auto write_pgpass = [&](const std::string& password) {
    std::ofstream(pgpass) << "127.0.0.1:" << pg->port() << ":*:sluice:" << password << "\n";
    std::filesystem::permissions(pgpass, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  };
  write_pgpass(pg->password());
  EXPECT_TRUE(CheckTableSink(Out(pg->Url(db), "preds"), kSchema).ok());

  write_pgpass("not-the-password");
  Status st = CheckTableSink(Out(pg->Url(db), "preds"), kSchema);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("password authentication failed"), std::string::npos) << st.message();

  // A password in the URL: used, and shown as *** in every message.
  const std::string secret = "S3cret-in-url";
  const std::string url = "postgresql://sluice:" + secret + "@127.0.0.1:" + std::to_string(pg->port()) + "/" + db;
  st = CheckTableSink(Out(url, "preds"), kSchema);
  EXPECT_EQ(st.message().rfind("output.path: cannot connect to postgresql://sluice:***@127.0.0.1:", 0), 0u) << st.message();
  EXPECT_EQ(st.message().find(secret), std::string::npos) << st.message();
  Result<std::unique_ptr<TableSink>> sink = OpenTableSink(Out(pg->Url(db, /*with_password=*/true), "bad name\"", OutputMode::kUpsert, {"id"}), "fp");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  st = (*sink)->PrepareTable(Schema({{"id", DataType::kInt64}, {"x", DataType::kFloat64}}));
  ASSERT_TRUE(st.ok()) << st.ToString();  // odd names are quoted identifiers
  Result<std::unique_ptr<TableUnitWriter>> writer = (*sink)->OpenUnit("00000");
  ASSERT_TRUE(writer.ok());
  // Not the prepared schema: the server refuses the COPY data, during the writes
  // (past the first 256 KiB sent) or at the commit, as a permanent error.
  Status wrote;
  for (int b = 0; b < 20 && wrote.ok(); ++b) wrote = (*writer)->Write(IdBatch(b * 1000, 1000, std::string(20, 'x')));
  Result<bool> committed = wrote.ok() ? (*writer)->Commit("{}") : Result<bool>(wrote);
  ASSERT_FALSE(committed.ok());
  EXPECT_NE(committed.status().message().find("extra data after last expected column"), std::string::npos)
      << committed.status().message();
  EXPECT_EQ(committed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(committed.status().message().find("output.table 'bad name\"' in postgresql://sluice:***@"), std::string::npos)
      << committed.status().message();
  EXPECT_EQ(committed.status().message().find(pg->password()), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(PostgresSinkTest, AConnectionLostDuringCopyIsTransientAndTheRetryCommits) {
  SLUICE_PG_OR_SKIP(pg);
  const std::string db = pg->FreshDatabase();
  std::unique_ptr<TableSink> sink = OpenPrepared(Out(pg->Url(db), "preds"), "fp1");
  ASSERT_NE(sink, nullptr);
  Result<std::unique_ptr<TableUnitWriter>> writer = sink->OpenUnit("00000");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(IdBatch(0, 5000, std::string(100, 'x'))).ok());  // COPY under way, data sent
  EXPECT_EQ(pg->Value(db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND query LIKE 'COPY%' AND pid <> pg_backend_pid()"),
            "1");
  Status st = (*writer)->Write(IdBatch(5000, 5000, std::string(100, 'x')));
  Result<bool> committed = st.ok() ? (*writer)->Commit("{}") : Result<bool>(st);
  ASSERT_FALSE(committed.ok());
  EXPECT_EQ(committed.status().code(), StatusCode::kUnavailable) << committed.status().ToString();
  EXPECT_EQ(pg->Value(db, "SELECT count(*) FROM preds"), "0");
  // The sink's own connection is not the lost one; a new attempt commits everything once.
  Result<std::optional<std::string>> marker = sink->CommittedMarker("00000");
  ASSERT_TRUE(marker.ok());
  EXPECT_FALSE(marker->has_value());
  Result<bool> retry = WriteUnit(sink.get(), "00000", {IdBatch(0, 10000, "y")});
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_TRUE(*retry);
  EXPECT_EQ(pg->Value(db, "SELECT count(*) || ' ' || count(DISTINCT id) FROM preds"), "10000 10000");
}

}  // namespace
}  // namespace sluice
