#include "source/csv_source.h"

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

ReadOutput ReadCsv(Env* env, const InputRange& range, const SourceOptions& options,
                   const TextReadTuning& tuning = {}) {
  return InferAndRead(
      range, [&](const std::string& path) { return InferCsvSchema(env, path, options, tuning); },
      [&](const InputRange& r, const Schema& schema, RejectSink* rejects) {
        return OpenCsvSource(env, r, schema, options, rejects, tuning);
      });
}

struct CsvCase {
  std::string name;
  std::string input;
  std::vector<std::string> rows;
  std::vector<int64_t> lines;
  std::vector<ExpectedReject> rejects = {};
  CsvOptions csv = {};
  std::map<std::string, DataType> declared = {};
};

const std::vector<CsvCase>& ConformanceCases() {
  static const std::vector<CsvCase> cases = {
      {"basic_lf", "a,b\n1,x\n2,y\n", {"1|x", "2|y"}, {2, 3}},
      {"no_final_newline", "a,b\n1,x\n2,y", {"1|x", "2|y"}, {2, 3}},
      {"crlf", "a,b\r\n1,x\r\n2,y\r\n", {"1|x", "2|y"}, {2, 3}},
      {"crlf_no_final_newline", "a,b\r\n1,x\r\n2,y", {"1|x", "2|y"}, {2, 3}},
      {"cr_at_end_of_file", "a,b\r\n1,x\r", {"1|x"}, {2}},
      {"lone_cr_is_data", "a,b\n1,x\ry\n", {"1|x\ry"}, {2}},
      {"quoted_delimiter", "a,b\n1,\"x,y\"\n", {"1|x,y"}, {2}},
      {"doubled_quotes", "a,b\n1,\"say \"\"hi\"\"\"\n2,\"\"\"\"\n", {"1|say \"hi\"", "2|\""}, {2, 3}},
      {"quoted_newline", "a,b\n1,\"line1\nline2\"\n2,z\n", {"1|line1\nline2", "2|z"}, {2, 4}},
      {"quoted_crlf_newline", "a,b\r\n1,\"x\r\ny\"\r\n2,z\r\n", {"1|x\r\ny", "2|z"}, {2, 4}},
      {"quoted_field_at_eof", "a,b\n1,\"x\"", {"1|x"}, {2}},
      {"quoted_many_newlines", "a,b\n1,\"\n\n\n\"\n2,z\n", {"1|\n\n\n", "2|z"}, {2, 6}},
      {"bom_skipped", "\xEF\xBB\xBF" "a,b\n1,x\n", {"1|x"}, {2}},
      {"bom_quoted_header", "\xEF\xBB\xBF\"a\",b\n1,x\n", {"1|x"}, {2}},
      {"empty_fields_and_nulls",
       "a,b,c\n1,,x\n2,\"\",NA\n3,null,\"NA\"\n",
       {"1|<null>|x", "2||<null>", "3|<null>|NA"},
       {2, 3, 4},
       {},
       {},
       {{"b", DataType::kString}, {"c", DataType::kString}}},
      {"quoted_empty_is_null_for_numbers", "a,b\n1,\"\"\n2,3.5\n", {"1|<null>", "2|3.5"}, {2, 3}},
      {"trailing_delimiter", "a,b\n1,\n", {"1|<null>"}, {2}, {}, {}, {{"b", DataType::kString}}},
      {"custom_null_tokens", "a,b\n1,-\n2,\n", {"1|<null>", "2|"}, {2, 3}, {},
       CsvOptions{',', true, '"', {"-"}}, {{"b", DataType::kString}}},
      {"blank_lines_skipped", "a,b\n\n1,x\n\r\n2,y\n\n", {"1|x", "2|y"}, {3, 5}},
      // Fields and records longer than the eight-byte steps of the structure scan, with the
      // delimiter, CR and LF at every offset within a step; a null token's length among them.
      {"long_fields_every_offset",
       "a,b\n1234567890123,abcdefghij\n12345678,abcdefg\r\n123456789,abcdefgh\ri\n1,NA\n"
       "1234567,abcdefghijklmnopqrstuvwxyz",
       {"1234567890123|abcdefghij", "12345678|abcdefg", "123456789|abcdefgh\ri", "1|NA",
        "1234567|abcdefghijklmnopqrstuvwxyz"},
       {2, 3, 4, 5, 6}, {}, CsvOptions{',', true, '"', {"", "nul"}}, {{"b", DataType::kString}}},
      {"long_null_token", "a,b\n1,missing\n2,missing_not\n", {"1|<null>", "2|missing_not"}, {2, 3}, {},
       CsvOptions{',', true, '"', {"missing"}}, {{"b", DataType::kString}}},
      {"quote_inside_unquoted_field", "a,b\n1,ab\"c\n", {"1|ab\"c"}, {2}},
      {"text_after_closing_quote", "a,b\n1,\"ab\"c\n", {"1|abc"}, {2}},
      {"semicolon_and_single_quote", "a;b\n1;'x;y'\n2;'it''s'\n", {"1|x;y", "2|it's"}, {2, 3}, {},
       CsvOptions{';', true, '\'', {""}}},
      {"tab_delimited", "a\tb\n1\tx y\n", {"1|x y"}, {2}, {}, CsvOptions{'\t', true, '"', {""}}},
      {"quoting_off", "a,b\n1,\"x\"\n2,\"y,z\"\n", {"1|\"x\""}, {2}, {{3, "ragged_row", ""}},
       CsvOptions{',', true, '\0', {""}}},
      {"no_header", "1,x\n2,y\n", {"1|x", "2|y"}, {1, 2}, {}, CsvOptions{',', false, '"', {""}}},
      {"ragged_rows",
       "a,b\n1,x\n2\n3,y,z\n4,w\n",
       {"1|x", "4|w"},
       {2, 5},
       {{3, "ragged_row", ""}, {4, "ragged_row", ""}}},
      {"unterminated_quote",
       "a,b\n1,x\n2,\"open\n3,y\n",
       {"1|x"},
       {2},
       {{3, "unterminated_quote", ""}}},
      {"unterminated_quote_after_quoted_newline",
       "a,b\n1,\"p\nq\"\n2,\"r\ns\n",
       {"1|p\nq"},
       {2},
       {{4, "unterminated_quote", ""}}},
      {"invalid_utf8",
       "a,b\n1,ok\n2,bad\xff\n3,\xc3\xa9\n4,\xe2\x82\n",
       {"1|ok", "3|\xc3\xa9"},
       {2, 4},
       {{3, "invalid_utf8", "b"}, {5, "invalid_utf8", "b"}}},
      {"invalid_utf8_overlong_and_surrogate",
       "a,b\n\xc0\xaf,1\n\xed\xa0\x80,2\nok,3\n",
       {"ok|3"},
       {4},
       {{2, "invalid_utf8", "a"}, {3, "invalid_utf8", "a"}}},
      {"bad_value",
       "a,b\n1,x\nfoo,y\n3,z\n",
       {"1|x", "3|z"},
       {2, 4},
       {{3, "bad_value", "a"}},
       {},
       {{"a", DataType::kInt64}}},
      // Number fields are parsed while the record is scanned; text that is not
      // exactly one number (sign '+', spaces, a partial number, overflow, quotes)
      // takes the general path, and null tokens still win over numbers.
      {"numbers_in_one_pass",
       "a,b,c\n1,2.5,x\n-7,1e3,y\r\n+3, 4.5 ,z\n0x1,1,w\n9223372036854775808,1,v\n4,1.5e,u\n5,nan,t\n"
       "6,NA,s\n7,1e999,r\n8,\"9.5\",q\n-999,-999,p\n10,-0,o",
       {"1|2.5|x", "-7|1000|y", "3|4.5|z", "5|nan|t", "6|<null>|s", "7|inf|r", "8|9.5|q", "<null>|<null>|p",
        "10|-0|o"},
       {2, 3, 4, 8, 9, 10, 11, 12, 13},
       {{5, "bad_value", "a"}, {6, "bad_value", "a"}, {7, "bad_value", "b"}},
       CsvOptions{',', true, '"', {"", "NA", "-999"}},
       {{"a", DataType::kInt64}, {"b", DataType::kFloat64}, {"c", DataType::kString}}},
      // A null token that is itself a number ("nan" parses as one) still makes a null.
      {"number_null_token", "a,b\n1,nan\n2,2\n", {"1|<null>", "2|2"}, {2, 3}, {},
       CsvOptions{',', true, '"', {"nan"}}, {{"b", DataType::kFloat64}}},
      {"float32_numbers_in_one_pass", "a,b\n1,0.1\n2,1e39\n3,x\n", {"1|0.1", "2|inf"}, {2, 3},
       {{4, "bad_value", "b"}}, {}, {{"a", DataType::kInt64}, {"b", DataType::kFloat32}}},
      {"every_problem_once",
       "a,b\n1,x\n\n2\n\xff,y\nq,z\n5,w\n6,\"never closed\n",
       {"1|x", "5|w"},
       {2, 7},
       {{4, "ragged_row", ""}, {5, "invalid_utf8", "a"}, {6, "bad_value", "a"}, {8, "unterminated_quote", ""}},
       {},
       {{"a", DataType::kInt64}}},
  };
  return cases;
}

