// The DuckDB glue: bound values, streamed chunks, errors as one-line Status
// with codes, identifier and literal quoting, the pool of databases,
// sluice_bucket against HashBucket, and chunk lists read by sluice_chunks.
#include "source/duckdb_util.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sink/partition_layout.h"

namespace sluice {
namespace {

std::unique_ptr<DuckDb> OpenDb() {
  Result<std::unique_ptr<DuckDb>> db = DuckDb::Open();
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(*db) : nullptr;
}

TEST(DuckDbTest, BoundValuesNeverBecomeSql) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
  Result<DuckStatement> stmt = db->Prepare("SELECT ? || '!', ? + 1, ? * 2, ? IS NULL");
  ASSERT_TRUE(stmt.ok()) << stmt.status().ToString();
  ASSERT_TRUE(stmt->BindAll({std::string("x'); DROP TABLE t; --"), int64_t{41}, 1.25, std::monostate()}).ok());
  Result<DuckResult> result = stmt->Query();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  Result<DuckChunk> chunk = result->Next();
  ASSERT_TRUE(chunk.ok() && *chunk);
  EXPECT_EQ(chunk->StringAt(0, 0), "x'); DROP TABLE t; --!");
  EXPECT_EQ(chunk->Int64At(1, 0), 42);
  EXPECT_EQ(chunk->DoubleAt(2, 0), 2.5);
  EXPECT_TRUE(static_cast<const bool*>(duckdb_vector_get_data(chunk->vector(3)))[0]);
  Result<DuckChunk> end = result->Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST(DuckDbTest, StreamsChunksOfConstantAndComputedColumns) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
  Result<DuckStatement> stmt = db->Prepare("SELECT 7::BIGINT AS c, range AS r, NULL::BIGINT AS n FROM range(?)");
  ASSERT_TRUE(stmt.ok());
  ASSERT_TRUE(stmt->Bind(0, int64_t{5000}).ok());
  Result<DuckResult> result = stmt->Stream();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->column_count(), 3u);
  EXPECT_EQ(result->column_name(1), "r");
  int64_t next = 0;
  while (true) {
    Result<DuckChunk> chunk = result->Next();
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    if (!*chunk) break;
    for (size_t row = 0; row < chunk->size(); ++row, ++next) {
      ASSERT_EQ(chunk->Int64At(0, row), 7);
      ASSERT_EQ(chunk->Int64At(1, row), next);
      ASSERT_TRUE(chunk->IsNull(2, row));
    }
  }
  EXPECT_EQ(next, 5000);
}

// Rows of `stmt` as "id|name" lines.
std::vector<std::string> IdNameRows(DuckStatement& stmt) {
  std::vector<std::string> rows;
  Result<DuckResult> result = stmt.Query();
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok()) return rows;
  EXPECT_EQ(result->column_name(1), "name");
  for (Result<DuckChunk> chunk = result->Next(); chunk.ok() && *chunk; chunk = result->Next()) {
    for (size_t row = 0; row < chunk->size(); ++row) {
      rows.push_back(std::to_string(chunk->Int64At(0, row)) + "|" +
                     (chunk->IsNull(1, row) ? "<null>" : std::string(chunk->StringAt(1, row))));
    }
  }
  return rows;
}

