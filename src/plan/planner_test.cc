#include "plan/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "env/fault_injection_env.h"
#include "sluice/env.h"
#include "sluice/job.h"
#include "sluice/source.h"
#include "source/record_split.h"
#include "source/source_test_util.h"

namespace sluice {
namespace {

InputSpec Input(const std::string& path, InputFormat format, const CsvOptions& csv = {}) {
  InputSpec input;
  input.path = path;
  input.format = format;
  input.csv = csv;
  return input;
}

PartitionSpec BySize(uint64_t target_bytes) {
  PartitionSpec partition;
  partition.by = PartitionBy::kSize;
  partition.target_bytes = target_bytes;
  return partition;
}

Plan MustPlan(Env* env, const InputSpec& input, const PartitionSpec& partition) {
  Result<Plan> plan = PlanUnits(env, input, partition);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return plan.ok() ? *std::move(plan) : Plan{};
}

std::vector<uint64_t> Begins(const Plan& plan) {
  std::vector<uint64_t> begins;
  for (const WorkUnit& unit : plan.units) begins.push_back(unit.range.begin);
  return begins;
}

std::vector<int64_t> FirstLines(const Plan& plan) {
  std::vector<int64_t> lines;
  for (const WorkUnit& unit : plan.units) lines.push_back(unit.range.first_line);
  return lines;
}

SourceOptions OptionsFor(const InputSpec& input) {
  SourceOptions options;
  options.format = *input.format;
  options.csv = input.csv;
  options.infer_rows = 3;  // later values that do not fit are rejected: bad_value rows in the mix
  return options;
}

// Rows, lines and rejects of one read, comparable across reads.
struct Rows {
  Status status;
  std::vector<std::string> rows;
  std::vector<int64_t> lines;
  std::vector<std::string> rejects;  // "line|offset|reason|column|value|message"
};

void Append(const ReadOutput& out, Rows* rows) {
  if (!out.status.ok() && rows->status.ok()) rows->status = out.status;
  rows->rows.insert(rows->rows.end(), out.rows.begin(), out.rows.end());
  rows->lines.insert(rows->lines.end(), out.lines.begin(), out.lines.end());
  for (const Reject& reject : out.rejects) {
    rows->rejects.push_back(std::to_string(reject.line) + "|" + std::to_string(reject.byte_offset) + "|" +
                            reject.reason + "|" + reject.column + "|" + reject.value + "|" + reject.message);
  }
}

ReadOutput ReadRange(Env* env, const InputRange& range, const Schema& schema, const SourceOptions& options) {
  return ReadAll([&](RejectSink* rejects) { return OpenSource(env, range, schema, options, rejects); });
}

// First line of any record a read saw (row or reject).
int64_t FirstRecordLine(const ReadOutput& out) {
  int64_t line = INT64_MAX;
  if (!out.lines.empty()) line = out.lines.front();
  if (!out.rejects.empty()) line = std::min(line, out.rejects.front().line);
  return line;
}

// The plan's units of each file cover it contiguously from 0 to its size, and
// reading them one after the other gives exactly the rows, lines and rejects of
// a whole-file read; scanned units count their records exactly and know the
// line of their first one.
void ExpectUnitsReadLikeWholeFile(Env* env, const Plan& plan, const SourceOptions& options) {
  size_t unit_idx = 0;
  for (const InputFile& file : plan.files) {
    SCOPED_TRACE(file.path);
    Result<Schema> schema = InferSchema(env, file.path, options);
    ASSERT_TRUE(schema.ok()) << schema.status().ToString();
    Rows whole;
    Append(ReadRange(env, InputRange{file.path}, *schema, options), &whole);
    ASSERT_TRUE(whole.status.ok()) << whole.status.ToString();

    Rows by_units;
    uint64_t next_begin = 0;
    ASSERT_LT(unit_idx, plan.units.size());
    for (; unit_idx < plan.units.size() && plan.units[unit_idx].range.path == file.path; ++unit_idx) {
      const WorkUnit& unit = plan.units[unit_idx];
      SCOPED_TRACE("unit " + unit.id + " [" + std::to_string(unit.range.begin) + ", " +
                   std::to_string(unit.range.end) + ")");
      EXPECT_EQ(unit.id, UnitId(unit.index));
      EXPECT_EQ(unit.index, static_cast<int>(unit_idx));
      EXPECT_EQ(unit.range.begin, next_begin);
      EXPECT_TRUE(unit.range.begin < unit.range.end || file.size == 0);
      EXPECT_EQ(unit.est_bytes, unit.range.end - unit.range.begin);
      EXPECT_EQ(unit.file_size, file.size);
      next_begin = unit.range.end;
      const ReadOutput part = ReadRange(env, unit.range, *schema, options);
      if (unit.rows_exact) {
        EXPECT_EQ(unit.est_rows, static_cast<int64_t>(part.rows.size() + part.rejects.size()));
      }
      if (unit.range.begin > 0) {
        EXPECT_EQ(FirstRecordLine(part), unit.range.first_line);
        // Without first_line the source counts newlines: the same lines.
        InputRange unnumbered = unit.range;
        unnumbered.first_line = 0;
        EXPECT_EQ(ReadRange(env, unnumbered, *schema, options).lines, part.lines);
      }
      Append(part, &by_units);
    }
    EXPECT_EQ(next_begin, file.size);
    ASSERT_TRUE(by_units.status.ok()) << by_units.status.ToString();
    EXPECT_EQ(by_units.rows, whole.rows);
    EXPECT_EQ(by_units.lines, whole.lines);
    EXPECT_EQ(by_units.rejects, whole.rejects);
  }
  EXPECT_EQ(unit_idx, plan.units.size());
}

// ---- examples --------------------------------------------------------------

TEST(PlannerTest, QuotedNewlineAcrossSplitPoint) {
  auto env = NewMemEnv();
  // Bytes: header 0-3, record 1 at 4-13 with a newline at 9 inside quotes, record 2 at 14.
  WriteFile(env.get(), "in.csv", "a,b\n1,\"xx\nyy\"\n2,z\n");
  const InputSpec input = Input("in.csv", InputFormat::kCsv);
  // The split point 8 is inside the quotes; the newline after it (9) is data.
  const Plan plan = MustPlan(env.get(), input, BySize(8));
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, 14}));
  EXPECT_EQ(FirstLines(plan), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(plan.units.back().range.end, 18u);
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
  const Result<Schema> schema = InferSchema(env.get(), "in.csv", OptionsFor(input));
  ASSERT_TRUE(schema.ok());
  const ReadOutput second = ReadRange(env.get(), plan.units[1].range, *schema, OptionsFor(input));
  EXPECT_EQ(second.rows, (std::vector<std::string>{"2|z"}));
  EXPECT_EQ(second.lines, (std::vector<int64_t>{4}));
}

