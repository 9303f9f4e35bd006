#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <limits>
#include <optional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "env/fault_injection_env.h"
#include "sink/partition_layout.h"
#include "sluice/env.h"
#include "sluice/sink.h"

namespace sluice {
namespace {

Result<std::unique_ptr<PartWriter>> OpenPart(Env* env, OutputFormat format, const std::string& dir, int index,
                                             const Schema& schema) {
  PartOptions options;
  options.format = format;
  options.dir = dir;
  options.part_index = index;
  options.schema = schema;
  return OpenPartWriter(env, options);
}

// Reads RFC 4180 CSV (LF or CRLF line ends) into rows of fields. A field is
// nullopt when it was empty and unquoted, so null and "" stay apart.
using CsvRow = std::vector<std::optional<std::string>>;
std::vector<CsvRow> ParseCsv(std::string_view text) {
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string field;
  bool quoted = false;
  size_t i = 0;
  auto end_field = [&] {
    if (!quoted && field.empty()) {
      row.push_back(std::nullopt);
    } else {
      row.push_back(field);
    }
    field.clear();
    quoted = false;
  };
  while (i < text.size()) {
    char c = text[i];
    if (c == '"' && field.empty() && !quoted) {
      quoted = true;
      ++i;
      while (true) {
        EXPECT_LT(i, text.size()) << "unterminated quote";
        if (i >= text.size()) return rows;
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(text[i++]);
      }
      continue;
    }
    if (c == ',') {
      end_field();
      ++i;
    } else if (c == '\n') {
      end_field();
      rows.push_back(std::move(row));
      row.clear();
      ++i;
    } else {
      field.push_back(c);
      ++i;
    }
  }
  EXPECT_TRUE(row.empty() && field.empty()) << "last line not terminated";
  return rows;
}

std::string OpenSslSha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr), 1);
  std::string hex;
  const char* digits = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(digits[digest[i] >> 4]);
    hex.push_back(digits[digest[i] & 15]);
  }
  return hex;
}

Schema MixedSchema() {
  return Schema({{"id", DataType::kInt64},
                 {"name", DataType::kString},
                 {"f32", DataType::kFloat32},
                 {"f64", DataType::kFloat64},
                 {"flag", DataType::kBool},
                 {"ts", DataType::kTimestamp}});
}

// Rows that exercise quoting, escaping, float formatting and nulls.
Batch MixedBatch() {
  Batch b;
  b.Reset(MixedSchema());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Row {
    std::optional<int64_t> id;
    std::optional<std::string> name;
    float f32;
    double f64;
    bool flag;
    int64_t ts;
  };
  const int64_t jan5 = int64_t{1704448800} * 1000000;
  std::vector<Row> rows = {
      {1, "plain", 0.1f, 0.1, true, jan5},
      {2, "comma, inside", 1e-7f, 1e-7, false, jan5 + 123000},
      {3, "say \"hi\"", 123456789.0f, 123456789.0, true, jan5 + 123456},
      {4, "two\nlines\r\n", -0.0f, -0.0, false, -1},
      {5, " padded ", std::numeric_limits<float>::quiet_NaN(), nan, true, 0},
      {6, "", std::numeric_limits<float>::infinity(), -std::numeric_limits<double>::infinity(), false, 0},
      {std::nullopt, std::nullopt, 2.5f, 1e300, true, 0},
      {8, "tab\tback\\slash \x01 é€𝄞", 3.0f, 5e-324, false, 0},
  };
  for (const Row& r : rows) {
    if (r.id) b.columns[0].AppendInt64(*r.id); else b.columns[0].AppendNull();
    if (r.name) b.columns[1].AppendString(*r.name); else b.columns[1].AppendNull();
    b.columns[2].AppendFloat32(r.f32);
    b.columns[3].AppendFloat64(r.f64);
    b.columns[4].AppendBool(r.flag);
    b.columns[5].AppendInt64(r.ts);
  }
  return b;
}

class PartWriterTest : public ::testing::Test {
 protected:
  PartWriterTest() : mem_(NewMemEnv()) {}
  Env* env() { return mem_.get(); }
  std::vector<std::string> Children(const std::string& dir) {
    auto names = env()->GetChildren(dir);
    return names.ok() ? *names : std::vector<std::string>{};
  }

  std::unique_ptr<Env> mem_;
};

TEST_F(PartWriterTest, PartFileNames) {
  EXPECT_EQ(PartFileName(OutputFormat::kCsv, 7), "part-00007.csv");
  EXPECT_EQ(PartFileName(OutputFormat::kJsonl, 0), "part-00000.jsonl");
  EXPECT_EQ(PartFileName(OutputFormat::kCsv, 123456), "part-123456.csv");
}

