#include "source/jsonl_source.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/env.h"
#include "sluice/source.h"
#include "source/source_test_util.h"

namespace sluice {
namespace {

ReadOutput ReadJsonl(Env* env, const InputRange& range, SourceOptions options, const TextReadTuning& tuning = {}) {
  options.format = InputFormat::kJsonl;
  return InferAndRead(
      range, [&](const std::string& path) { return InferJsonlSchema(env, path, options, tuning); },
      [&](const InputRange& r, const Schema& schema, RejectSink* rejects) {
        return OpenJsonlSource(env, r, schema, options, rejects, tuning);
      });
}

struct JsonlCase {
  std::string name;
  std::string input;
  std::map<std::string, DataType> declared;
  std::vector<std::string> columns;  // selection; empty = all
  std::vector<std::string> rows;
  std::vector<int64_t> lines;
  std::vector<ExpectedReject> rejects = {};
};

const std::vector<JsonlCase>& Cases() {
  static const std::vector<JsonlCase> cases = {
      {"basic", "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":\"y\"}\n", {}, {}, {"1|x", "2|y"}, {1, 2}},
      {"crlf_and_no_final_newline", "{\"a\":1}\r\n{\"a\":2}", {}, {}, {"1", "2"}, {1, 2}},
      {"blank_lines", "\n{\"a\":1}\n  \r\n\t\n{\"a\":2}\n\n", {}, {}, {"1", "2"}, {2, 5}},
      {"bom", "\xEF\xBB\xBF{\"a\":1}\n", {}, {}, {"1"}, {1}},
      {"missing_key_and_null",
       "{\"a\":1,\"b\":\"x\"}\n{\"a\":2}\n{\"a\":null,\"b\":null}\n",
       {},
       {},
       {"1|x", "2|<null>", "<null>|<null>"},
       {1, 2, 3}},
      {"key_order_does_not_matter", "{\"b\":\"x\",\"a\":1}\n{\"a\":2,\"b\":\"y\"}\n", {}, {"a", "b"},
       {"1|x", "2|y"}, {1, 2}},
      // Keys are matched to columns by the previous line's order first: every change of order,
      // an unselected key where a column was, and a key past the previous line's end.
      {"key_order_changes_between_lines",
       "{\"a\":1,\"b\":\"x\"}\n{\"b\":\"y\",\"a\":2}\n{\"z\":0,\"a\":3}\n{\"a\":4,\"b\":\"w\",\"z\":9}\n"
       "{\"a\":5,\"b\":\"v\"}\n",
       {},
       {"a", "b"},
       {"1|x", "2|y", "3|<null>", "4|w", "5|v"},
       {1, 2, 3, 4, 5}},
      {"numbers_as_strings", "{\"v\":1.5}\n{\"v\":\"3.5\"}\n{\"v\":\" 2 \"}\n", {{"v", DataType::kFloat64}}, {}, {"1.5", "3.5", "2"}, {1, 2, 3}},
      {"numbers_for_string_column",
       "{\"s\":\"x\"}\n{\"s\":15}\n{\"s\":1.5e3}\n{\"s\":-7}\n{\"s\":18446744073709551615}\n{\"s\":true}\n",
       {{"s", DataType::kString}},
       {},
       {"x", "15", "1500", "-7", "18446744073709551615", "true"},
       {1, 2, 3, 4, 5, 6}},
      {"nested_selected_as_string",
       "{\"n\":{\"k\": [1, 2]}}\n{\"n\":[true, null]}\n{\"n\":\"plain\"}\n",
       {{"n", DataType::kString}},
       {},
       {"{\"k\":[1,2]}", "[true,null]", "plain"},
       {1, 2, 3}},
      {"nested_for_scalar_column",
       "{\"a\":1,\"v\":2}\n{\"a\":2,\"v\":{\"x\":1}}\n{\"a\":3,\"v\":[1]}\n{\"a\":4,\"v\":5}\n",
       {{"v", DataType::kFloat64}},
       {},
       {"1|2", "4|5"},
       {1, 4},
       {{2, "nested_value", "v"}, {3, "nested_value", "v"}}},
      {"nested_in_unselected_key_is_fine", "{\"a\":1,\"deep\":{\"x\":[1,{\"y\":2}]}}\n", {}, {"a"}, {"1"}, {1}},
      {"invalid_json",
       "{\"a\":1}\n{\"a\":\n{\"a\":2}}\nnot json\n{\"a\":3}\n{\"a\":tru}\n",
       {},
       {},
       {"1", "3"},
       {1, 5},
       {{2, "invalid_json", ""}, {3, "invalid_json", ""}, {4, "invalid_json", ""}, {6, "invalid_json", ""}}},
      {"not_an_object",
       "[1,2]\n\"str\"\n42\n{\"a\":1}\nnull\n",
       {},
       {},
       {"1"},
       {4},
       {{1, "invalid_json", ""}, {2, "invalid_json", ""}, {3, "invalid_json", ""}, {5, "invalid_json", ""}}},
      {"invalid_utf8",
       "{\"s\":\"ok\"}\n{\"s\":\"bad\xff\"}\n{\"s\":\"\xc3\xa9\"}\n",
       {},
       {},
       {"ok", "\xc3\xa9"},
       {1, 3},
       {{2, "invalid_utf8", ""}}},
      {"type_mismatch",
       "{\"v\":1.5}\n{\"v\":\"abc\"}\n{\"v\":true}\n{\"v\":2}\n",
       {{"v", DataType::kFloat64}},
       {},
       {"1.5", "2"},
       {1, 4},
       {{2, "bad_value", "v"}, {3, "bad_value", "v"}}},
      {"int64_column",
       "{\"i\":3}\n{\"i\":3.0}\n{\"i\":\"4\"}\n{\"i\":3.5}\n{\"i\":1e30}\n{\"i\":18446744073709551615}\n",
       {{"i", DataType::kInt64}},
       {},
       {"3", "3", "4"},
       {1, 2, 3},
       {{4, "bad_value", "i"}, {5, "bad_value", "i"}, {6, "bad_value", "i"}}},
      {"bool_column",
       "{\"b\":true}\n{\"b\":false}\n{\"b\":1}\n{\"b\":\"yes\"}\n{\"b\":2}\n{\"b\":\"maybe\"}\n",
       {{"b", DataType::kBool}},
       {},
       {"true", "false", "true", "true"},
       {1, 2, 3, 4},
       {{5, "bad_value", "b"}, {6, "bad_value", "b"}}},
      {"timestamp_column",
       "{\"t\":\"2024-01-05T10:11:12+02:00\"}\n{\"t\":\"2024-01-05\"}\n{\"t\":1704412800}\n{\"t\":\"\"}\n",
       {{"t", DataType::kTimestamp}},
       {},
       {"1704442272000000", "1704412800000000", "<null>"},
       {1, 2, 4},
       {{3, "bad_value", "t"}}},
      {"duplicate_key_last_wins", "{\"a\":1,\"a\":2}\n", {}, {}, {"2"}, {1}},
      {"escaped_key_and_value", "{\"a\\u0062\":\"x\\ny\\\"\"}\n", {}, {}, {"x\ny\""}, {1}},
      // Lines of only numbers and nulls (read without simdjson when they are plain) between
      // lines that are not: keys in changing order, spaces, bad numbers, other value types.
      {"numbers_and_nulls",
       "{\"id\":1,\"x\":1.5,\"y\":null}\n{\"y\":2e3, \"id\":2 ,\"x\":-0.25}\n{\"id\":3,\"x\":1e400}\n"
       "{\"id\":4,\"x\":01}\n  {\"id\":5,\"x\":7}  \t\n{\"id\":6,\"x\":\"8\"}\n{\"id\":7,\"x\":1.5,\"y\":true}\n"
       "{\"id\":8,\"x\":3,\"x\":null}\n{\"id\":9.5,\"x\":1}\n{\"id\":10,\"x\":1}}\n{\"id\":11,\"x\":3.0}\n"
       "{\"id\":12,\"x\":1.}\n{\"id\":13}\n{\"x\":4,\"id\":14.0}\n",
       {{"id", DataType::kInt64}, {"x", DataType::kFloat64}, {"y", DataType::kFloat64}},
       {"id", "x", "y"},
       {"1|1.5|<null>", "2|-0.25|2000", "5|7|<null>", "6|8|<null>", "8|<null>|<null>", "11|3|<null>",
        "13|<null>|<null>", "14|4|<null>"},
       {1, 2, 5, 6, 8, 11, 13, 14},
       {{3, "invalid_json", ""},
        {4, "invalid_json", ""},
        {7, "bad_value", "y"},
        {9, "bad_value", "id"},
        {10, "invalid_json", ""},
        {12, "invalid_json", ""}}},
  };
  return cases;
}

class JsonlConformanceTest : public ::testing::TestWithParam<size_t> {};

TEST_P(JsonlConformanceTest, ParsesExactly) {
  const JsonlCase& c = Cases()[GetParam()];
  for (const size_t chunk_bytes : {kDefaultChunkBytes, size_t{1}, size_t{3}, size_t{7}}) {
    SCOPED_TRACE(c.name + " chunk_bytes=" + std::to_string(chunk_bytes));
    auto env = NewMemEnv();
    WriteFile(env.get(), "in.jsonl", c.input);
    SourceOptions options;
    options.declared_types = c.declared;
    options.columns = c.columns;
    options.batch_rows = 2;
    TextReadTuning tuning;
    tuning.chunk_bytes = chunk_bytes;
    ReadOutput out = ReadJsonl(env.get(), InputRange{"in.jsonl"}, options, tuning);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(out.rows, c.rows);
    EXPECT_EQ(out.lines, c.lines);
    ExpectRejects(out.rejects, c.rejects, "in.jsonl");
    EXPECT_EQ(out.bytes_read, c.input.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, JsonlConformanceTest, ::testing::Range(size_t{0}, Cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) { return Cases()[info.param].name; });

TEST(JsonlSourceTest, InfersColumnsInFirstSeenOrderAndTypes) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.jsonl",
            "{\"id\":1,\"amount\":2,\"flag\":true,\"ts\":\"2024-01-05\",\"none\":null}\n"
            "{\"id\":2,\"amount\":2.5,\"extra\":\"x\",\"nested\":{\"a\":1},\"zip\":\"01234\",\"ts\":\"2024-01-06T00:00:00Z\"}\n"
            "{\"id\":3,\"late\":1}\n");
  SourceOptions options;
  options.format = InputFormat::kJsonl;
  options.infer_rows = 2;
  options.declared_types = {{"declared_only", DataType::kInt64}, {"flag", DataType::kString}};
  auto schema = InferSchema(env.get(), "in.jsonl", options);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(*schema, Schema({{"id", DataType::kInt64},
                              {"amount", DataType::kFloat64},
                              {"flag", DataType::kString},
                              {"ts", DataType::kTimestamp},
                              {"none", DataType::kFloat64},
                              {"extra", DataType::kString},
                              {"nested", DataType::kString},
                              {"zip", DataType::kString},
                              {"declared_only", DataType::kInt64}}));
}

TEST(JsonlSourceTest, InferenceCases) {
  struct Case {
    std::string values;  // JSON values of key "v", comma separated lines
    DataType expected;
  };
  const std::vector<Case> cases = {
      {"1|2|-3", DataType::kInt64},
      {"1|2.5", DataType::kFloat64},
      {"1|18446744073709551615", DataType::kFloat64},
      {"true|false", DataType::kBool},
      {"true|1", DataType::kString},
      {"\"2024-01-05\"|\"2024-01-05 10:00:00+01:00\"", DataType::kTimestamp},
      {"\"3\"|\"4\"", DataType::kString},
      {"null|null", DataType::kFloat64},
      {"\"\"|null", DataType::kFloat64},
      {"[1]|{}", DataType::kString},
      {"1|\"x\"", DataType::kString},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.values);
    std::string input;
    size_t start = 0;
    while (start <= c.values.size()) {
      size_t bar = c.values.find('|', start);
      if (bar == std::string::npos) bar = c.values.size();
      input += "{\"v\":" + c.values.substr(start, bar - start) + "}\n";
      start = bar + 1;
    }
    auto env = NewMemEnv();
    WriteFile(env.get(), "in.jsonl", input);
    SourceOptions options;
    options.format = InputFormat::kJsonl;
    auto schema = InferSchema(env.get(), "in.jsonl", options);
    ASSERT_TRUE(schema.ok()) << schema.status().ToString();
    ASSERT_EQ(schema->num_fields(), 1u);
    EXPECT_EQ(schema->field(0).type, c.expected) << DataTypeName(schema->field(0).type);
  }
}

TEST(JsonlSourceTest, KeyOnlyDeclaredCanBeSelected) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.jsonl", "{\"a\":1}\n{\"a\":2,\"late\":7}\n");
  SourceOptions options;
  options.infer_rows = 1;
  options.declared_types = {{"late", DataType::kInt64}};
  options.columns = {"late", "a"};
  ReadOutput out = ReadJsonl(env.get(), InputRange{"in.jsonl"}, options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.rows, (std::vector<std::string>{"<null>|1", "7|2"}));
}