class CsvConformanceTest : public ::testing::TestWithParam<size_t> {};

// Every case is read with the default chunk and with tiny chunks, so that every
// record, quote and CRLF also straddles a chunk boundary somewhere.
TEST_P(CsvConformanceTest, ParsesExactly) {
  const CsvCase& c = ConformanceCases()[GetParam()];
  for (const size_t chunk_bytes : {kDefaultChunkBytes, size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{8}}) {
    SCOPED_TRACE(c.name + " chunk_bytes=" + std::to_string(chunk_bytes));
    auto env = NewMemEnv();
    WriteFile(env.get(), "in.csv", c.input);
    SourceOptions options;
    options.csv = c.csv;
    options.declared_types = c.declared;
    options.batch_rows = 2;
    TextReadTuning tuning;
    tuning.chunk_bytes = chunk_bytes;
    ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, options, tuning);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(out.rows, c.rows);
    EXPECT_EQ(out.lines, c.lines);
    ExpectRejects(out.rejects, c.rejects, "in.csv");
    EXPECT_EQ(out.bytes_read, c.input.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, CsvConformanceTest, ::testing::Range(size_t{0}, ConformanceCases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return ConformanceCases()[info.param].name;
                         });

TEST(CsvSourceTest, HeaderNamesWithBomAndQuotes) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "\xEF\xBB\xBF\"first name\",\"a,b\",\"q\"\"\"\nx,y,z\n");
  auto schema = InferSchema(env.get(), "in.csv", SourceOptions{});
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  ASSERT_EQ(schema->num_fields(), 3u);
  EXPECT_EQ(schema->field(0).name, "first name");
  EXPECT_EQ(schema->field(1).name, "a,b");
  EXPECT_EQ(schema->field(2).name, "q\"");
}