TEST_F(PartWriterTest, CsvRoundTripsQuotingAndFormatsFloatsShortest) {
  auto part = OpenPart(env(), OutputFormat::kCsv, "out", 7, MixedSchema());
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  ASSERT_TRUE((*part)->Write(MixedBatch()).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ((*part)->files().at(0).path, "part-00007.csv");
  EXPECT_EQ((*part)->rows_written(), 8);

  auto text = ReadFileToString(env(), "out/part-00007.csv");
  ASSERT_TRUE(text.ok());
  std::vector<CsvRow> rows = ParseCsv(*text);
  ASSERT_EQ(rows.size(), 9u);
  EXPECT_EQ(rows[0], (CsvRow{"id", "name", "f32", "f64", "flag", "ts"}));
  auto field = [&](size_t row, size_t col) { return rows[row + 1][col]; };
  EXPECT_EQ(field(0, 1), "plain");
  EXPECT_EQ(field(1, 1), "comma, inside");
  EXPECT_EQ(field(2, 1), "say \"hi\"");
  EXPECT_EQ(field(3, 1), "two\nlines\r\n");
  EXPECT_EQ(field(4, 1), " padded ");
  EXPECT_EQ(field(5, 1), "");            // empty string is quoted …
  EXPECT_EQ(field(6, 1), std::nullopt);  // … null is an empty field
  EXPECT_EQ(field(6, 0), std::nullopt);
  EXPECT_EQ(field(7, 1), "tab\tback\\slash \x01 é€𝄞");

  std::vector<std::string> f32, f64, flags, ts;
  for (size_t r = 0; r < 8; ++r) {
    f32.push_back(*field(r, 2));
    f64.push_back(*field(r, 3));
    flags.push_back(*field(r, 4));
    ts.push_back(*field(r, 5));
  }
  EXPECT_EQ(f32, (std::vector<std::string>{"0.1", "1e-07", "123456792", "-0", "NaN", "inf", "2.5", "3"}));
  EXPECT_EQ(f64, (std::vector<std::string>{"0.1", "1e-07", "123456789", "-0", "NaN", "-inf", "1e+300",
                                           "5e-324"}));
  EXPECT_EQ(flags[0], "true");
  EXPECT_EQ(flags[1], "false");
  EXPECT_EQ(ts[0], "2024-01-05T10:00:00Z");
  EXPECT_EQ(ts[1], "2024-01-05T10:00:00.123Z");
  EXPECT_EQ(ts[2], "2024-01-05T10:00:00.123456Z");
  EXPECT_EQ(ts[3], "1969-12-31T23:59:59.999999Z");
}

TEST_F(PartWriterTest, CsvExactBytes) {
  Schema schema({{"id", DataType::kInt64}, {"score", DataType::kFloat32}});
  Batch b;
  b.Reset(schema);
  b.columns[0].AppendInt64(1);
  b.columns[1].AppendFloat32(0.25f);
  b.columns[0].AppendInt64(2);
  b.columns[1].AppendNull();
  auto part = OpenPart(env(), OutputFormat::kCsv, "o", 0, schema);
  ASSERT_TRUE(part.ok());
  ASSERT_TRUE((*part)->Write(b).ok());
  ASSERT_TRUE((*part)->Write(b).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  const std::string expected = "id,score\n1,0.25\n2,\n1,0.25\n2,\n";
  EXPECT_EQ(*ReadFileToString(env(), "o/part-00000.csv"), expected);
  EXPECT_EQ((*part)->bytes_written(), expected.size());
  EXPECT_EQ((*part)->rows_written(), 4);
}

TEST_F(PartWriterTest, JsonlRoundTripsEscapingKeysInSchemaOrder) {
  auto part = OpenPart(env(), OutputFormat::kJsonl, "out", 3, MixedSchema());
  ASSERT_TRUE(part.ok());
  Batch batch = MixedBatch();
  ASSERT_TRUE((*part)->Write(batch).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ((*part)->files().at(0).path, "part-00003.jsonl");
  auto text = ReadFileToString(env(), "out/part-00003.jsonl");
  ASSERT_TRUE(text.ok());

  std::vector<nlohmann::ordered_json> rows;
  size_t start = 0;
  while (start < text->size()) {
    size_t nl = text->find('\n', start);
    ASSERT_NE(nl, std::string::npos);
    auto row = nlohmann::ordered_json::parse(text->substr(start, nl - start), nullptr, false);
    ASSERT_FALSE(row.is_discarded()) << text->substr(start, nl - start);
    rows.push_back(std::move(row));
    start = nl + 1;
  }
  ASSERT_EQ(rows.size(), 8u);
  for (const auto& row : rows) {
    std::vector<std::string> keys;
    for (auto it = row.begin(); it != row.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"id", "name", "f32", "f64", "flag", "ts"}));
  }
  for (size_t r = 0; r < 8; ++r) {
    if (batch.columns[1].IsNull(r)) {
      EXPECT_TRUE(rows[r]["name"].is_null());
    } else {
      EXPECT_EQ(rows[r]["name"].get<std::string>(), batch.columns[1].StringAt(r)) << r;
    }
  }
  EXPECT_EQ(rows[0]["id"].get<int64_t>(), 1);
  EXPECT_TRUE(rows[6]["id"].is_null());
  EXPECT_EQ(rows[0]["f32"].get<float>(), 0.1f);
  EXPECT_EQ(rows[0]["f64"].get<double>(), 0.1);
  EXPECT_EQ(rows[2]["f64"].get<double>(), 123456789.0);
  // nlohmann reads "-0" as the integer 0; the sign is in the text.
  EXPECT_NE(text->find("\"f32\":-0,\"f64\":-0,"), std::string::npos);
  EXPECT_TRUE(rows[4]["f32"].is_null());  // NaN
  EXPECT_TRUE(rows[4]["f64"].is_null());
  EXPECT_TRUE(rows[5]["f32"].is_null());  // inf
  EXPECT_TRUE(rows[5]["f64"].is_null());
  EXPECT_EQ(rows[0]["flag"].get<bool>(), true);
  EXPECT_EQ(rows[1]["ts"].get<std::string>(), "2024-01-05T10:00:00.123Z");
  // The exact text of a line, floats in shortest form.
  EXPECT_EQ(text->substr(0, text->find('\n')),
            "{\"id\":1,\"name\":\"plain\",\"f32\":0.1,\"f64\":0.1,\"flag\":true,"
            "\"ts\":\"2024-01-05T10:00:00Z\"}");
}

TEST_F(PartWriterTest, CommitMakesThePartVisibleAtomically) {
  Schema schema({{"x", DataType::kInt64}});
  auto part = OpenPart(env(), OutputFormat::kCsv, "out", 7, schema);
  ASSERT_TRUE(part.ok());
  Batch b;
  b.Reset(schema);
  b.columns[0].AppendInt64(1);
  ASSERT_TRUE((*part)->Write(b).ok());
  // Before commit: only a hidden temporary, which input expansion skips.
  const std::string tmp = ".part-00007.csv.tmp-" + std::to_string(::getpid());
  EXPECT_EQ(Children("out"), std::vector<std::string>{tmp});
  EXPECT_FALSE(env()->FileExists("out/part-00007.csv"));
  EXPECT_EQ(ExpandInputPaths(env(), "out").status().code(), StatusCode::kNotFound);
  // Finished: complete under the temporary name, still hidden; no more rows.
  ASSERT_TRUE((*part)->Finish().ok());
  EXPECT_EQ(*ReadFileToString(env(), "out/" + tmp), "x\n1\n");
  EXPECT_EQ(Children("out"), std::vector<std::string>{tmp});
  Status late = (*part)->Write(b);
  EXPECT_EQ(late.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(late.message(), "write 'out/part-00007.csv': part is finished");
  EXPECT_EQ((*part)->Finish().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(Children("out"), std::vector<std::string>{"part-00007.csv"});
  EXPECT_EQ(*ReadFileToString(env(), "out/part-00007.csv"), "x\n1\n");
  ASSERT_EQ((*part)->files().size(), 1u);
  EXPECT_EQ((*part)->files()[0].bytes, 4u);
  // Committed: the destructor must not remove it; further writes are refused.
  EXPECT_EQ((*part)->Write(b).code(), StatusCode::kFailedPrecondition);
  part->reset();
  EXPECT_TRUE(env()->FileExists("out/part-00007.csv"));
}

TEST_F(PartWriterTest, AbortAndDestructionLeaveNothing) {
  Schema schema({{"x", DataType::kString}});
  Batch b;
  b.Reset(schema);
  b.columns[0].AppendString("data");
  {
    auto part = OpenPart(env(), OutputFormat::kCsv, "out", 1, schema);
    ASSERT_TRUE(part.ok());
    ASSERT_TRUE((*part)->Write(b).ok());
    (*part)->Abort();
    (*part)->Abort();
    EXPECT_TRUE(Children("out").empty());
    EXPECT_EQ((*part)->Write(b).code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ((*part)->Commit().code(), StatusCode::kFailedPrecondition);
  }
  for (const bool finished : {false, true}) {
    auto part = OpenPart(env(), OutputFormat::kJsonl, "out", 2, schema);
    ASSERT_TRUE(part.ok());
    ASSERT_TRUE((*part)->Write(b).ok());
    if (finished) {
      ASSERT_TRUE((*part)->Finish().ok());
    }
  }
  EXPECT_TRUE(Children("out").empty());
}

TEST_F(PartWriterTest, SchemaMismatchIsAnErrorNamingThePart) {
  Schema schema({{"x", DataType::kInt64}});
  auto part = OpenPart(env(), OutputFormat::kCsv, "out", 4, schema);
  ASSERT_TRUE(part.ok());
  Batch b;
  b.Reset(Schema({{"x", DataType::kFloat64}}));
  Status s = (*part)->Write(b);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "out/part-00004.csv: batch schema (x float64) differs from the part's schema (x int64)");
}

// Injected faults at each commit step: the error comes back and no part, not
// even a temporary, is left in the directory.
TEST_F(PartWriterTest, FailedCommitLeavesNoVisiblePart) {
  Schema schema({{"x", DataType::kInt64}});
  Batch b;
  b.Reset(schema);
  for (int i = 0; i < 1000; ++i) b.columns[0].AppendInt64(i);
  for (FaultOp op : {FaultOp::kWrite, FaultOp::kSync, FaultOp::kRename}) {
    SCOPED_TRACE(std::string(FaultOpName(op)));
    auto mem = NewMemEnv();
    FaultInjectionEnv env(mem.get());
    env.FailOnce(op, "part-00005");
    auto part = OpenPart(&env, OutputFormat::kCsv, "out", 5, schema);
    ASSERT_TRUE(part.ok());
    ASSERT_TRUE((*part)->Write(b).ok());
    // A sync or rename fault comes after Finish, which the unit runner calls
    // before handing the commit on.
    if (op != FaultOp::kWrite) {
      ASSERT_TRUE((*part)->Finish().ok());
    }
    Status s = (*part)->Commit();
    EXPECT_EQ(s.code(), StatusCode::kIOError);
    EXPECT_NE(s.message().find("injected fault"), std::string::npos) << s.message();
    EXPECT_FALSE(env.FileExists("out/part-00005.csv"));
    auto names = env.GetChildren("out");
    ASSERT_TRUE(names.ok());
    EXPECT_TRUE(names->empty()) << (*names)[0];
    EXPECT_EQ(env.Injected(op), 1);
  }
}

TEST_F(PartWriterTest, FailedCreateIsReported) {
  FaultInjectionEnv env(mem_.get());
  env.FailOnce(FaultOp::kCreate, "part-", 1, StatusCode::kResourceExhausted);
  auto part = OpenPart(&env, OutputFormat::kCsv, "out", 0, Schema({{"x", DataType::kInt64}}));
  EXPECT_EQ(part.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(part.status().message().find("out/.part-00000.csv.tmp-"), std::string::npos);
}

// Several flushes of the 1 MiB buffer on the real file system; the checksum is
// that of the bytes on disk.
TEST(PartWriterPosixTest, LargePartChecksumMatchesFileBytes) {
  std::string tmpl = "/tmp/sluice_part_test_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl + "/out";
  Schema schema({{"id", DataType::kInt64}, {"name", DataType::kString}, {"score", DataType::kFloat64}});
  auto part = OpenPart(Env::Default(), OutputFormat::kJsonl, dir, 12, schema);
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  Batch b;
  int64_t next_id = 0;
  for (int batch_idx = 0; batch_idx < 30; ++batch_idx) {
    b.Reset(schema);
    for (int i = 0; i < 4096; ++i, ++next_id) {
      b.columns[0].AppendInt64(next_id);
      b.columns[1].AppendString("name \"" + std::to_string(next_id) + "\"");
      b.columns[2].AppendFloat64(static_cast<double>(next_id) / 7.0);
    }
    ASSERT_TRUE((*part)->Write(b).ok());
  }
  ASSERT_TRUE((*part)->Commit().ok());
  auto bytes = ReadFileToString(Env::Default(), dir + "/part-00012.jsonl");
  ASSERT_TRUE(bytes.ok());
  EXPECT_GT(bytes->size(), size_t{3} << 20);
  EXPECT_EQ((*part)->bytes_written(), bytes->size());
  EXPECT_EQ((*part)->rows_written(), next_id);
  EXPECT_EQ((*part)->files().at(0).sha256, OpenSslSha256Hex(*bytes));
  EXPECT_EQ(std::count(bytes->begin(), bytes->end(), '\n'), next_id);
  auto names = Env::Default()->GetChildren(dir);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"part-00012.jsonl"});
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
}

TEST_F(PartWriterTest, EmptyPartHasHeaderOnlyAndValidChecksum) {
  Schema schema({{"a b", DataType::kInt64}, {"c,d", DataType::kString}});
  auto part = OpenPart(env(), OutputFormat::kCsv, "out", 9, schema);
  ASSERT_TRUE(part.ok());
  ASSERT_TRUE((*part)->Commit().ok());
  auto bytes = ReadFileToString(env(), "out/part-00009.csv");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, "a b,\"c,d\"\n");
  EXPECT_EQ((*part)->files().at(0).sha256, OpenSslSha256Hex(*bytes));
  EXPECT_EQ((*part)->rows_written(), 0);

  auto jsonl = OpenPart(env(), OutputFormat::kJsonl, "out", 10, schema);
  ASSERT_TRUE(jsonl.ok());
  ASSERT_TRUE((*jsonl)->Commit().ok());
  EXPECT_EQ(*ReadFileToString(env(), "out/part-00010.jsonl"), "");
  EXPECT_EQ((*jsonl)->files().at(0).sha256, OpenSslSha256Hex(""));
}

// ---- Partitioned output -----------------------------------------------------

PartitionKey Plain(std::string column) { return PartitionKey{std::move(column), std::nullopt, 0}; }
PartitionKey Window(std::string column, TimeWindow window) { return PartitionKey{std::move(column), window, 0}; }
PartitionKey Hashed(std::string column, int buckets) { return PartitionKey{std::move(column), std::nullopt, buckets}; }

PartOptions Partitioned(OutputFormat format, const std::string& dir, int index, const Schema& schema,
                        std::vector<PartitionKey> keys, size_t max_open_files = 64) {
  PartOptions options;
  options.format = format;
  options.dir = dir;
  options.part_index = index;
  options.schema = schema;
  options.partition_by = std::move(keys);
  options.max_open_files = max_open_files;
  return options;
}

// Regular files below `dir`, as paths relative to it, sorted; hidden ones
// (temporaries) included.
std::vector<std::string> FilesBelow(Env* env, const std::string& dir, const std::string& prefix = "") {
  std::vector<std::string> out;
  auto names = env->GetChildren(dir);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    const std::string path = JoinPath(dir, name);
    auto info = env->Stat(path);
    EXPECT_TRUE(info.ok()) << path;
    if (!info.ok()) continue;
    if (info->is_dir) {
      for (std::string& sub : FilesBelow(env, path, prefix + name + "/")) out.push_back(std::move(sub));
    } else {
      out.push_back(prefix + name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Paths(const std::vector<PartFile>& files) {
  std::vector<std::string> paths;
  for (const PartFile& f : files) paths.push_back(f.path);
  return paths;
}

// Every committed file: its bytes, rows and checksum match the PartFile.
void ExpectFilesMatchRecords(Env* env, const std::string& dir, const PartWriter& part) {
  uint64_t total_bytes = 0;
  int64_t total_rows = 0;
  for (const PartFile& f : part.files()) {
    auto bytes = ReadFileToString(env, JoinPath(dir, f.path));
    ASSERT_TRUE(bytes.ok()) << f.path;
    EXPECT_EQ(f.bytes, bytes->size()) << f.path;
    EXPECT_EQ(f.sha256, OpenSslSha256Hex(*bytes)) << f.path;
    total_bytes += f.bytes;
    total_rows += f.rows;
  }
  EXPECT_EQ(part.bytes_written(), total_bytes);
  EXPECT_EQ(part.rows_written(), total_rows);
}

TEST_F(PartWriterTest, PlainKeyDirectoriesLeaveTheKeyOutOfTheFiles) {
  Schema schema({{"id", DataType::kInt64}, {"merchant", DataType::kString}, {"score", DataType::kFloat64}});
  auto part = OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 3, schema, {Plain("merchant")}));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  auto add = [](Batch* b, int64_t id, std::optional<std::string> merchant, double score) {
    b->columns[0].AppendInt64(id);
    if (merchant) b->columns[1].AppendString(*merchant); else b->columns[1].AppendNull();
    b->columns[2].AppendFloat64(score);
  };
  Batch b;
  b.Reset(schema);
  add(&b, 1, "travel", 0.5);
  add(&b, 2, "food", 0.25);
  add(&b, 3, "travel", 1.5);
  ASSERT_TRUE((*part)->Write(b).ok());
  b.Reset(schema);
  add(&b, 4, std::nullopt, 2);
  add(&b, 5, "food", 3);
  ASSERT_TRUE((*part)->Write(b).ok());
  // Nothing visible before Commit, only temporaries.
  for (const std::string& path : FilesBelow(env(), "out")) {
    EXPECT_NE(path.find("/.part-00003.csv.tmp-"), std::string::npos) << path;
  }
  ASSERT_TRUE((*part)->Commit().ok());

  const std::vector<std::string> expected = {"merchant=__null__/part-00003.csv", "merchant=food/part-00003.csv",
                                             "merchant=travel/part-00003.csv"};
  EXPECT_EQ(Paths((*part)->files()), expected);
  EXPECT_EQ(FilesBelow(env(), "out"), expected);
  EXPECT_EQ(*ReadFileToString(env(), "out/merchant=__null__/part-00003.csv"), "id,score\n4,2\n");
  EXPECT_EQ(*ReadFileToString(env(), "out/merchant=food/part-00003.csv"), "id,score\n2,0.25\n5,3\n");
  EXPECT_EQ(*ReadFileToString(env(), "out/merchant=travel/part-00003.csv"), "id,score\n1,0.5\n3,1.5\n");
  EXPECT_EQ((*part)->files()[1].rows, 2);
  EXPECT_EQ((*part)->rows_written(), 5);
  ExpectFilesMatchRecords(env(), "out", **part);
}

// Time and hash levels keep their column; levels nest outermost first.
TEST_F(PartWriterTest, NestedTimePlainAndHashLevels) {
  Schema schema({{"id", DataType::kInt64}, {"ts", DataType::kTimestamp}, {"merchant", DataType::kString}});
  auto part = OpenPartWriter(env(), Partitioned(OutputFormat::kJsonl, "out", 0, schema,
                                                {Window("ts", TimeWindow::kDay), Plain("merchant"), Hashed("id", 16)}));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  const int64_t jan5 = 1704462310000000;  // 2024-01-05T13:45:10Z
  const int64_t jan6 = 1704499200000000;  // 2024-01-06T00:00:00Z
  Batch b;
  b.Reset(schema);
  auto add = [&](std::optional<int64_t> id, std::optional<int64_t> ts, const char* merchant) {
    if (id) b.columns[0].AppendInt64(*id); else b.columns[0].AppendNull();
    if (ts) b.columns[1].AppendInt64(*ts); else b.columns[1].AppendNull();
    b.columns[2].AppendString(merchant);
  };
  add(42, jan5, "travel");           // id 42 hashes to bucket 1 of 16
  add(-7, jan6, "food");             // -7: bucket 10
  add(std::nullopt, jan5, "travel");  // null: bucket 10
  add(42, std::nullopt, "travel");
  add(42, jan5 + 1000, "travel");
  ASSERT_TRUE((*part)->Write(b).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(Paths((*part)->files()), (std::vector<std::string>{
                                         "ts_day=2024-01-05/merchant=travel/id_bucket=01/part-00000.jsonl",
                                         "ts_day=2024-01-05/merchant=travel/id_bucket=10/part-00000.jsonl",
                                         "ts_day=2024-01-06/merchant=food/id_bucket=10/part-00000.jsonl",
                                         "ts_day=__null__/merchant=travel/id_bucket=01/part-00000.jsonl",
                                     }));
  EXPECT_EQ(*ReadFileToString(env(), "out/ts_day=2024-01-05/merchant=travel/id_bucket=01/part-00000.jsonl"),
            "{\"id\":42,\"ts\":\"2024-01-05T13:45:10Z\"}\n{\"id\":42,\"ts\":\"2024-01-05T13:45:10.001Z\"}\n");
  EXPECT_EQ(*ReadFileToString(env(), "out/ts_day=2024-01-05/merchant=travel/id_bucket=10/part-00000.jsonl"),
            "{\"id\":null,\"ts\":\"2024-01-05T13:45:10Z\"}\n");
  EXPECT_EQ(*ReadFileToString(env(), "out/ts_day=2024-01-06/merchant=food/id_bucket=10/part-00000.jsonl"),
            "{\"id\":-7,\"ts\":\"2024-01-06T00:00:00Z\"}\n");
  EXPECT_EQ(*ReadFileToString(env(), "out/ts_day=__null__/merchant=travel/id_bucket=01/part-00000.jsonl"),
            "{\"id\":42,\"ts\":null}\n");
  ExpectFilesMatchRecords(env(), "out", **part);
}

TEST_F(PartWriterTest, PlainValuesOfEveryTypeAsTheirText) {
  Schema schema({{"i", DataType::kInt64},
                 {"f64", DataType::kFloat64},
                 {"f32", DataType::kFloat32},
                 {"b", DataType::kBool},
                 {"t", DataType::kTimestamp},
                 {"x", DataType::kInt64}});
  auto part = OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 1, schema,
                                                {Plain("i"), Plain("f64"), Plain("f32"), Plain("b"), Plain("t")}));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  Batch b;
  b.Reset(schema);
  b.columns[0].AppendInt64(-7);
  b.columns[1].AppendFloat64(0.1);
  b.columns[2].AppendFloat32(0.1f);
  b.columns[3].AppendBool(true);
  b.columns[4].AppendInt64(int64_t{1704448800} * 1000000);
  b.columns[5].AppendInt64(1);
  b.columns[0].AppendInt64(42);
  b.columns[1].AppendFloat64(1e300);
  b.columns[2].AppendFloat32(std::numeric_limits<float>::quiet_NaN());
  b.columns[3].AppendBool(false);
  b.columns[4].AppendInt64(-1);
  b.columns[5].AppendInt64(2);
  for (size_t col = 0; col < 5; ++col) b.columns[col].AppendNull();
  b.columns[5].AppendInt64(3);
  ASSERT_TRUE((*part)->Write(b).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(Paths((*part)->files()),
            (std::vector<std::string>{
                "i=-7/f64=0.1/f32=0.1/b=true/t=2024-01-05T10%3A00%3A00Z/part-00001.csv",
                "i=42/f64=1e%2B300/f32=NaN/b=false/t=1969-12-31T23%3A59%3A59.999999Z/part-00001.csv",
                "i=__null__/f64=__null__/f32=__null__/b=__null__/t=__null__/part-00001.csv",
            }));
  EXPECT_EQ(*ReadFileToString(env(), "out/" + (*part)->files()[1].path), "x\n2\n");
}

TEST_F(PartWriterTest, LevelNamesAreEscapedToo) {
  Schema schema({{"a/b", DataType::kInt64}, {"..", DataType::kString}, {"v", DataType::kInt64}});
  auto part = OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 0, schema, {Plain("a/b"), Plain("..")}));
  ASSERT_TRUE(part.ok());
  Batch b;
  b.Reset(schema);
  b.columns[0].AppendInt64(1);
  b.columns[1].AppendString("x");
  b.columns[2].AppendInt64(9);
  ASSERT_TRUE((*part)->Write(b).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(Paths((*part)->files()), std::vector<std::string>{"a%2Fb=1/..=x/part-00000.csv"});
}

std::string Escaped(std::string_view raw) {
  std::string out;
  AppendEscapedPartitionValue(raw, &out);
  return out;
}

TEST(PartitionValueTest, EscapingRules) {
  EXPECT_EQ(Escaped("travel"), "travel");
  EXPECT_EQ(Escaped("A-z_0.9"), "A-z_0.9");
  EXPECT_EQ(Escaped("."), "%2E");
  EXPECT_EQ(Escaped(".."), "%2E%2E");
  EXPECT_EQ(Escaped("..."), "...");
  EXPECT_EQ(Escaped("a/b"), "a%2Fb");
  EXPECT_EQ(Escaped("../../etc"), "..%2F..%2Fetc");
  EXPECT_EQ(Escaped(std::string("a\0b", 3)), "a%00b");
  EXPECT_EQ(Escaped("line\nbreak\r"), "line%0Abreak%0D");
  EXPECT_EQ(Escaped("\x01\x1f\x7f"), "%01%1F%7F");
  EXPECT_EQ(Escaped("%"), "%25");
  EXPECT_EQ(Escaped("%2F"), "%252F");
  EXPECT_EQ(Escaped("a=b c~"), "a%3Db%20c%7E");
  EXPECT_EQ(Escaped("\xff\xfe"), "%FF%FE");
  EXPECT_EQ(Escaped("\xc3\xa9"), "%C3%A9");  // é
  EXPECT_EQ(Escaped(""), "__empty__");
  EXPECT_EQ(Escaped("__null__"), "%5F_null__");
  EXPECT_EQ(Escaped("__empty__"), "%5F_empty__");
  EXPECT_EQ(Escaped("__"), "%5F_");
  EXPECT_EQ(Escaped("_x_"), "_x_");

  // Long values: 111 bytes kept, "~", 16 hex digits of the SHA-256 of the raw value.
  const std::string long_a(10240, 'a');
  EXPECT_EQ(Escaped(long_a), std::string(111, 'a') + "~" + OpenSslSha256Hex(long_a).substr(0, 16));
  EXPECT_EQ(Escaped(std::string(128, 'a')), std::string(128, 'a'));
  EXPECT_EQ(Escaped(std::string(129, 'a')).size(), 128u);
  // A cut never splits an escape: "a" + 36 escapes, then the suffix.
  const std::string slashes = "a" + std::string(200, '/');
  std::string expected = "a";
  for (int i = 0; i < 36; ++i) expected += "%2F";
  EXPECT_EQ(Escaped(slashes), expected + "~" + OpenSslSha256Hex(slashes).substr(0, 16));
  EXPECT_EQ(Escaped(std::string(200, '/')).substr(0, 112), [] {
    std::string s;
    for (int i = 0; i < 37; ++i) s += "%2F";
    return s + "~";
  }());
}

// Hostile values on the real file system: each gets a directory of its own,
// one level below out/, and nothing is created outside out/. Two batches and
// max_open_files 4, so files are closed and reopened for append.
TEST(PartWriterPosixTest, HostileValuesStayInsideAndNeverCollide) {
  std::string tmpl = "/tmp/sluice_part_test_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl + "/out";
  const std::string big(10240, 'v');
  std::vector<std::optional<std::string>> values = {
      "..", ".", "...", "a/b", "../../etc", "/abs", std::string("a\0b", 3), std::string(1, '\0'), "line\nbreak",
      "\x01\x02\x1b[31m", "%", "%25", "100%", "\xff\xfe", "\xc3\xa9", "__null__", std::nullopt, "", "__empty__",
      "__", "_", "a=b", " ", "~", big, big + "w", big.substr(0, 5000) + "/" + big.substr(5001),
      std::string(300, '/'), std::string(300, '.'), "TRAVEL", "travel"};
  Schema schema({{"id", DataType::kInt64}, {"s", DataType::kString}});
  auto part = OpenPartWriter(Env::Default(), Partitioned(OutputFormat::kCsv, dir, 2, schema, {Plain("s")}, 4));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  for (int round = 0; round < 2; ++round) {
    Batch b;
    b.Reset(schema);
    for (size_t i = 0; i < values.size(); ++i) {
      b.columns[0].AppendInt64(static_cast<int64_t>(i));
      if (values[i]) b.columns[1].AppendString(*values[i]); else b.columns[1].AppendNull();
    }
    ASSERT_TRUE((*part)->Write(b).ok());
  }
  ASSERT_TRUE((*part)->Commit().ok());

  ASSERT_EQ((*part)->files().size(), values.size());
  std::set<std::string> dirs;
  for (const PartFile& f : (*part)->files()) {
    const size_t slash = f.path.find('/');
    ASSERT_NE(slash, std::string::npos) << f.path;
    EXPECT_EQ(f.path.substr(slash), "/part-00002.csv") << f.path;
    const std::string level = f.path.substr(0, slash);
    ASSERT_EQ(level.substr(0, 2), "s=") << f.path;
    const std::string value = level.substr(2);
    EXPECT_LE(value.size(), kMaxPartitionValueBytes);
    EXPECT_TRUE(std::all_of(value.begin(), value.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '%' || c == '~';
    })) << value;
    dirs.insert(level);
    // Each directory holds the rows of exactly one value, both rounds.
    auto text = ReadFileToString(Env::Default(), dir + "/" + f.path);
    ASSERT_TRUE(text.ok());
    std::vector<CsvRow> rows = ParseCsv(*text);
    ASSERT_EQ(rows.size(), 3u) << f.path;
    EXPECT_EQ(rows[0], CsvRow{"id"});
    EXPECT_EQ(rows[1], rows[2]);
    const size_t idx = std::stoul(*rows[1][0]);
    ASSERT_LT(idx, values.size());
    std::string expected_value = values[idx] ? Escaped(*values[idx]) : std::string(kNullPartitionValue);
    EXPECT_EQ(value, expected_value);
  }
  EXPECT_EQ(dirs.size(), values.size());
  EXPECT_TRUE(dirs.count("s=%2E%2E"));
  EXPECT_TRUE(dirs.count("s=..%2F..%2Fetc"));
  EXPECT_TRUE(dirs.count("s=__null__"));
  EXPECT_TRUE(dirs.count("s=%5F_null__"));
  EXPECT_TRUE(dirs.count("s=__empty__"));
  ExpectFilesMatchRecords(Env::Default(), dir, **part);

  // Nothing outside out/, and nothing in it but the committed files.
  std::vector<std::string> everything;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(tmpl)) {
    if (!entry.is_directory()) everything.push_back(std::filesystem::relative(entry.path(), dir).string());
  }
  std::sort(everything.begin(), everything.end());
  EXPECT_EQ(everything, Paths((*part)->files()));
  std::vector<std::string> top;
  for (const auto& entry : std::filesystem::directory_iterator(tmpl)) top.push_back(entry.path().filename());
  EXPECT_EQ(top, std::vector<std::string>{"out"});
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
}