TEST(JsonlSourceTest, MissingColumnIsAnErrorAtOpen) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "x.jsonl", "{\"a\":1,\"b\":2}\n");
  SourceOptions options;
  options.columns = {"foo"};
  ReadOutput out = ReadJsonl(env.get(), InputRange{"x.jsonl"}, options);
  EXPECT_EQ(out.status.code(), StatusCode::kNotFound);
  EXPECT_EQ(out.status.message(), "input 'x.jsonl': no column 'foo' (columns: a, b)");
}

TEST(JsonlSourceTest, NoObjectsToInferFrom) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "x.jsonl", "\n[1]\n");
  SourceOptions options;
  options.format = InputFormat::kJsonl;
  auto schema = InferSchema(env.get(), "x.jsonl", options);
  EXPECT_EQ(schema.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(schema.status().message(),
            "input 'x.jsonl': no JSON object with keys in the first 1000 lines to infer the columns from");
}

// Lines of numbers and nulls are read in one pass without simdjson when their
// keys and numbers are plain. Each line here is read as is and with a string
// value put first (which simdjson reads): both give the same values and rejects.
TEST(JsonlSourceTest, PlainLinesReadAsSimdjsonReadsThem) {
  const std::vector<std::string> lines = {
      R"({"i":1,"f":1.5,"g":2.5})",
      R"({"f":-0.0,"g":-0,"i":-0})",
      R"({"f":-0.0,"g":-1.5,"i":-5})",
      R"({"f":-2.5e-3,"g":-1e-30})",
      R"({"f":0,"i":0,"g":0.0})",
      R"({"f":1e-400,"g":-1e-400})",
      R"({"f":2.2250738585072011e-308,"g":4.9e-324})",
      R"({"f":1.7976931348623157e308,"g":3.4028235e38})",
      R"({"f":1e309})",
      R"({"f":-1e309})",
      R"({"f":0.1000000000000000055511151231257827021181583404541015625})",
      R"({"f":3.14159265358979323846264338327950288,"g":123456789012345678901234567890})",
      R"({"f":9007199254740993,"g":9007199254740993.0})",
      R"({"f":9007199254740993e-3,"g":0.000000000000000000000000001})",
      R"({"f":1.5e-22,"g":1.5e22,"i":123456789012345678})",
      R"({"f":1.5e-23,"g":1.5e23,"i":-123456789012345678})",
      R"({"f":12345678901234567890e-5,"g":1234567890123456789e-5})",
      R"({"i":1234567890123456789})",
      R"({"i":9223372036854775807})",
      R"({"i":9223372036854775808})",
      R"({"i":-9223372036854775808})",
      R"({"i":-9223372036854775809})",
      R"({"i":18446744073709551616})",
      R"({"i":3.0})",
      R"({"i":3.5})",
      R"({"i":1e2})",
      R"({"f":1E+2,"g":1e-2,"i":2})",
      R"({"f":0e999999})",
      R"({"f":1e0001,"g":1e-0001})",
      R"({"f":01})",
      R"({"f":-01})",
      R"({"f":1.})",
      R"({"f":.5})",
      R"({"f":+1})",
      R"({"f":-})",
      R"({"f":1e})",
      R"({"f":1e+})",
      R"({"f":--1})",
      R"({"f":1.5.5})",
      R"({"f":0x10})",
      R"({"f":Infinity})",
      R"({"f":NaN})",
      R"({"f":nul})",
      R"({"f":nullx})",
      R"({"f":null,"i":null})",
      R"({"s":15,"b":1})",
      R"({"s":1.50,"b":0})",
      R"({"b":2})",
      R"({"ab":1,"f":2})",
      R"({"f":3,"i":1})",
      R"({"ff":2,"f":1})",
      R"({"i":1,"i":2})",
      R"({"i":1,"i":null})",
      R"({"i":1,})",
      R"({"i":1 "f":2})",
      R"({"i" 1})",
      R"({"i":1} x)",
      R"({"i":1}})",
      "{ \"i\" : 1 , \"f\" :\t2 }  \t",
      R"({"i":1}{"i":2})",
      R"({"unknown":1e5,"other":null,"f":-7})",
      "{\"\xc3\xa9\":1,\"f\":2}",
      "{\"f\":2,\"\t\":1}",
      "{\"f\":2,\"\x7f\":1}",
      R"({"f)",
      R"({"f":)",
      R"({"f":1)",
      R"({"f":1,)",
      R"({"i":1,"f":2.5})",
  };
  std::string plain;
  std::string parsed;
  for (const std::string& line : lines) {
    plain += line + "\n";
    parsed += "{\"zz\":\"s\"," + line.substr(1) + "\n";
  }
  SourceOptions options;
  options.declared_types = {{"i", DataType::kInt64},
                            {"f", DataType::kFloat64},
                            {"g", DataType::kFloat32},
                            {"s", DataType::kString},
                            {"b", DataType::kBool}};
  options.columns = {"i", "f", "g", "s", "b"};
  for (const size_t chunk_bytes : {kDefaultChunkBytes, size_t{1}, size_t{7}}) {
    SCOPED_TRACE("chunk_bytes=" + std::to_string(chunk_bytes));
    TextReadTuning tuning;
    tuning.chunk_bytes = chunk_bytes;
    auto read = [&](const std::string& input) {
      auto env = NewMemEnv();
      WriteFile(env.get(), "in.jsonl", input);
      return ReadJsonl(env.get(), InputRange{"in.jsonl"}, options, tuning);
    };
    const ReadOutput got = read(plain);
    const ReadOutput want = read(parsed);
    ASSERT_TRUE(got.status.ok()) << got.status.ToString();
    ASSERT_TRUE(want.status.ok()) << want.status.ToString();
    EXPECT_EQ(got.rows, want.rows);
    EXPECT_EQ(got.lines, want.lines);
    ASSERT_EQ(got.rejects.size(), want.rejects.size());
    for (size_t reject_idx = 0; reject_idx < got.rejects.size(); ++reject_idx) {
      const Reject& reject = got.rejects[reject_idx];
      SCOPED_TRACE(reject.message);
      EXPECT_EQ(reject.line, want.rejects[reject_idx].line);
      EXPECT_EQ(reject.reason, want.rejects[reject_idx].reason);
      EXPECT_EQ(reject.column, want.rejects[reject_idx].column);
      if (reject.reason != "invalid_json") {  // else the value is the line, which differs
        EXPECT_EQ(reject.message, want.rejects[reject_idx].message);
        EXPECT_EQ(reject.value, want.rejects[reject_idx].value);
      }
    }
  }
}