TEST(PlannerTest, RecordSpanningSplitPoints) {
  auto env = NewMemEnv();
  const std::string long_record = "2," + std::string(100, 'y') + "\n";
  const std::string input_text = "a,b\n1,x\n" + long_record + "3,z\n4,w\n";
  WriteFile(env.get(), "in.csv", input_text);
  const InputSpec input = Input("in.csv", InputFormat::kCsv);
  // Record 2 (at byte 8) runs over the split points 10, 20, ..., 100: it stays
  // whole in the first unit, and the next unit starts at record 3.
  const Plan plan = MustPlan(env.get(), input, BySize(10));
  const uint64_t record3 = 8 + long_record.size();
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, record3}));
  EXPECT_EQ(FirstLines(plan), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(plan.units[0].est_rows, 2);
  EXPECT_EQ(plan.units[1].est_rows, 2);
  EXPECT_TRUE(plan.units[1].rows_exact);
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
}

TEST(PlannerTest, DoubledQuotesNearSplitPoints) {
  auto env = NewMemEnv();
  // Record 1 holds p"<LF>q" (doubled quotes around a quoted newline); record 2 is one quote.
  const std::string text = "a,b\n1,\"p\"\"\nq\"\"\"\n2,\"\"\"\"\n3,\"\"\n";
  WriteFile(env.get(), "in.csv", text);
  const InputSpec input = Input("in.csv", InputFormat::kCsv);
  const uint64_t record2 = text.find("2,");
  const uint64_t record3 = text.find("3,");
  EXPECT_EQ(Begins(MustPlan(env.get(), input, BySize(1))), (std::vector<uint64_t>{0, record2, record3}));
  EXPECT_EQ(FirstLines(MustPlan(env.get(), input, BySize(1))), (std::vector<int64_t>{1, 4, 5}));
  for (uint64_t target = 1; target <= text.size(); ++target) {
    SCOPED_TRACE(target);
    ExpectUnitsReadLikeWholeFile(env.get(), MustPlan(env.get(), input, BySize(target)), OptionsFor(input));
  }
}

TEST(PlannerTest, CrlfAndBlankLines) {
  auto env = NewMemEnv();
  const std::string text = "a,b\r\n1,x\r\n\r\n2,\"y\r\nz\"\r\n\n3,w\r";
  WriteFile(env.get(), "in.csv", text);
  const InputSpec input = Input("in.csv", InputFormat::kCsv);
  const Plan plan = MustPlan(env.get(), input, BySize(1));
  // Blank lines stay with the unit before them; a unit starts at a record.
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, text.find("2,"), text.find("3,")}));
  EXPECT_EQ(FirstLines(plan), (std::vector<int64_t>{1, 4, 7}));
  EXPECT_EQ(plan.units.back().range.end, text.size());
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
}