TEST(CsvSourceTest, NoHeaderNamesColumnsByPosition) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "1,x,2.5\n2,y,3\n");
  SourceOptions options;
  options.csv.header = false;
  auto schema = InferSchema(env.get(), "in.csv", options);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(*schema, Schema({{"c0", DataType::kInt64}, {"c1", DataType::kString}, {"c2", DataType::kFloat64}}));
  options.columns = {"c2", "c0"};
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.rows, (std::vector<std::string>{"2.5|1", "3|2"}));
  EXPECT_EQ(out.lines, (std::vector<int64_t>{1, 2}));
}

TEST(CsvSourceTest, SelectsColumnsInRequestedOrder) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "a,b,c\n1,x,true\n2,y,false\n");
  SourceOptions options;
  options.columns = {"c", "a"};
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.schema, Schema({{"c", DataType::kBool}, {"a", DataType::kInt64}}));
  EXPECT_EQ(out.rows, (std::vector<std::string>{"true|1", "false|2"}));
}

TEST(CsvSourceTest, MissingColumnIsAnErrorAtOpen) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "x.csv", "a,b,c\n1,2,3\n");
  SourceOptions options;
  options.columns = {"a", "foo"};
  ReadOutput out = ReadCsv(env.get(), InputRange{"x.csv"}, options);
  EXPECT_EQ(out.status.code(), StatusCode::kNotFound);
  EXPECT_EQ(out.status.message(), "input 'x.csv': no column 'foo' (columns: a, b, c)");
}

TEST(CsvSourceTest, ColumnMissingFromThisFilesHeader) {
  // The schema comes from the first file of the input; this file lacks a column.
  auto env = NewMemEnv();
  WriteFile(env.get(), "second.csv", "a,c\n1,2\n");
  CollectRejects rejects;
  SourceOptions options;
  const Schema file_schema({{"a", DataType::kInt64}, {"b", DataType::kInt64}});
  auto source = OpenSource(env.get(), InputRange{"second.csv"}, file_schema, options, &rejects);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().message(), "input 'second.csv': no column 'b' (columns: a, c)");
}

TEST(CsvSourceTest, LaterFileWithColumnsInAnotherOrder) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "second.csv", "b,a\n20,1\n");
  CollectRejects rejects;
  SourceOptions options;
  const Schema file_schema({{"a", DataType::kInt64}, {"b", DataType::kInt64}});
  auto source = OpenSource(env.get(), InputRange{"second.csv"}, file_schema, options, &rejects);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Batch batch;
  ASSERT_TRUE(*(*source)->Next(&batch));
  EXPECT_EQ(batch.columns[0].int64s()[0], 1);
  EXPECT_EQ(batch.columns[1].int64s()[0], 20);
}