TEST_F(PartWriterTest, TimeBucketLevels) {
  Schema schema({{"ts", DataType::kTimestamp}});
  auto part = OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 0, schema,
                                                {Window("ts", TimeWindow::kMonth), Window("ts", TimeWindow::kWeek),
                                                 Window("ts", TimeWindow::kHour)}));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  Batch b;
  b.Reset(schema);
  for (int64_t ts : {int64_t{1609459200000000},   // 2021-01-01T00 (a Friday)
                     int64_t{1609372800000000},   // 2020-12-31T00
                     int64_t{1709193600000000},   // 2024-02-29T08
                     int64_t{-1},                 // 1969-12-31T23:59:59.999999
                     int64_t{-310503600000000}})  // 1960-02-29T05 (a Monday)
    b.columns[0].AppendInt64(ts);
  ASSERT_TRUE((*part)->Write(b).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(Paths((*part)->files()),
            (std::vector<std::string>{
                "ts_month=1960-02/ts_week=1960-02-29/ts_hour=1960-02-29T05/part-00000.csv",
                "ts_month=1969-12/ts_week=1969-12-29/ts_hour=1969-12-31T23/part-00000.csv",
                "ts_month=2020-12/ts_week=2020-12-28/ts_hour=2020-12-31T00/part-00000.csv",
                "ts_month=2021-01/ts_week=2020-12-28/ts_hour=2021-01-01T00/part-00000.csv",
                "ts_month=2024-02/ts_week=2024-02-26/ts_hour=2024-02-29T08/part-00000.csv",
            }));
  EXPECT_EQ(*ReadFileToString(env(), "out/" + (*part)->files()[1].path), "ts\n1969-12-31T23:59:59.999999Z\n");
}