TEST(PlannerTest, ByteOrderMarkBeforeAQuotedField) {
  auto env = NewMemEnv();
  // Without a header, the first record starts after the BOM with a quote: its newline is data.
  const std::string text = "\xEF\xBB\xBF\"1\nx\",y\n2,z\n";
  WriteFile(env.get(), "in.csv", text);
  CsvOptions csv;
  csv.header = false;
  const InputSpec input = Input("in.csv", InputFormat::kCsv, csv);
  const Plan plan = MustPlan(env.get(), input, BySize(1));
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, text.find("2,")}));
  EXPECT_EQ(FirstLines(plan), (std::vector<int64_t>{1, 3}));
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));

  WriteFile(env.get(), "header.csv", "\xEF\xBB\xBF\"a\nb\",c\n1,2\n3,4\n");
  const InputSpec with_header = Input("header.csv", InputFormat::kCsv);
  const Plan header_plan = MustPlan(env.get(), with_header, BySize(1));
  EXPECT_EQ(FirstLines(header_plan), (std::vector<int64_t>{1, 4}));
  ExpectUnitsReadLikeWholeFile(env.get(), header_plan, OptionsFor(with_header));
}

TEST(PlannerTest, EmptyAndHeaderOnlyFilesAreOneUnit) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "d/a_empty.csv", "");
  WriteFile(env.get(), "d/b_header.csv", "a,b,c\n");
  WriteFile(env.get(), "d/c_blank.csv", "a,b,c\n\n\r\n");
  const Plan plan = MustPlan(env.get(), Input("d", InputFormat::kCsv), BySize(1));
  ASSERT_EQ(plan.units.size(), 3u);
  EXPECT_EQ(plan.units[0].range.end, 0u);
  EXPECT_EQ(plan.units[0].est_rows, 0);
  EXPECT_FALSE(plan.units[0].rows_exact);  // not larger than the target: not scanned
  for (const size_t unit_idx : {1, 2}) {
    EXPECT_EQ(plan.units[unit_idx].range.begin, 0u);
    EXPECT_EQ(plan.units[unit_idx].range.end, plan.files[unit_idx].size);
    EXPECT_EQ(plan.units[unit_idx].est_rows, 0);
    EXPECT_TRUE(plan.units[unit_idx].rows_exact);
  }
  Result<std::vector<RecordRange>> empty = SplitAtRecords(env.get(), "d/a_empty.csv", InputFormat::kCsv, {}, 1);
  ASSERT_TRUE(empty.ok());
  ASSERT_EQ(empty->size(), 1u);
  EXPECT_EQ((*empty)[0].records, 0);
}

TEST(PlannerTest, FileSmallerThanOneUnitIsNotScanned) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.csv", "a,b\n1,x\n2,y\n3,z");
  const Plan plan = MustPlan(env.get(), Input("in.csv", InputFormat::kCsv), BySize(1000));
  ASSERT_EQ(plan.units.size(), 1u);
  const WorkUnit& unit = plan.units[0];
  EXPECT_EQ(unit.id, "00000");
  EXPECT_EQ(unit.range.begin, 0u);
  EXPECT_EQ(unit.range.end, 15u);
  EXPECT_EQ(unit.range.first_line, 1);
  EXPECT_EQ(unit.est_bytes, 15u);
  EXPECT_FALSE(unit.rows_exact);
  EXPECT_EQ(unit.est_rows, 3);  // the whole file is in the sample: lines less the header
}

TEST(PlannerTest, EstimateFromTheFirst64KiB) {
  auto env = NewMemEnv();
  std::string text = "id,v\n";
  for (int row = 0; row < 50000; ++row) text += std::to_string(100000 + row) + ",x\n";  // 9 bytes a row
  WriteFile(env.get(), "big.csv", text);
  PartitionSpec by_files;
  by_files.by = PartitionBy::kFiles;
  by_files.target_bytes = 1;
  const Plan plan = MustPlan(env.get(), Input("big.csv", InputFormat::kCsv), by_files);
  ASSERT_EQ(plan.units.size(), 1u);
  EXPECT_FALSE(plan.units[0].rows_exact);
  EXPECT_NEAR(static_cast<double>(plan.units[0].est_rows), 50000.0, 50.0);
  EXPECT_EQ(plan.units[0].range.end, text.size());
}

TEST(PlannerTest, ManySmallFilesInSortedOrder) {
  auto env = NewMemEnv();
  for (int file_idx = 24; file_idx >= 0; --file_idx) {
    WriteFile(env.get(), "d/f" + std::to_string(100 + file_idx) + ".csv",
              "a\n" + std::to_string(file_idx) + "\n");
  }
  const InputSpec input = Input("d", InputFormat::kCsv);
  const Plan plan = MustPlan(env.get(), input, BySize(uint64_t{64} << 20));
  ASSERT_EQ(plan.units.size(), 25u);
  ASSERT_EQ(plan.files.size(), 25u);
  for (size_t unit_idx = 0; unit_idx < plan.units.size(); ++unit_idx) {
    EXPECT_EQ(plan.units[unit_idx].id, UnitId(static_cast<int>(unit_idx)));
    EXPECT_EQ(plan.units[unit_idx].range.path, "d/f" + std::to_string(100 + unit_idx) + ".csv");
    EXPECT_EQ(plan.files[unit_idx].path, plan.units[unit_idx].range.path);
    EXPECT_EQ(plan.units[unit_idx].est_rows, 1);
  }
  EXPECT_EQ(plan.units[7].id, "00007");
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
}