TEST(DuckChunkListTest, SluiceChunksReadsTheChunksInOrder) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
  DuckChunkList list({"id", "name"}, {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_VARCHAR});
  Result<DuckStatement> stmt = db->Prepare("SELECT * FROM sluice_chunks(?)");
  ASSERT_TRUE(stmt.ok()) << stmt.status().ToString();
  ASSERT_TRUE(stmt->Bind(0, list.Param()).ok());
  EXPECT_EQ(IdNameRows(*stmt), std::vector<std::string>{});  // no chunk: the columns, no row

  int64_t id = 0;
  for (const size_t rows : {3, 2}) {
    duckdb_data_chunk chunk = list.Add();
    duckdb_vector ids = duckdb_data_chunk_get_vector(chunk, 0);
    duckdb_vector names = duckdb_data_chunk_get_vector(chunk, 1);
    duckdb_vector_ensure_validity_writable(names);
    for (size_t row = 0; row < rows; ++row, ++id) {
      static_cast<int64_t*>(duckdb_vector_get_data(ids))[row] = id * 10;
      const std::string name = "row " + std::to_string(id) + " with a name longer than twelve bytes";
      if (id == 3) {
        duckdb_validity_set_row_invalid(duckdb_vector_get_validity(names), row);
      } else {
        duckdb_vector_assign_string_element_len(names, row, name.data(), name.size());
      }
    }
    duckdb_data_chunk_set_size(chunk, rows);
  }
  EXPECT_EQ(IdNameRows(*stmt), (std::vector<std::string>{"0|row 0 with a name longer than twelve bytes",
                                                          "10|row 1 with a name longer than twelve bytes",
                                                          "20|row 2 with a name longer than twelve bytes", "30|<null>",
                                                          "40|row 4 with a name longer than twelve bytes"}));
  list.Clear();
  EXPECT_EQ(IdNameRows(*stmt), std::vector<std::string>{});

  Result<DuckStatement> none = db->Prepare("SELECT * FROM sluice_chunks(?)");
  ASSERT_TRUE(none.ok());
  ASSERT_TRUE(none->Bind(0, std::get<int64_t>(list.Param()) + 1000).ok());  // no live list has that id
  EXPECT_EQ(none->Query().status().ToString(), "invalid_argument: sluice_chunks: no such chunk list");
}

TEST(DuckDbPoolTest, GivesBackDatabasesByOptions) {
  DuckDbOptions small;
  small.memory_limit = "64MB";
  DuckDbPool pool;
  DuckDb* first = nullptr;
  {
    Result<PooledDuckDb> db = DuckDbPool::Take(&pool, small);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    first = db->get();
    ASSERT_TRUE((*db)->Execute("CREATE TABLE t AS SELECT 1 AS x").ok());
    ASSERT_TRUE((*db)->Execute("DROP TABLE t").ok());
    EXPECT_EQ(pool.idle(), 0u);
  }
  EXPECT_EQ(pool.idle(), 1u);
  {
    // Other options: a database of its own; the same options: the idle one.
    Result<PooledDuckDb> other = DuckDbPool::Take(&pool, DuckDbOptions());
    ASSERT_TRUE(other.ok());
    EXPECT_NE(other->get(), first);
    Result<PooledDuckDb> again = DuckDbPool::Take(&pool, small);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->get(), first);
    EXPECT_EQ(pool.idle(), 0u);
    // Still usable, settings and sluice_bucket included.
    ASSERT_TRUE((*again)->Execute("SELECT sluice_bucket(1::BIGINT, 4)").ok());
    DuckDbPool::Close(std::move(*again));
    EXPECT_EQ(pool.idle(), 0u);
  }
  EXPECT_EQ(pool.idle(), 1u);  // only `other` came back
  {
    // LeaveIdleToExit takes the idle ones; a database in use stays with its holder and comes back.
    Result<PooledDuckDb> held = DuckDbPool::Take(&pool, small);
    ASSERT_TRUE(held.ok());
    pool.LeaveIdleToExit();
    EXPECT_EQ(pool.idle(), 0u);
    EXPECT_TRUE((*held)->Execute("SELECT 1").ok());
  }
  EXPECT_EQ(pool.idle(), 1u);
  pool.LeaveIdleToExit();
  EXPECT_EQ(pool.idle(), 0u);
  ASSERT_TRUE(DuckDbPool::Take(&pool, small).ok());

  // Without a pool: a new database each time, closed when released.
  Result<PooledDuckDb> alone = DuckDbPool::Take(nullptr, small);
  ASSERT_TRUE(alone.ok());
  EXPECT_TRUE((*alone)->Execute("SELECT 1").ok());
}

