#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "env/fault_injection_env.h"
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
  ASSERT_TRUE((*part)->Commit().ok());
  EXPECT_EQ(Children("out"), std::vector<std::string>{"part-00007.csv"});
  EXPECT_EQ(*ReadFileToString(env(), "out/part-00007.csv"), "x\n1\n");
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
  {
    auto part = OpenPart(env(), OutputFormat::kJsonl, "out", 2, schema);
    ASSERT_TRUE(part.ok());
    ASSERT_TRUE((*part)->Write(b).ok());
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

}  // namespace
}  // namespace sluice