TEST(PlannerTest, ByFilesNeverSplits) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "d/a.csv", "a\n1\n2\n3\n");
  WriteFile(env.get(), "d/b.csv", "a\n4\n5\n");
  PartitionSpec by_files;
  by_files.by = PartitionBy::kFiles;
  by_files.target_bytes = 1;
  const Plan plan = MustPlan(env.get(), Input("d", InputFormat::kCsv), by_files);
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, 0}));
  EXPECT_EQ(plan.units[0].range.end, 8u);
  // Output-layout partitions split file inputs by size like partition.by: size.
  PartitionSpec by_hash = by_files;
  by_hash.by = PartitionBy::kHash;
  by_hash.column = "a";
  EXPECT_EQ(MustPlan(env.get(), Input("d", InputFormat::kCsv), by_hash).units.size(), 5u);
}

TEST(PlannerTest, NoHeaderCsv) {
  auto env = NewMemEnv();
  const std::string text = "1,x\n2,\"y\n\"\n3,z\n";
  WriteFile(env.get(), "in.csv", text);
  CsvOptions csv;
  csv.header = false;
  const InputSpec input = Input("in.csv", InputFormat::kCsv, csv);
  const Plan plan = MustPlan(env.get(), input, BySize(1));
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, 4, 11}));
  EXPECT_EQ(FirstLines(plan), (std::vector<int64_t>{1, 2, 4}));
  for (const WorkUnit& unit : plan.units) EXPECT_EQ(unit.est_rows, 1);
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
}

TEST(PlannerTest, QuoteInsideAnUnquotedFieldIsData) {
  auto env = NewMemEnv();
  // ab"c does not open a quote, so the newline after it ends the record; "ab"x
  // closes its quote and the later quote is data too.
  const std::string text = "a,b\n1,ab\"c\n2,\"ab\"x\"\n3,z\n";
  WriteFile(env.get(), "in.csv", text);
  const InputSpec input = Input("in.csv", InputFormat::kCsv);
  const Plan plan = MustPlan(env.get(), input, BySize(1));
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, text.find("2,"), text.find("3,")}));
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
}

TEST(PlannerTest, UnterminatedQuoteSwallowsTheRest) {
  auto env = NewMemEnv();
  const std::string text = "a,b\n1,x\n2,\"open\n3,y\n4,z\n";
  WriteFile(env.get(), "in.csv", text);
  const InputSpec input = Input("in.csv", InputFormat::kCsv);
  const Plan plan = MustPlan(env.get(), input, BySize(1));
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, text.find("2,")}));
  EXPECT_EQ(plan.units[1].est_rows, 1);
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
}

TEST(PlannerTest, QuotingOff) {
  auto env = NewMemEnv();
  const std::string text = "a,b\n1,\"x\n2,y\"\n";
  WriteFile(env.get(), "in.csv", text);
  CsvOptions csv;
  csv.quote = '\0';
  const InputSpec input = Input("in.csv", InputFormat::kCsv, csv);
  const Plan plan = MustPlan(env.get(), input, BySize(1));
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, text.find("2,")}));
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
}

TEST(PlannerTest, JsonLines) {
  auto env = NewMemEnv();
  const std::string text = "\xEF\xBB\xBF{\"a\":1}\r\n\n  \t\r\n{\"a\":2,\"s\":\"x\\ny\"}\n[1]\n{\"a\":3}";
  WriteFile(env.get(), "in.jsonl", text);
  const InputSpec input = Input("in.jsonl", InputFormat::kJsonl);
  const Plan plan = MustPlan(env.get(), input, BySize(1));
  EXPECT_EQ(Begins(plan), (std::vector<uint64_t>{0, text.find("{\"a\":2"), text.find("[1]"), text.find("{\"a\":3")}));
  EXPECT_EQ(FirstLines(plan), (std::vector<int64_t>{1, 4, 5, 6}));
  EXPECT_EQ(plan.units.back().range.end, text.size());
  ExpectUnitsReadLikeWholeFile(env.get(), plan, OptionsFor(input));
}

TEST(PlannerTest, FormatFromTheFileName) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.ndjson", "{\"a\":1}\n");
  InputSpec input;
  input.path = "in.ndjson";
  const Plan plan = MustPlan(env.get(), input, BySize(1));
  EXPECT_EQ(plan.format, InputFormat::kJsonl);

  WriteFile(env.get(), "in.dat", "a\n1\n");
  input.path = "in.dat";
  Result<Plan> unknown = PlanUnits(env.get(), input, BySize(1));
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message(),
            "input.format: cannot tell the format of 'in.dat' from its name; set it (csv, jsonl, parquet)");

  input.path = "missing/*.csv";
  EXPECT_EQ(PlanUnits(env.get(), input, BySize(1)).status().code(), StatusCode::kNotFound);
}

// ---- properties over generated files ----------------------------------------

// Picks one of `choices` at random.
template <typename T>
const T& Pick(std::mt19937_64& rng, const std::vector<T>& choices) {
  return choices[std::uniform_int_distribution<size_t>(0, choices.size() - 1)(rng)];
}