TEST(JsonlSourceTest, RejectMessages) {
  auto env = NewMemEnv();
  const std::string input = "{\"v\":1}\n{\"v\":\"abc\"}\n{\"v\":[1,2]}\n{\"v\":\n";
  WriteFile(env.get(), "in.jsonl", input);
  SourceOptions options;
  options.infer_rows = 1;
  ReadOutput out = ReadJsonl(env.get(), InputRange{"in.jsonl"}, options);
  ASSERT_TRUE(out.status.ok());
  ASSERT_EQ(out.rejects.size(), 3u);
  EXPECT_EQ(out.rejects[0].message,
            "input 'in.jsonl' line 2, column 'v': cannot parse 'abc' as int64 (type inferred from the first 1 rows; "
            "declare it under input.schema.v to read it as another type)");
  EXPECT_EQ(out.rejects[0].value, "abc");
  EXPECT_EQ(out.rejects[0].byte_offset, static_cast<int64_t>(input.find("{\"v\":\"abc")));
  EXPECT_EQ(out.rejects[1].message,
            "input 'in.jsonl' line 3, column 'v': a JSON array where a value of type int64 is expected");
  EXPECT_EQ(out.rejects[1].value, "[1,2]");
  EXPECT_EQ(out.rejects[2].reason, "invalid_json");
  EXPECT_EQ(out.rejects[2].line, 4);
  EXPECT_EQ(out.rejects[2].value, "{\"v\":");
}