TEST(DuckDbPoolTest, SharesConnectionsToItsDatabasesInUseOrIdle) {
  DuckDbOptions small;
  small.memory_limit = "64MB";
  auto pool = std::make_unique<DuckDbPool>();
  Result<PooledDuckDb> holder = DuckDbPool::Take(pool.get(), small);
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  ASSERT_TRUE((*holder)->Execute("CREATE TABLE t AS SELECT 42::BIGINT AS x").ok());
  auto x_of = [](DuckDb* db) {
    Result<DuckStatement> stmt = db->Prepare("SELECT x, current_setting('TimeZone') FROM t");
    EXPECT_TRUE(stmt.ok()) << stmt.status().ToString();
    if (!stmt.ok()) return std::string();
    Result<DuckResult> result = stmt->Query();
    Result<DuckChunk> chunk = result->Next();
    EXPECT_TRUE(chunk.ok() && *chunk);
    return std::to_string(chunk->Int64At(0, 0)) + "|" + std::string(chunk->StringAt(1, 0));
  };
  {
    // A database in use: a connection of its own to it (its table, UTC).
    Result<PooledDuckDb> shared = DuckDbPool::Share(pool.get(), small);
    ASSERT_TRUE(shared.ok()) << shared.status().ToString();
    EXPECT_NE(shared->get(), holder->get());
    EXPECT_EQ(x_of(shared->get()), "42|UTC");
  }
  EXPECT_EQ(pool->idle(), 0u);  // the connection closed; the database is still the holder's
  ASSERT_TRUE((*holder)->Execute("SELECT 1").ok());
  holder->reset();
  EXPECT_EQ(pool->idle(), 1u);
  Result<PooledDuckDb> shared = DuckDbPool::Share(pool.get(), small);  // an idle one: still in the pool
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(pool->idle(), 1u);
  // Other options and no database of them: Take, given back when released.
  {
    Result<PooledDuckDb> other = DuckDbPool::Share(pool.get(), DuckDbOptions());
    ASSERT_TRUE(other.ok());
  }
  EXPECT_EQ(pool->idle(), 2u);
  // The database outlives the pool while a connection to it does.
  pool.reset();
  EXPECT_EQ(x_of(shared->get()), "42|UTC");
}

TEST(DuckDbTest, ErrorsAreOneLineWithCodes) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
  Status syntax = db->Execute("SELEC 1");
  EXPECT_EQ(syntax.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(syntax.message().find('\n'), std::string::npos) << syntax.message();
  EXPECT_EQ(syntax.message().rfind("syntax error", 0), 0u) << syntax.message();

  Result<DuckStatement> missing = db->Prepare("SELECT * FROM read_parquet(?)");
  ASSERT_TRUE(missing.ok());
  ASSERT_TRUE(missing->Bind(0, std::string("/nonexistent/x.parquet")).ok());
  Result<DuckResult> r = missing->Query();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);

  Result<DuckStatement> failing = db->Prepare("SELECT CASE WHEN range < 3000 THEN range ELSE error('boom') END FROM range(5000)");
  ASSERT_TRUE(failing.ok());
  Result<DuckResult> stream = failing->Stream();
  Status late;
  while (stream.ok()) {
    Result<DuckChunk> chunk = stream->Next();
    if (!chunk.ok()) {
      late = chunk.status();
      break;
    }
    if (!*chunk) break;
  }
  if (!stream.ok()) late = stream.status();
  EXPECT_FALSE(late.ok());
  EXPECT_NE(late.message().find("boom"), std::string::npos) << late.ToString();

  EXPECT_EQ(DuckError(DUCKDB_ERROR_IO, "IO Error: disk gone\nLINE 1: x").ToString(), "io_error: disk gone");
  EXPECT_EQ(DuckError(DUCKDB_ERROR_INVALID_INPUT, "Invalid Input Error: No magic bytes").code(), StatusCode::kCorruption);
  EXPECT_EQ(DuckError(DUCKDB_ERROR_OUT_OF_MEMORY, "x").code(), StatusCode::kResourceExhausted);
}