TEST(CsvSourceTest, MissingFileIsNotFound) {
  auto env = NewMemEnv();
  auto schema = InferSchema(env.get(), "nope.csv", SourceOptions{});
  EXPECT_EQ(schema.status().code(), StatusCode::kNotFound);
}

TEST(CsvSourceTest, EmptyFileHasNoHeader) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "empty.csv", "");
  auto schema = InferSchema(env.get(), "empty.csv", SourceOptions{});
  EXPECT_EQ(schema.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(schema.status().message(), "input 'empty.csv': file is empty (no header row)");
  // A later empty file of the same input simply has no rows.
  CollectRejects rejects;
  auto source = OpenSource(env.get(), InputRange{"empty.csv"}, Schema({{"a", DataType::kInt64}}), SourceOptions{},
                           &rejects);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Batch batch;
  EXPECT_FALSE(*(*source)->Next(&batch));
}

TEST(CsvSourceTest, DuplicateHeaderColumnIsAnError) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "dup.csv", "a,b,a\n1,2,3\n");
  auto schema = InferSchema(env.get(), "dup.csv", SourceOptions{});
  EXPECT_EQ(schema.status().message(), "input 'dup.csv' line 1: column 'a' appears twice in the header");
}

TEST(CsvSourceTest, BadDelimiterNamesTheKey) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "a\n1\n");
  SourceOptions options;
  options.csv.quote = ',';
  auto schema = InferSchema(env.get(), "in.csv", options);
  EXPECT_EQ(schema.status().message(), "input.csv.quote: must differ from input.csv.delimiter");
}

TEST(CsvSourceTest, RejectDetails) {
  auto env = NewMemEnv();
  const std::string input = "id,amount\n1,2.5\n2,abc\n3,\"4\nx\"\n4,1,9\n";
  WriteFile(env.get(), "tx.csv", input);
  SourceOptions options;
  options.declared_types = {{"amount", DataType::kFloat64}};
  ReadOutput out = ReadCsv(env.get(), InputRange{"tx.csv"}, options);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.rows, (std::vector<std::string>{"1|2.5"}));
  ASSERT_EQ(out.rejects.size(), 3u);

  const Reject& bad = out.rejects[0];
  EXPECT_EQ(bad.reason, "bad_value");
  EXPECT_EQ(bad.line, 3);
  EXPECT_EQ(bad.byte_offset, static_cast<int64_t>(input.find("2,abc")));
  EXPECT_EQ(bad.column, "amount");
  EXPECT_EQ(bad.value, "abc");
  EXPECT_EQ(bad.message, "input 'tx.csv' line 3, column 'amount': cannot parse 'abc' as float64");

  // A value with a newline stays on one line in the message.
  const Reject& multiline = out.rejects[1];
  EXPECT_EQ(multiline.line, 4);
  EXPECT_EQ(multiline.value, "4\nx");
  EXPECT_EQ(multiline.message, "input 'tx.csv' line 4, column 'amount': cannot parse '4\\nx' as float64");

  const Reject& ragged = out.rejects[2];
  EXPECT_EQ(ragged.reason, "ragged_row");
  EXPECT_EQ(ragged.line, 6);
  EXPECT_EQ(ragged.byte_offset, static_cast<int64_t>(input.find("4,1,9")));
  EXPECT_EQ(ragged.message, "input 'tx.csv' line 6: expected 2 fields, found 3");
  EXPECT_EQ(ragged.value, "4,1,9");
}

TEST(CsvSourceTest, InvalidUtf8RejectNamesColumnAndByte) {
  auto env = NewMemEnv();
  const std::string input = "name,city\nok,Z\xc3\xbcrich\nbad,Par\xe9s\n";
  WriteFile(env.get(), "in.csv", input);
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, SourceOptions{});
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.rows, (std::vector<std::string>{"ok|Z\xc3\xbcrich"}));
  ASSERT_EQ(out.rejects.size(), 1u);
  EXPECT_EQ(out.rejects[0].column, "city");
  EXPECT_EQ(out.rejects[0].value, "Par\\xe9s");
  EXPECT_EQ(out.rejects[0].message, "input 'in.csv' line 3, column 'city': invalid UTF-8 at byte " +
                                        std::to_string(input.find('\xe9')) + ": Par\\xe9s");
}