TEST(JsonlSourceTest, FileRangeStartingMidFile) {
  std::string input;
  std::vector<uint64_t> offsets;
  for (int row = 1; row <= 10; ++row) {
    if (row == 4) input += "\n";  // a blank line shifts later line numbers
    offsets.push_back(input.size());
    input += "{\"id\":" + std::to_string(row) + "}\n";
  }
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.jsonl", input);
  ReadOutput middle = ReadJsonl(env.get(), InputRange{"in.jsonl", offsets[4], offsets[7]}, SourceOptions{});
  ASSERT_TRUE(middle.status.ok());
  EXPECT_EQ(middle.rows, (std::vector<std::string>{"5", "6", "7"}));
  EXPECT_EQ(middle.lines, (std::vector<int64_t>{6, 7, 8}));
  EXPECT_EQ(middle.bytes_read, offsets[7] - offsets[4]);

  std::vector<std::string> rows;
  for (const auto& [begin, end] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, offsets[2]}, {offsets[2], offsets[9]}, {offsets[9], UINT64_MAX}}) {
    ReadOutput part = ReadJsonl(env.get(), InputRange{"in.jsonl", begin, end}, SourceOptions{});
    ASSERT_TRUE(part.status.ok());
    rows.insert(rows.end(), part.rows.begin(), part.rows.end());
  }
  EXPECT_EQ(rows.size(), 10u);
  EXPECT_EQ(rows.front(), "1");
  EXPECT_EQ(rows.back(), "10");
}