TEST_F(PartWriterTest, DateColumnsAsTimeBucketsAndPlainLevels) {
  Schema schema({{"day", DataType::kDate}, {"d", DataType::kDate}});
  auto part = OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 0, schema,
                                                {Window("day", TimeWindow::kMonth), Plain("d")}));
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  Batch b;
  b.Reset(schema);
  const int64_t feb29 = int64_t{19782} * 86400 * 1000000;  // 2024-02-29
  b.columns[0].AppendInt64(feb29);
  b.columns[1].AppendInt64(feb29);
  ASSERT_TRUE((*part)->Write(b).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(Paths((*part)->files()), (std::vector<std::string>{"day_month=2024-02/d=2024-02-29/part-00000.csv"}));
  EXPECT_EQ(*ReadFileToString(env(), "out/" + (*part)->files()[0].path), "day\n2024-02-29\n");
}

// Expected buckets computed independently (FNV-1a + splitmix64 in Python).
TEST(PartitionValueTest, HashBucketsArePinned) {
  auto of_int = [&](int64_t v, int buckets, DataType type = DataType::kInt64) {
    Column c(type);
    c.AppendInt64(v);
    return HashBucket(c, 0, buckets);
  };
  auto of_string = [](std::string_view v, int buckets) {
    Column c(DataType::kString);
    c.AppendString(v);
    return HashBucket(c, 0, buckets);
  };
  EXPECT_EQ(of_int(42, 16), 1u);
  EXPECT_EQ(of_int(42, 1000), 793u);
  EXPECT_EQ(of_int(-7, 16), 10u);
  EXPECT_EQ(of_int(-7, 1000), 154u);
  EXPECT_EQ(of_int(1704448800000000, 16, DataType::kTimestamp), 8u);
  EXPECT_EQ(of_int(1704448800000000, 1000, DataType::kTimestamp), 872u);
  EXPECT_EQ(of_string("alice", 16), 4u);
  EXPECT_EQ(of_string("alice", 1000), 660u);
  EXPECT_EQ(of_string("", 1000), 643u);
  Column nulls(DataType::kString);
  nulls.AppendNull();
  EXPECT_EQ(HashBucket(nulls, 0, 16), 10u);
  EXPECT_EQ(HashBucket(nulls, 0, 1000), 418u);
  Column bools(DataType::kBool);
  bools.AppendBool(true);
  EXPECT_EQ(HashBucket(bools, 0, 1000), 5u);
  // Floats hash by value: 42.0 as the integer 42, whatever the column type.
  Column f64(DataType::kFloat64);
  f64.AppendFloat64(42.0);
  f64.AppendFloat64(0.5);
  EXPECT_EQ(HashBucket(f64, 0, 1000), 793u);
  EXPECT_EQ(HashBucket(f64, 1, 1000), 535u);
  Column f32(DataType::kFloat32);
  f32.AppendFloat32(0.5f);
  EXPECT_EQ(HashBucket(f32, 0, 16), 7u);

  auto text = [](uint64_t bucket, int buckets) {
    std::string out;
    AppendHashBucketText(bucket, buckets, &out);
    return out;
  };
  EXPECT_EQ(text(0, 1), "0");
  EXPECT_EQ(text(5, 10), "5");
  EXPECT_EQ(text(5, 11), "05");
  EXPECT_EQ(text(7, 16), "07");
  EXPECT_EQ(text(5, 1000), "005");
  EXPECT_EQ(text(793, 1000), "793");
  EXPECT_EQ(text(5, 1001), "0005");
}