TEST(CsvSourceTest, RecordSpanningChunkBoundary) {
  // One record much longer than a chunk, with a quoted newline and doubled
  // quotes falling on chunk edges.
  std::string long_text(300, 'x');
  long_text[100] = '\n';
  std::string quoted = long_text;
  std::string escaped;
  for (size_t i = 0; i < quoted.size(); ++i) {
    if (i % 37 == 0) {
      quoted[i] = '"';
    }
  }
  for (char c : quoted) {
    escaped += c;
    if (c == '"') escaped += '"';
  }
  const std::string input = "a,b\n1,\"" + escaped + "\"\n2,short\n";
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", input);
  for (const size_t chunk_bytes : {size_t{16}, size_t{64}, size_t{100}}) {
    SCOPED_TRACE(chunk_bytes);
    TextReadTuning tuning;
    tuning.chunk_bytes = chunk_bytes;
    ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, SourceOptions{}, tuning);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(out.rows, (std::vector<std::string>{"1|" + quoted, "2|short"}));
    EXPECT_EQ(out.lines, (std::vector<int64_t>{2, 4}));
  }
}

TEST(CsvSourceTest, RecordLargerThanLimitIsCorruption) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "a,b\n1,x\n2,\"" + std::string(5000, 'y') + "\n");
  SourceOptions options;
  options.infer_rows = 1;
  options.batch_rows = 1;
  TextReadTuning tuning;
  tuning.chunk_bytes = 64;
  tuning.max_record_bytes = 1024;
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, options, tuning);
  EXPECT_EQ(out.status.code(), StatusCode::kCorruption);
  EXPECT_EQ(out.status.message(),
            "input 'in.csv' line 3: record larger than 1024 bytes (is a quote never closed?)");
  EXPECT_EQ(out.rows, (std::vector<std::string>{"1|x"}));
}

// Builds "id,name\n" + rows 1..n ("i,name i"), some with quoted newlines.
std::string NumberedCsv(int rows, std::vector<uint64_t>* record_offsets) {
  std::string text = "id,name\n";
  for (int row = 1; row <= rows; ++row) {
    if (record_offsets) record_offsets->push_back(text.size());
    text += std::to_string(row) + ",";
    text += row % 4 == 0 ? "\"n\n" + std::to_string(row) + "\"\n" : "n" + std::to_string(row) + "\n";
  }
  return text;
}

TEST(CsvSourceTest, FileRangeStartingMidFile) {
  std::vector<uint64_t> offsets;
  const std::string input = NumberedCsv(12, &offsets);
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", input);
  SourceOptions options;
  options.columns = {"id"};
  // Rows whose record starts in [offset of row 5, offset of row 9).
  ReadOutput middle = ReadCsv(env.get(), InputRange{"in.csv", offsets[4], offsets[8]}, options);
  ASSERT_TRUE(middle.status.ok()) << middle.status.ToString();
  EXPECT_EQ(middle.rows, (std::vector<std::string>{"5", "6", "7", "8"}));
  // Row 4 spans lines 5-6, so row 5 is on line 7 and row 8 spans lines 10-11.
  EXPECT_EQ(middle.lines, (std::vector<int64_t>{7, 8, 9, 10}));
  EXPECT_EQ(middle.bytes_read, offsets[8] - offsets[4]);

  // An end inside a record: the record that starts before it is read whole.
  ReadOutput inside = ReadCsv(env.get(), InputRange{"in.csv", offsets[7], offsets[7] + 3}, options);
  ASSERT_TRUE(inside.status.ok());
  EXPECT_EQ(inside.rows, (std::vector<std::string>{"8"}));
  EXPECT_EQ(inside.lines, (std::vector<int64_t>{10}));

  // Ranges that cut the file at record starts, read one after the other, give
  // every row exactly once — for any cut points, with tiny chunks too.
  ReadOutput whole = ReadCsv(env.get(), InputRange{"in.csv"}, options);
  for (const size_t chunk_bytes : {kDefaultChunkBytes, size_t{3}}) {
    TextReadTuning tuning;
    tuning.chunk_bytes = chunk_bytes;
    std::vector<std::string> rows;
    std::vector<int64_t> lines;
    const std::vector<uint64_t> cuts = {0, offsets[2], offsets[3], offsets[10], UINT64_MAX};
    for (size_t cut_idx = 0; cut_idx + 1 < cuts.size(); ++cut_idx) {
      ReadOutput part = ReadCsv(env.get(), InputRange{"in.csv", cuts[cut_idx], cuts[cut_idx + 1]}, options, tuning);
      ASSERT_TRUE(part.status.ok());
      rows.insert(rows.end(), part.rows.begin(), part.rows.end());
      lines.insert(lines.end(), part.lines.begin(), part.lines.end());
    }
    EXPECT_EQ(rows, whole.rows);
    EXPECT_EQ(lines, whole.lines);
  }
  EXPECT_EQ(whole.rows.size(), 12u);
}