TEST(JsonlSourceTest, LinesNumberedFromTheRangesFirstLineAndBatchBytes) {
  std::string input;
  std::vector<uint64_t> offsets;
  for (int row = 10; row < 30; ++row) {
    offsets.push_back(input.size());
    input += "{\"id\":" + std::to_string(row) + "}\n";  // 10 bytes a line
  }
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.jsonl", input);
  ReadOutput out = ReadJsonl(env.get(), InputRange{"in.jsonl", offsets[3], offsets[5], 500}, SourceOptions{});
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.rows, (std::vector<std::string>{"13", "14"}));
  EXPECT_EQ(out.lines, (std::vector<int64_t>{500, 501}));

  SourceOptions options;
  options.format = InputFormat::kJsonl;
  options.max_batch_bytes = 25;
  auto schema = InferSchema(env.get(), "in.jsonl", options);
  ASSERT_TRUE(schema.ok());
  auto source = OpenSource(env.get(), InputRange{"in.jsonl"}, *schema, options, nullptr);
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(BatchSizes(source->get(), 3, 4096, 50), (std::vector<size_t>{3, 3, 3, 5, 5, 1}));
}

TEST(JsonlSourceTest, LineSpanningChunksAndLineLimit) {
  const std::string long_value(5000, 'q');
  const std::string input = "{\"s\":\"a\"}\n{\"s\":\"" + long_value + "\"}\n{\"s\":\"b\"}\n";
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.jsonl", input);
  TextReadTuning tuning;
  tuning.chunk_bytes = 64;
  ReadOutput out = ReadJsonl(env.get(), InputRange{"in.jsonl"}, SourceOptions{}, tuning);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.rows, (std::vector<std::string>{"a", long_value, "b"}));

  tuning.max_record_bytes = 1000;
  SourceOptions options;
  options.infer_rows = 1;
  ReadOutput limited = ReadJsonl(env.get(), InputRange{"in.jsonl"}, options, tuning);
  EXPECT_EQ(limited.status.code(), StatusCode::kCorruption);
  EXPECT_EQ(limited.status.message(), "input 'in.jsonl' line 2: line larger than 1000 bytes");
}