TEST(PartitionValueTest, HashBucketsAreRoughlyUniform) {
  Column ints(DataType::kInt64);
  Column strings(DataType::kString);
  for (int64_t i = 0; i < 16000; ++i) {
    ints.AppendInt64(i);
    strings.AppendString("user-" + std::to_string(i));
  }
  for (const Column* column : {&ints, &strings}) {
    std::vector<int> counts(16, 0);
    for (size_t row = 0; row < column->size(); ++row) ++counts[HashBucket(*column, row, 16)];
    for (int count : counts) {
      EXPECT_GT(count, 850);
      EXPECT_LT(count, 1150);
    }
  }
}

// Counts the writable files open at once through it.
class OpenFileCountingEnv : public EnvWrapper {
 public:
  explicit OpenFileCountingEnv(Env* target) : EnvWrapper(target) {}

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    ASSIGN_OR_RETURN(auto file, target()->NewWritableFile(path));
    return Track(std::move(file));
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    ++appendable_opens;
    ASSIGN_OR_RETURN(auto file, target()->NewAppendableFile(path));
    return Track(std::move(file));
  }

  int open = 0;
  int max_open = 0;
  int appendable_opens = 0;

 private:
  class File final : public WritableFile {
   public:
    File(OpenFileCountingEnv* env, std::unique_ptr<WritableFile> base) : env_(env), base_(std::move(base)) {}
    ~File() override { Release(); }
    Status Append(std::string_view data) override { return base_->Append(data); }
    Status Flush() override { return base_->Flush(); }
    Status Sync() override { return base_->Sync(); }
    Status Close() override {
      Release();
      return base_->Close();
    }

   private:
    void Release() {
      if (env_ != nullptr) --env_->open;
      env_ = nullptr;
    }
    OpenFileCountingEnv* env_;
    std::unique_ptr<WritableFile> base_;
  };

  std::unique_ptr<WritableFile> Track(std::unique_ptr<WritableFile> file) {
    max_open = std::max(max_open, ++open);
    return std::make_unique<File>(this, std::move(file));
  }
};