TEST(CsvSourceTest, RangeStartingInsideTheHeaderStartsAfterIt) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "\xEF\xBB\xBF" "a,b\n1,x\n");
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv", 0, 5}, SourceOptions{});
  EXPECT_TRUE(out.rows.empty());  // the first record starts at byte 7
  ReadOutput rest = ReadCsv(env.get(), InputRange{"in.csv", 0, 8}, SourceOptions{});
  EXPECT_EQ(rest.rows, (std::vector<std::string>{"1|x"}));
}

TEST(CsvSourceTest, BatchRowsSplitsAndReusesTheBatch) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", NumberedCsv(10, nullptr));
  SourceOptions options;
  options.batch_rows = 3;
  CollectRejects rejects;
  auto schema = InferSchema(env.get(), "in.csv", options);
  ASSERT_TRUE(schema.ok());
  auto source = OpenSource(env.get(), InputRange{"in.csv"}, *schema, options, &rejects);
  ASSERT_TRUE(source.ok());
  Batch batch;
  std::vector<size_t> sizes;
  std::vector<uint64_t> first_rows;
  while (true) {
    auto more = (*source)->Next(&batch);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    sizes.push_back(batch.num_rows());
    first_rows.push_back(batch.first_row);
    EXPECT_EQ(batch.columns[0].int64s()[0], static_cast<int64_t>(batch.first_row) + 1);
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 3, 1}));
  EXPECT_EQ(first_rows, (std::vector<uint64_t>{0, 3, 6, 9}));
  // Exhausted stays exhausted.
  auto again = (*source)->Next(&batch);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(batch.num_rows(), 0u);
}

TEST(CsvSourceTest, BatchesEndOnceTheirRecordsSpanMaxBatchBytes) {
  auto env = NewMemEnv();
  std::string input = "id,name\n";
  for (int row = 10; row < 38; ++row) input += std::to_string(row) + ",abcdef\n";  // 10 bytes a record
  input += "\n40,\"" + std::string(100, 'z') + "\"\n41,abcdef\n";  // a blank line, a 106-byte record
  WriteFile(env.get(), "in.csv", input);
  SourceOptions options;
  options.batch_rows = 100;
  options.max_batch_bytes = 35;
  auto schema = InferSchema(env.get(), "in.csv", options);
  ASSERT_TRUE(schema.ok());
  auto open = [&] {
    auto source = OpenSource(env.get(), InputRange{"in.csv"}, *schema, options, nullptr);
    EXPECT_TRUE(source.ok());
    return std::move(*source);
  };
  // 4 records (40 bytes) reach 35; a record larger than the limit is a batch of its own.
  EXPECT_EQ(BatchSizes(open().get()), (std::vector<size_t>{4, 4, 4, 4, 4, 4, 4, 1, 1}));
  // SetBatchLimits applies from the next batch: rows only, or one row a batch.
  EXPECT_EQ(BatchSizes(open().get(), 2, 3, 0), (std::vector<size_t>{4, 4, 3, 3, 3, 3, 3, 3, 3, 1}));
  std::vector<size_t> one_row_batches(26, 1);
  one_row_batches.insert(one_row_batches.begin(), 4);
  EXPECT_EQ(BatchSizes(open().get(), 1, 100, 1), one_row_batches);
}

TEST(CsvSourceTest, LinesNumberedFromTheRangesFirstLine) {
  std::vector<uint64_t> offsets;
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", NumberedCsv(12, &offsets));
  // first_line is taken as given (the planner counted it), not recounted.
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv", offsets[4], offsets[8], 1000}, SourceOptions{});
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.rows.size(), 4u);
  EXPECT_EQ(out.lines, (std::vector<int64_t>{1000, 1001, 1002, 1003}));
  ReadOutput counted = ReadCsv(env.get(), InputRange{"in.csv", offsets[4], offsets[8], 0}, SourceOptions{});
  EXPECT_EQ(counted.lines, (std::vector<int64_t>{7, 8, 9, 10}));
}