TEST(JsonlSourceTest, StreamsManyRowsInBatches) {
  constexpr int kRows = 200000;
  std::string input;
  for (int row = 0; row < kRows; ++row) {
    input += "{\"id\":" + std::to_string(row) + ",\"x\":" + std::to_string(row % 10) + ".5,\"tag\":\"t" +
             std::to_string(row % 7) + "\"}\n";
  }
  auto env = NewMemEnv();
  WriteFile(env.get(), "big.jsonl", input);
  SourceOptions options;
  options.format = InputFormat::kJsonl;
  options.batch_rows = 4096;
  auto schema = InferSchema(env.get(), "big.jsonl", options);
  ASSERT_TRUE(schema.ok());
  CollectRejects rejects;
  auto source = OpenSource(env.get(), InputRange{"big.jsonl"}, *schema, options, &rejects);
  ASSERT_TRUE(source.ok());
  Batch batch;
  int64_t rows = 0;
  int64_t id_sum = 0;
  size_t batches = 0;
  while (true) {
    auto more = (*source)->Next(&batch);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    ++batches;
    for (size_t row = 0; row < batch.num_rows(); ++row) id_sum += batch.columns[0].int64s()[row];
    rows += static_cast<int64_t>(batch.num_rows());
    EXPECT_LT(batch.ByteSize(), size_t{1} << 20);
  }
  EXPECT_EQ(rows, kRows);
  EXPECT_EQ(batches, (kRows + 4095) / 4096);
  EXPECT_EQ(id_sum, int64_t{kRows} * (kRows - 1) / 2);
  EXPECT_TRUE(rejects.rejects.empty());
}

}  // namespace
}  // namespace sluice