// 2000 partitions through 8 open files: every file is closed and reopened
// several times, and still holds its rows in order with a matching checksum.
TEST_F(PartWriterTest, ThousandsOfPartitionsWithFewOpenFiles) {
  OpenFileCountingEnv counting(env());
  Schema schema({{"k", DataType::kInt64}, {"row", DataType::kInt64}, {"text", DataType::kString}});
  auto part = OpenPartWriter(&counting, Partitioned(OutputFormat::kCsv, "out", 4, schema, {Plain("k")}, 8));
  ASSERT_TRUE(part.ok());
  constexpr int kPartitions = 2000;
  std::map<int64_t, std::string> expected;
  int64_t row = 0;
  for (int batch_idx = 0; batch_idx < 3; ++batch_idx) {
    Batch b;
    b.Reset(schema);
    for (int i = 0; i < 2 * kPartitions; ++i, ++row) {
      // Scattered keys, so consecutive rows go to different files.
      const int64_t k = (row * 7919) % kPartitions;
      b.columns[0].AppendInt64(k);
      b.columns[1].AppendInt64(row);
      b.columns[2].AppendString("r" + std::to_string(row));
      if (!expected.count(k)) expected[k] = "row,text\n";
      expected[k] += std::to_string(row) + ",r" + std::to_string(row) + "\n";
    }
    ASSERT_TRUE((*part)->Write(b).ok());
    EXPECT_LE(counting.open, 8);
  }
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(counting.open, 0);
  EXPECT_LE(counting.max_open, 8);
  EXPECT_GE(counting.appendable_opens, 2 * kPartitions);  // reopened in batches 2 and 3
  ASSERT_EQ((*part)->files().size(), static_cast<size_t>(kPartitions));
  for (const PartFile& f : (*part)->files()) {
    const int64_t k = std::stoll(f.path.substr(2, f.path.find('/') - 2));
    EXPECT_EQ(f.path, "k=" + std::to_string(k) + "/part-00004.csv");
    EXPECT_EQ(*ReadFileToString(env(), "out/" + f.path), expected[k]) << f.path;
    EXPECT_EQ(f.rows, 6);
  }
  EXPECT_EQ((*part)->rows_written(), 6 * kPartitions);
  ExpectFilesMatchRecords(env(), "out", **part);
  EXPECT_EQ(FilesBelow(env(), "out").size(), static_cast<size_t>(kPartitions));
}