bool Chance(std::mt19937_64& rng, double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

// A CSV file with every corner the readers know: quoted fields holding
// delimiters, LF, CRLF, lone CR and doubled quotes; text after a closing quote;
// quotes inside unquoted fields; LF/CRLF mixes; blank lines; ragged rows;
// values that do not fit the inferred type; invalid UTF-8; a BOM; a missing
// final newline or a CR at the very end; now and then an unterminated quote.
std::string RandomCsv(std::mt19937_64& rng, const CsvOptions& csv) {
  const std::string delim(1, csv.delimiter);
  const bool quoting = csv.quote != '\0';
  const std::string quote(1, csv.quote);
  std::string text = Chance(rng, 0.1) ? "\xEF\xBB\xBF" : "";
  if (csv.header) text += "a" + delim + "b" + delim + "c\n";
  auto field = [&](bool numeric) -> std::string {
    if (numeric && Chance(rng, 0.9)) return std::to_string(std::uniform_int_distribution<int>(-99, 999)(rng));
    if (quoting && Chance(rng, 0.4)) {
      std::string value = quote;
      const int pieces = std::uniform_int_distribution<int>(0, 5)(rng);
      for (int piece_idx = 0; piece_idx < pieces; ++piece_idx) {
        value += Pick(rng, std::vector<std::string>{"x", delim, "\n", "\r\n", "\r", quote + quote, " ", "yz"});
      }
      value += quote;
      if (Chance(rng, 0.1)) value += "t";  // text after the closing quote
      return value;
    }
    std::vector<std::string> plain = {"", "x", "NA", "hello", "a\rb", "7", "-3.5", "\xff"};
    if (quoting) plain.push_back("ab" + quote + "c");
    return Pick(rng, plain);
  };
  const int records = std::uniform_int_distribution<int>(0, 40)(rng);
  for (int record_idx = 0; record_idx < records; ++record_idx) {
    if (Chance(rng, 0.08)) {
      text += Chance(rng, 0.5) ? "\n" : "\r\n";
      continue;
    }
    const int fields = Chance(rng, 0.05) ? Pick(rng, std::vector<int>{1, 2, 4}) : 3;
    for (int field_idx = 0; field_idx < fields; ++field_idx) {
      if (field_idx > 0) text += delim;
      text += field(field_idx == 0);
    }
    text += Chance(rng, 0.5) ? "\n" : "\r\n";
  }
  if (quoting && Chance(rng, 0.05)) text += "1" + delim + quote + "open\n2" + delim + "x\n";
  if (!text.empty() && Chance(rng, 0.2)) text.pop_back();  // no final LF, or a CR at the very end
  return text;
}

std::string RandomJsonl(std::mt19937_64& rng) {
  std::string text = Chance(rng, 0.1) ? "\xEF\xBB\xBF" : "";
  const int lines = std::uniform_int_distribution<int>(0, 40)(rng);
  for (int line_idx = 0; line_idx < lines; ++line_idx) {
    const int kind = std::uniform_int_distribution<int>(0, 19)(rng);
    if (kind == 0) {
      text += Pick(rng, std::vector<std::string>{"", "  ", "\t\r", " "});
    } else if (kind == 1) {
      text += Pick(rng, std::vector<std::string>{"{\"a\":", "[1,2]", "not json", "{\"a\":\"\xff\"}"});
    } else if (kind == 2) {
      text += "{\"a\":\"x\",\"b\":{\"n\":[1]}}";  // a value that does not fit an inferred int64
    } else {
      text += "{\"a\":" + std::to_string(std::uniform_int_distribution<int>(-99, 999)(rng)) + ",\"b\":\"" +
              Pick(rng, std::vector<std::string>{"x", "q\\\"r", "line\\nbreak", "\\r", ""}) + "\"}";
    }
    text += Chance(rng, 0.7) ? "\n" : "\r\n";
  }
  if (!text.empty() && Chance(rng, 0.2)) text.pop_back();
  return text;
}

std::vector<uint64_t> TargetsFor(uint64_t size) {
  std::vector<uint64_t> targets;
  for (uint64_t target = 1; target <= size + 1; target = target < 8 ? target + 1 : target * 3 / 2) {
    targets.push_back(target);
  }
  return targets;
}

// Ranges from a scan with tiny chunks (quotes, CR and LF on chunk edges) match the plan's.
void ExpectSameRangesWithTinyChunks(Env* env, const Plan& plan, const InputSpec& input, uint64_t target) {
  for (const size_t chunk_bytes : {size_t{1}, size_t{2}, size_t{5}}) {
    Result<std::vector<RecordRange>> ranges =
        SplitAtRecords(env, plan.files[0].path, *input.format, input.csv, target, chunk_bytes);
    ASSERT_TRUE(ranges.ok()) << ranges.status().ToString();
    ASSERT_EQ(ranges->size(), plan.units.size()) << "chunk " << chunk_bytes;
    for (size_t range_idx = 0; range_idx < ranges->size(); ++range_idx) {
      EXPECT_EQ((*ranges)[range_idx].begin, plan.units[range_idx].range.begin);
      EXPECT_EQ((*ranges)[range_idx].first_line, plan.units[range_idx].range.first_line);
      EXPECT_EQ((*ranges)[range_idx].records, plan.units[range_idx].est_rows);
    }
  }
}

void CheckGeneratedFile(Env* env, const InputSpec& input, const std::string& text, int* checked) {
  WriteFile(env, input.path, text);
  const SourceOptions options = OptionsFor(input);
  // A file the reader cannot infer a schema for (no good record without a header) has no rows to compare.
  if (!InferSchema(env, input.path, options).ok()) return;
  for (const uint64_t target : TargetsFor(text.size())) {
    SCOPED_TRACE("target_bytes " + std::to_string(target));
    const Plan plan = MustPlan(env, input, BySize(target));
    ExpectUnitsReadLikeWholeFile(env, plan, options);
    if (target < text.size()) ExpectSameRangesWithTinyChunks(env, plan, input, target);
    if (::testing::Test::HasFailure()) return;
  }
  ++*checked;
}

// A header three times in four, one of three delimiters and one of `quotes`.
CsvOptions RandomCsvOptions(std::mt19937_64& rng, const std::vector<char>& quotes) {
  CsvOptions csv;
  csv.header = Chance(rng, 0.75);
  csv.delimiter = Pick(rng, std::vector<char>{',', ';', '\t'});
  csv.quote = Pick(rng, quotes);
  return csv;
}

TEST(PlannerPropertyTest, CsvUnitsReadLikeTheWholeFile) {
  std::mt19937_64 rng(20240105);
  auto env = NewMemEnv();
  int checked = 0;
  for (int file_idx = 0; file_idx < 300 && !::testing::Test::HasFailure(); ++file_idx) {
    const CsvOptions csv = RandomCsvOptions(rng, {'"', '"', '\'', '\0'});
    const std::string text = RandomCsv(rng, csv);
    SCOPED_TRACE("file " + std::to_string(file_idx) + ": " + ::testing::PrintToString(text));
    CheckGeneratedFile(env.get(), Input("gen.csv", InputFormat::kCsv, csv), text, &checked);
  }
  EXPECT_GT(checked, 250);
}

TEST(PlannerPropertyTest, JsonlUnitsReadLikeTheWholeFile) {
  std::mt19937_64 rng(7);
  auto env = NewMemEnv();
  int checked = 0;
  for (int file_idx = 0; file_idx < 300 && !::testing::Test::HasFailure(); ++file_idx) {
    const std::string text = RandomJsonl(rng);
    SCOPED_TRACE("file " + std::to_string(file_idx) + ": " + ::testing::PrintToString(text));
    CheckGeneratedFile(env.get(), Input("gen.jsonl", InputFormat::kJsonl), text, &checked);
  }
  EXPECT_GT(checked, 250);
}

// ---- the parallel record scan against the sequential one ---------------------

std::string RangesText(const std::vector<RecordRange>& ranges) {
  std::string text;
  for (const RecordRange& range : ranges) {
    text += "[" + std::to_string(range.begin) + " line " + std::to_string(range.first_line) + ": " +
            std::to_string(range.records) + "]";
  }
  return text;
}

// Splits `path` in blocks of several sizes at every target of at least one
// block and expects the sequential scan's ranges from SplitAtRecords and from
// SplitAtRecordsInBlocks where it applies. Returns how often it applied.
int ExpectBlockSplitsLikeSequential(Env* env, const std::string& path, InputFormat format, const CsvOptions& csv) {
  Result<FileInfo> info = env->Stat(path);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return 0;
  int parallel = 0;
  for (const size_t block_bytes : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}}) {
    for (const uint64_t target : TargetsFor(info->size)) {
      if (target < block_bytes) continue;
      SCOPED_TRACE("block_bytes " + std::to_string(block_bytes) + ", target_bytes " + std::to_string(target));
      Result<std::vector<RecordRange>> sequential = SplitAtRecords(env, path, format, csv, target, kDefaultChunkBytes, 0);
      Result<std::optional<std::vector<RecordRange>>> blocks =
          SplitAtRecordsInBlocks(env, path, format, csv, target, block_bytes);
      Result<std::vector<RecordRange>> split =
          SplitAtRecords(env, path, format, csv, target, kDefaultChunkBytes, block_bytes);
      EXPECT_TRUE(sequential.ok() && blocks.ok() && split.ok());
      if (!sequential.ok() || !blocks.ok() || !split.ok()) return parallel;
      EXPECT_EQ(RangesText(*split), RangesText(*sequential));
      if (blocks->has_value()) {
        ++parallel;
        EXPECT_EQ(RangesText(**blocks), RangesText(*sequential));
      }
      if (::testing::Test::HasFailure()) return parallel;
    }
  }
  return parallel;
}