TEST(CsvSourceTest, StreamsLargeFileInBoundedMemory) {
  constexpr int kRows = 200000;
  std::string input = "id,amount,name,ts\n";
  input.reserve(size_t{kRows} * 48);
  for (int row = 0; row < kRows; ++row) {
    input += std::to_string(row);
    input += ',';
    input += std::to_string(row % 1000) + ".25";
    input += row % 100 == 0 ? ",\"name, " + std::to_string(row) + "\"" : ",n" + std::to_string(row);
    input += ",2024-01-05T10:11:12Z\n";
  }
  auto env = NewMemEnv();
  WriteFile(env.get(), "big.csv", input);
  SourceOptions options;
  options.batch_rows = 4096;
  auto schema = InferSchema(env.get(), "big.csv", options);
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(*schema, Schema({{"id", DataType::kInt64},
                              {"amount", DataType::kFloat64},
                              {"name", DataType::kString},
                              {"ts", DataType::kTimestamp}}));
  CollectRejects rejects;
  TextReadTuning tuning;
  tuning.chunk_bytes = 64 * 1024;
  auto source = OpenCsvSource(env.get(), InputRange{"big.csv"}, *schema, options, &rejects, tuning);
  ASSERT_TRUE(source.ok());
  Batch batch;
  int64_t rows = 0;
  int64_t id_sum = 0;
  double amount_sum = 0;
  size_t batches = 0;
  size_t max_batch_bytes = 0;
  size_t batch_bytes_after_warmup = 0;
  while (true) {
    auto more = (*source)->Next(&batch);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    ++batches;
    for (size_t row = 0; row < batch.num_rows(); ++row) {
      id_sum += batch.columns[0].int64s()[row];
      amount_sum += batch.columns[1].float64s()[row];
    }
    EXPECT_EQ(batch.row_lines.front(), rows + 2);
    rows += static_cast<int64_t>(batch.num_rows());
    max_batch_bytes = std::max(max_batch_bytes, batch.ByteSize());
    if (batches == 3) batch_bytes_after_warmup = batch.ByteSize();
  }
  EXPECT_EQ(rows, kRows);
  EXPECT_EQ(batches, (kRows + 4095) / 4096);
  EXPECT_EQ(id_sum, int64_t{kRows} * (kRows - 1) / 2);
  EXPECT_DOUBLE_EQ(amount_sum, 200.0 * (499500.0 + 250.0));
  EXPECT_TRUE(rejects.rejects.empty());
  // The batch is reused: its capacity stays near its size after the first
  // batches (names get a little longer), independent of the file size.
  EXPECT_LE(max_batch_bytes, 2 * batch_bytes_after_warmup);
  EXPECT_LT(max_batch_bytes, size_t{1} << 20);
  EXPECT_EQ((*source)->bytes_read(), input.size());
}

struct InferCase {
  std::string name;
  std::vector<std::string> values;  // CSV fields of one column, one per row
  DataType expected;
};

TEST(CsvSourceTest, InfersTypes) {
  const std::vector<InferCase> cases = {
      {"ints", {"1", "-2", "+3", "2"}, DataType::kInt64},
      {"ints_with_nulls", {"1", "", "NA", "3"}, DataType::kInt64},
      {"ints_and_floats", {"1", "2.5", "1e3"}, DataType::kFloat64},
      {"special_floats", {"1.5", "nan", "-inf"}, DataType::kFloat64},
      {"bools", {"true", "FALSE", "True"}, DataType::kBool},
      {"zero_one_is_int", {"0", "1", "1"}, DataType::kInt64},
      {"yes_no_is_string", {"yes", "no"}, DataType::kString},
      {"bool_and_int_is_string", {"true", "1"}, DataType::kString},
      {"dates", {"2024-01-05", "2024-02-29"}, DataType::kTimestamp},
      {"datetimes", {"2024-01-05T10:11:12Z", "2024-01-05 10:11:12.5+02:00"}, DataType::kTimestamp},
      {"bad_date_is_string", {"2024-01-05", "2023-02-29"}, DataType::kString},
      {"mixed", {"1", "x"}, DataType::kString},
      {"only_nulls", {"", "NA", "null"}, DataType::kFloat64},
      {"quoted_numbers", {"\"1\"", "\"2\""}, DataType::kInt64},
      {"quoted_na_is_a_string", {"1", "\"NA\""}, DataType::kString},
  };
  for (const InferCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string input = "k,v\n";
    for (size_t row = 0; row < c.values.size(); ++row) input += std::to_string(row) + "," + c.values[row] + "\n";
    auto env = NewMemEnv();
    WriteFile(env.get(), "in.csv", input);
    auto schema = InferSchema(env.get(), "in.csv", SourceOptions{});
    ASSERT_TRUE(schema.ok()) << schema.status().ToString();
    EXPECT_EQ(schema->field(1).type, c.expected) << DataTypeName(schema->field(1).type);
  }
}