// A failure anywhere (create, reopen, write, sync, rename of the 2nd file)
// drops the whole part: the error comes back and no file, committed or
// temporary, is left.
TEST_F(PartWriterTest, FaultsDropTheWholePartitionedPart) {
  Schema schema({{"k", DataType::kString}, {"v", DataType::kInt64}});
  struct Case {
    FaultOp op;
    int64_t nth;
    bool performed = false;  // the call happens, then reports failure
  };
  // Creates: a=1, b=2, reopen of a in the 2nd batch=3. Writes happen on each
  // close (max_open_files 1). Renames and syncs happen at Commit.
  for (Case c : {Case{FaultOp::kCreate, 2}, Case{FaultOp::kCreate, 3}, Case{FaultOp::kWrite, 1},
                 Case{FaultOp::kWrite, 3}, Case{FaultOp::kSync, 2}, Case{FaultOp::kRename, 1},
                 Case{FaultOp::kRename, 2}, Case{FaultOp::kRename, 2, true}}) {
    SCOPED_TRACE(std::string(FaultOpName(c.op)) + " #" + std::to_string(c.nth) + (c.performed ? " performed" : ""));
    auto mem = NewMemEnv();
    FaultInjectionEnv env(mem.get());
    env.AddRule(FaultRule{c.op, "part-00006", c.nth, false, StatusCode::kIOError, c.performed});
    auto part = OpenPartWriter(&env, Partitioned(OutputFormat::kCsv, "out", 6, schema, {Plain("k")}, 1));
    ASSERT_TRUE(part.ok());
    Status s = Status::OK();
    for (int batch_idx = 0; batch_idx < 2 && s.ok(); ++batch_idx) {
      Batch b;
      b.Reset(schema);
      for (const char* k : {"a", "b", "a"}) {
        b.columns[0].AppendString(k);
        b.columns[1].AppendInt64(batch_idx);
      }
      s = (*part)->Write(b);
    }
    if (s.ok()) s = (*part)->Commit();
    EXPECT_EQ(s.code(), StatusCode::kIOError);
    EXPECT_NE(s.message().find("injected fault"), std::string::npos) << s.message();
    EXPECT_EQ(env.Injected(c.op), 1);
    EXPECT_EQ(FilesBelow(mem.get(), "out"), std::vector<std::string>{});
    EXPECT_EQ((*part)->Commit().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE((*part)->files().empty());
  }
}

TEST_F(PartWriterTest, ZeroRowsPartitionedWritesNoFiles) {
  Schema schema({{"k", DataType::kString}, {"v", DataType::kInt64}});
  auto part = OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 0, schema, {Plain("k")}));
  ASSERT_TRUE(part.ok());
  Batch empty;
  empty.Reset(schema);
  ASSERT_TRUE((*part)->Write(empty).ok());
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_TRUE((*part)->files().empty());
  EXPECT_EQ((*part)->rows_written(), 0);
  EXPECT_EQ((*part)->bytes_written(), 0u);
  EXPECT_TRUE(FilesBelow(env(), "out").empty());
}