TEST(PlannerPropertyTest, CsvBlockScanSplitsLikeSequential) {
  std::mt19937_64 rng(99);
  auto env = NewMemEnv();
  int parallel_files = 0;
  for (int file_idx = 0; file_idx < 300 && !::testing::Test::HasFailure(); ++file_idx) {
    CsvOptions csv = RandomCsvOptions(rng, {'"', '\'', '\0'});
    const std::string text = RandomCsv(rng, csv);
    SCOPED_TRACE("file " + std::to_string(file_idx) + ": " + ::testing::PrintToString(text));
    WriteFile(env.get(), "gen.csv", text);
    // Written without quotes, read with them on: no quote byte, so no fallback.
    if (csv.quote == '\0' && Chance(rng, 0.5)) csv.quote = '"';
    const int parallel = ExpectBlockSplitsLikeSequential(env.get(), "gen.csv", InputFormat::kCsv, csv);
    if (csv.quote != '\0' && text.find(csv.quote) != std::string::npos) {
      EXPECT_EQ(parallel, 0) << "a file with its quote byte falls back";
    } else if (text.size() >= 4) {
      EXPECT_GT(parallel, 0);
      ++parallel_files;
    }
  }
  EXPECT_GT(parallel_files, 80);
}

TEST(PlannerPropertyTest, JsonlBlockScanSplitsLikeSequential) {
  std::mt19937_64 rng(11);
  auto env = NewMemEnv();
  for (int file_idx = 0; file_idx < 300 && !::testing::Test::HasFailure(); ++file_idx) {
    std::string text = RandomJsonl(rng);
    // Now and then blank runs longer than a block, alone and before a value.
    if (Chance(rng, 0.3)) text.insert(text.find('\n') + 1, std::string(70, ' ') + "\n \t  \t" + std::string(80, ' ') + "{}\n");
    SCOPED_TRACE("file " + std::to_string(file_idx) + ": " + ::testing::PrintToString(text));
    WriteFile(env.get(), "gen.jsonl", text);
    const int parallel = ExpectBlockSplitsLikeSequential(env.get(), "gen.jsonl", InputFormat::kJsonl, {});
    if (text.size() >= 4) {
      EXPECT_GT(parallel, 0);
    }
  }
}