TEST(CsvSourceTest, DeclaredTypesWin) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "zip,score\n01234,1\n99999,0\n");
  SourceOptions options;
  options.declared_types = {{"zip", DataType::kString}, {"score", DataType::kBool}};
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, options);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.schema, Schema({{"zip", DataType::kString}, {"score", DataType::kBool}}));
  EXPECT_EQ(out.rows, (std::vector<std::string>{"01234|true", "99999|false"}));
}

TEST(CsvSourceTest, LateValueThatDoesNotFitInferredTypeSuggestsDeclaring) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "id,v\n1,10\n2,20\n3,2.5\n4,40\n");
  SourceOptions options;
  options.infer_rows = 2;
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, options);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.schema.field(1).type, DataType::kInt64);
  EXPECT_EQ(out.rows, (std::vector<std::string>{"1|10", "2|20", "4|40"}));
  ASSERT_EQ(out.rejects.size(), 1u);
  EXPECT_EQ(out.rejects[0].reason, "bad_value");
  EXPECT_EQ(out.rejects[0].line, 4);
  EXPECT_EQ(out.rejects[0].message,
            "input 'in.csv' line 4, column 'v': cannot parse '2.5' as int64 (type inferred from the first 2 rows; "
            "declare it under input.schema.v to read it as another type)");
}

TEST(CsvSourceTest, TimestampsWithOffsets) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv",
            "ts\n2024-01-05\n2024-01-05T10:11:12Z\n2024-01-05 12:11:12+02:00\n2024-01-05T04:41:12.5-0530\n");
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, SourceOptions{});
  ASSERT_TRUE(out.status.ok());
  ASSERT_EQ(out.schema.field(0).type, DataType::kTimestamp);
  const int64_t midnight = int64_t{1704412800} * 1000000;
  const int64_t at_10_11_12 = midnight + int64_t{10 * 3600 + 11 * 60 + 12} * 1000000;
  EXPECT_EQ(out.rows, (std::vector<std::string>{std::to_string(midnight), std::to_string(at_10_11_12),
                                                std::to_string(at_10_11_12),
                                                std::to_string(at_10_11_12 + 500000)}));
}

TEST(CsvSourceTest, Float32Column) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "x\n0.5\n-2\n");
  SourceOptions options;
  options.declared_types = {{"x", DataType::kFloat32}};
  ReadOutput out = ReadCsv(env.get(), InputRange{"in.csv"}, options);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.rows, (std::vector<std::string>{"0.5", "-2"}));
}

TEST(CsvSourceTest, IoErrorIsLatched) {
  // An Env whose files fail after the first read.
  class FailingFile : public RandomAccessFile {
   public:
    explicit FailingFile(std::unique_ptr<RandomAccessFile> base) : base_(std::move(base)) {}
    Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const override {
      if (offset > 0) return Status::IOError("disk on fire");
      return base_->ReadAt(offset, n, scratch);
    }
   private:
    std::unique_ptr<RandomAccessFile> base_;
  };
  class FailingEnv : public EnvWrapper {
   public:
    using EnvWrapper::EnvWrapper;
    Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
      auto base = target()->NewRandomAccessFile(path);
      if (!base.ok()) return base.status();
      return std::unique_ptr<RandomAccessFile>(std::make_unique<FailingFile>(std::move(*base)));
    }
  };
  auto mem = NewMemEnv();
  WriteFile(mem.get(), "in.csv", NumberedCsv(50, nullptr));
  FailingEnv env(mem.get());
  SourceOptions options;
  options.infer_rows = 2;
  TextReadTuning tuning;
  tuning.chunk_bytes = 32;
  auto schema = InferCsvSchema(mem.get(), "in.csv", options, tuning);
  ASSERT_TRUE(schema.ok());
  CollectRejects rejects;
  auto source = OpenCsvSource(&env, InputRange{"in.csv"}, *schema, options, &rejects, tuning);
  ASSERT_TRUE(source.ok());
  Batch batch;
  auto first = (*source)->Next(&batch);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), StatusCode::kIOError);
  EXPECT_NE(first.status().message().find("in.csv"), std::string::npos) << first.status().message();
  auto second = (*source)->Next(&batch);
  EXPECT_EQ(second.status().message(), first.status().message());
}

}  // namespace
}  // namespace sluice