TEST_F(PartWriterTest, AbortRemovesEveryPartitionTemporary) {
  Schema schema({{"k", DataType::kInt64}});
  auto part = OpenPartWriter(env(), Partitioned(OutputFormat::kJsonl, "out", 0, schema, {Plain("k")}, 2));
  ASSERT_TRUE(part.ok());
  Batch b;
  b.Reset(schema);
  for (int64_t k = 0; k < 5; ++k) b.columns[0].AppendInt64(k);
  ASSERT_TRUE((*part)->Write(b).ok());
  EXPECT_EQ(FilesBelow(env(), "out").size(), 5u);
  part->reset();
  EXPECT_TRUE(FilesBelow(env(), "out").empty());
}

TEST_F(PartWriterTest, OpenErrorsNameThePartitionKey) {
  Schema schema({{"id", DataType::kInt64}, {"ts", DataType::kTimestamp}});
  auto missing = OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 0, schema, {Plain("id"), Plain("nope")}));
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(), "output.partition_by[1]: no column 'nope' in the output (columns: id, ts)");
  auto not_time =
      OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 0, schema, {Window("id", TimeWindow::kDay)}));
  EXPECT_EQ(not_time.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(not_time.status().message(),
            "output.partition_by[0]: time bucket 'day' needs a timestamp or date column; 'id' is int64");
  auto no_files = OpenPartWriter(env(), Partitioned(OutputFormat::kCsv, "out", 0, schema, {Plain("id")}, 0));
  EXPECT_EQ(no_files.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