TEST(PlannerTest, BlockScanEdgeFiles) {
  auto env = NewMemEnv();
  const std::vector<std::string> csv_files = {
      "a,b\n1,2\n3,4\n\r",               // a lone CR at the end of the file is a blank record
      "a,b\n1,2\n\r\n\n\r\n3,4",          // blank records, no final LF
      "\xEF\xBB\xBF\n\r\na,b\n1,2\n3,4\n",  // a BOM, blank records before the header
      "\xEF\xBB\xBF" "1,2\n3,4\n5,6",
      "a,b\n\r\r\n1\r2\n\r3\n\r",         // CRs that are data
      "\n\na,b\n\n\r\n\n\r\n",            // a header and blank records only
      "\n\r\n\n\r\n\n",                    // blank records only
  };
  for (const std::string& text : csv_files) {
    for (const bool header : {true, false}) {
      SCOPED_TRACE(::testing::PrintToString(text) + (header ? " with header" : ""));
      WriteFile(env.get(), "edge.csv", text);
      CsvOptions csv;
      csv.header = header;
      EXPECT_GT(ExpectBlockSplitsLikeSequential(env.get(), "edge.csv", InputFormat::kCsv, csv), 0);
    }
  }
  const std::vector<std::string> jsonl_files = {
      "{}\n \t\r\n{}\n   ",                   // blanks at the end of the file, no final LF
      "   \n\t\n \r\n",                         // blank lines only
      "\xEF\xBB\xBF  \n{}\n{}\r\n \r",          // a BOM before a blank line
      "{}\n          \n          {}\n{}\n",  // blank runs longer than a block
  };
  for (const std::string& text : jsonl_files) {
    SCOPED_TRACE(::testing::PrintToString(text));
    WriteFile(env.get(), "edge.jsonl", text);
    EXPECT_GT(ExpectBlockSplitsLikeSequential(env.get(), "edge.jsonl", InputFormat::kJsonl, {}), 0);
  }
}

TEST(PlannerTest, LargeFilePlanTakesTheBlockScan) {
  auto env = NewMemEnv();
  std::string text = "id,v\n";
  for (int row_idx = 0; text.size() < (size_t{9} << 19); ++row_idx) {
    text += std::to_string(row_idx) + (row_idx % 7 == 0 ? ",x\r\n\n" : ",yy\n");
  }
  WriteFile(env.get(), "large.csv", text);
  const InputSpec input = Input("large.csv", InputFormat::kCsv);
  const uint64_t target = uint64_t{1} << 20;
  Result<std::optional<std::vector<RecordRange>>> blocks =
      SplitAtRecordsInBlocks(env.get(), "large.csv", InputFormat::kCsv, input.csv, target);
  ASSERT_TRUE(blocks.ok() && blocks->has_value());
  Result<std::vector<RecordRange>> sequential =
      SplitAtRecords(env.get(), "large.csv", InputFormat::kCsv, input.csv, target, kDefaultChunkBytes, 0);
  ASSERT_TRUE(sequential.ok());
  EXPECT_EQ(RangesText(**blocks), RangesText(*sequential));
  const Plan plan = MustPlan(env.get(), input, BySize(target));
  ASSERT_EQ(plan.units.size(), sequential->size());
  for (size_t unit_idx = 0; unit_idx < plan.units.size(); ++unit_idx) {
    EXPECT_EQ(plan.units[unit_idx].range.begin, (*sequential)[unit_idx].begin);
    EXPECT_EQ(plan.units[unit_idx].range.first_line, (*sequential)[unit_idx].first_line);
    EXPECT_EQ(plan.units[unit_idx].est_rows, (*sequential)[unit_idx].records);
  }
}