TEST(DuckDbTest, QuotesLiterals) {
  EXPECT_EQ(QuoteLiteral("/tmp/it's"), "'/tmp/it''s'");
  auto db = OpenDb();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Execute("SET temp_directory = " + QuoteLiteral("/tmp/sluice it's")).ok());
  Result<DuckStatement> stmt = db->Prepare("SELECT current_setting('temp_directory')");
  ASSERT_TRUE(stmt.ok());
  Result<DuckResult> result = stmt->Query();
  ASSERT_TRUE(result.ok());
  Result<DuckChunk> chunk = result->Next();
  ASSERT_TRUE(chunk.ok() && *chunk);
  EXPECT_EQ(chunk->StringAt(0, 0), "/tmp/sluice it's");
}

TEST(DuckDbTest, QuotesIdentifiers) {
  EXPECT_EQ(QuoteIdentifier("plain"), "\"plain\"");
  EXPECT_EQ(QuoteIdentifier("say \"hi\""), "\"say \"\"hi\"\"\"");
  auto db = OpenDb();
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Execute("CREATE TABLE t (" + QuoteIdentifier("we\"ird name") + " BIGINT)").ok());
  ASSERT_TRUE(db->Execute("INSERT INTO t VALUES (5)").ok());
  Result<DuckStatement> stmt = db->Prepare("SELECT " + QuoteIdentifier("we\"ird name") + " FROM t");
  ASSERT_TRUE(stmt.ok()) << stmt.status().ToString();
}

// sluice_bucket(x, n) in SQL equals HashBucket on a Sluice column of the same values.
TEST(DuckDbTest, SluiceBucketMatchesHashBucket) {
  auto db = OpenDb();
  ASSERT_TRUE(db);
  const int buckets = 13;
  Result<DuckStatement> stmt = db->Prepare(
      "SELECT CASE WHEN i % 10 = 0 THEN NULL ELSE i * 7919 - 50000 END::BIGINT AS v_int,"
      " (i / 3)::FLOAT AS v_f32, i / 7 AS v_f64, i % 3 = 0 AS v_bool, 'key-' || i AS v_str,"
      " sluice_bucket(v_int, ?), sluice_bucket(v_f32, ?), sluice_bucket(v_f64, ?), sluice_bucket(v_bool, ?),"
      " sluice_bucket(v_str, ?) FROM range(3000) t(i)");
  ASSERT_TRUE(stmt.ok()) << stmt.status().ToString();
  for (size_t i = 0; i < 5; ++i) ASSERT_TRUE(stmt->Bind(i, int64_t{buckets}).ok());
  Result<DuckResult> result = stmt->Query();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const DataType types[] = {DataType::kInt64, DataType::kFloat32, DataType::kFloat64, DataType::kBool,
                            DataType::kString};
  std::vector<int> seen(buckets, 0);
  while (true) {
    Result<DuckChunk> chunk = result->Next();
    ASSERT_TRUE(chunk.ok());
    if (!*chunk) break;
    for (size_t col = 0; col < 5; ++col) {
      Column values(types[col]);
      for (size_t row = 0; row < chunk->size(); ++row) {
        if (chunk->IsNull(col, row)) {
          values.AppendNull();
          continue;
        }
        const void* data = duckdb_vector_get_data(chunk->vector(col));
        switch (types[col]) {
          case DataType::kInt64: values.AppendInt64(static_cast<const int64_t*>(data)[row]); break;
          case DataType::kFloat32: values.AppendFloat32(static_cast<const float*>(data)[row]); break;
          case DataType::kFloat64: values.AppendFloat64(static_cast<const double*>(data)[row]); break;
          case DataType::kBool: values.AppendBool(static_cast<const bool*>(data)[row]); break;
          default: values.AppendString(chunk->StringAt(col, row)); break;
        }
      }
      for (size_t row = 0; row < chunk->size(); ++row) {
        const int64_t bucket = chunk->Int64At(col + 5, row);
        ASSERT_EQ(static_cast<uint64_t>(bucket), HashBucket(values, row, buckets)) << "column " << col << " row " << row;
        ++seen[bucket];
      }
    }
  }
  for (int b = 0; b < buckets; ++b) EXPECT_GT(seen[b], 0) << "bucket " << b;
}

}  // namespace
}  // namespace sluice