TEST(PlannerTest, BlockScanFallsBackOnAQuoteInALateBlock) {
  auto env = NewMemEnv();
  std::string text = "a,b\n";
  for (int row_idx = 0; row_idx < 200; ++row_idx) text += std::to_string(row_idx) + ",x\n";
  text += "200,\"two\nlines\"\n201,y\n";
  WriteFile(env.get(), "late.csv", text);
  CsvOptions csv;
  csv.header = true;
  for (const char quote : {'"', '\0'}) {
    SCOPED_TRACE(std::string("quote ") + quote);
    csv.quote = quote;
    Result<std::optional<std::vector<RecordRange>>> blocks =
        SplitAtRecordsInBlocks(env.get(), "late.csv", InputFormat::kCsv, csv, 64, 16);
    ASSERT_TRUE(blocks.ok()) << blocks.status().ToString();
    EXPECT_EQ(blocks->has_value(), quote == '\0');
    Result<std::vector<RecordRange>> split = SplitAtRecords(env.get(), "late.csv", InputFormat::kCsv, csv, 64, 16, 16);
    Result<std::vector<RecordRange>> sequential =
        SplitAtRecords(env.get(), "late.csv", InputFormat::kCsv, csv, 64, kDefaultChunkBytes, 0);
    ASSERT_TRUE(split.ok() && sequential.ok());
    EXPECT_EQ(RangesText(*split), RangesText(*sequential));
    int64_t records = 0;
    for (const RecordRange& range : *sequential) records += range.records;
    EXPECT_EQ(records, quote == '\0' ? 203 : 202);  // unquoted, `lines"` is a record of its own
  }
}

TEST(PlannerTest, BlockScanOnlyForLargeFilesAndTargets) {
  auto env = NewMemEnv();
  WriteFile(env.get(), "in.jsonl", "{}\n{}\n{}\n{}\n");  // 12 bytes
  auto blocks = [&](InputFormat format, uint64_t target, size_t block_bytes) {
    Result<std::optional<std::vector<RecordRange>>> split =
        SplitAtRecordsInBlocks(env.get(), "in.jsonl", format, {}, target, block_bytes);
    EXPECT_TRUE(split.ok()) << split.status().ToString();
    return split.ok() && split->has_value();
  };
  EXPECT_TRUE(blocks(InputFormat::kJsonl, 3, 3));    // 4 blocks
  EXPECT_FALSE(blocks(InputFormat::kJsonl, 4, 4));   // 3 blocks
  EXPECT_FALSE(blocks(InputFormat::kJsonl, 2, 3));   // target under a block
  EXPECT_FALSE(blocks(InputFormat::kJsonl, 3, 0));   // sequential asked for
  EXPECT_FALSE(blocks(InputFormat::kParquet, 3, 3));
}

TEST(PlannerTest, BlockScanReadErrorsAreErrors) {
  auto mem = NewMemEnv();
  std::string text = "\xEF\xBB\xBFid,v\n";
  for (int row_idx = 0; row_idx < 100; ++row_idx) text += std::to_string(row_idx) + ",x\r\n";
  WriteFile(mem.get(), "big.csv", text);
  FaultInjectionEnv env(mem.get());
  CsvOptions csv;
  csv.header = true;
  Result<std::optional<std::vector<RecordRange>>> clean =
      SplitAtRecordsInBlocks(&env, "big.csv", InputFormat::kCsv, csv, 100, 32);
  ASSERT_TRUE(clean.ok() && clean->has_value());
  const int64_t reads = env.Calls(FaultOp::kRead);
  ASSERT_GT(reads, static_cast<int64_t>(text.size() / 32));
  for (int64_t nth = 1; nth <= reads; ++nth) {
    env.ClearRules();
    env.FailOnce(FaultOp::kRead, "big.csv", nth);
    Result<std::vector<RecordRange>> split = SplitAtRecords(&env, "big.csv", InputFormat::kCsv, csv, 100, 32, 32);
    ASSERT_FALSE(split.ok()) << "read " << nth;
    EXPECT_EQ(split.status().code(), StatusCode::kIOError);
    EXPECT_NE(split.status().message().find("reading 'big.csv' at byte "), std::string::npos)
        << split.status().ToString();
  }
}

}  // namespace
}  // namespace sluice
