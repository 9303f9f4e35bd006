// partition.sample in both text readers: which rows are kept, how many, and
// that CSV and JSON Lines decide alike.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/hash.h"
#include "sluice/env.h"
#include "sluice/source.h"
#include "source/source_test_util.h"

namespace sluice {
namespace {

struct SampledRead {
  ReadOutput out;
  int64_t sampled_out = 0;
};

SampledRead ReadSampled(Env* env, const InputRange& range, const SourceOptions& options) {
  SampledRead read;
  Result<Schema> schema = InferSchema(env, range.path, options);
  if (!schema.ok()) {
    read.out.status = schema.status();
    return read;
  }
  CollectRejects rejects;
  Result<std::unique_ptr<Source>> source = OpenSource(env, range, *schema, options, &rejects);
  if (!source.ok()) {
    read.out.status = source.status();
    return read;
  }
  DrainSource(source->get(), &read.out);
  read.out.rejects = std::move(rejects.rejects);
  read.sampled_out = (*source)->rows_sampled_out();
  return read;
}

SourceOptions Sampled(InputFormat format, double fraction, std::vector<std::string> keys) {
  SourceOptions options;
  options.format = format;
  options.sample = fraction;
  options.sample_keys = std::move(keys);
  options.batch_rows = 1000;
  return options;
}

constexpr int kRows = 20000;

// id,name,score rows; ids 0..kRows-1 with id % 7 == 3 stored as a float ("3.0").
void WriteTables(Env* env) {
  std::string csv = "id,name,score\n";
  std::string jsonl;
  for (int row = 0; row < kRows; ++row) {
    const std::string id = std::to_string(row);
    const std::string score = std::to_string(row % 100) + ".5";
    csv += id + (row % 7 == 3 ? ".0" : "") + ",n" + id + "," + score + "\n";
    jsonl += "{\"id\":" + id + (row % 7 == 3 ? ".0" : "") + ",\"name\":\"n" + id + "\",\"score\":" + score + "}\n";
  }
  WriteFile(env, "t.csv", csv);
  WriteFile(env, "t.jsonl", jsonl);
}

// The first column of each row (the ids, as read).
std::vector<std::string> FirstValues(const ReadOutput& out) {
  std::vector<std::string> values;
  for (const std::string& row : out.rows) values.push_back(row.substr(0, row.find('|')));
  return values;
}

TEST(SampleTest, FractionIsWithinBinomialBounds) {
  auto env = NewMemEnv();
  WriteTables(env.get());
  for (const double fraction : {0.01, 0.1, 0.5, 0.9}) {
    for (const auto& keys : {std::vector<std::string>{"name"}, std::vector<std::string>{}}) {
      SCOPED_TRACE(std::to_string(fraction) + (keys.empty() ? " by location" : " by name"));
      const SampledRead read = ReadSampled(env.get(), InputRange{"t.csv"}, Sampled(InputFormat::kCsv, fraction, keys));
      ASSERT_TRUE(read.out.status.ok()) << read.out.status.ToString();
      const double kept = static_cast<double>(read.out.rows.size());
      const double sd = std::sqrt(kRows * fraction * (1 - fraction));
      EXPECT_NEAR(kept, kRows * fraction, 5 * sd);
      EXPECT_EQ(read.out.rows.size() + static_cast<size_t>(read.sampled_out), static_cast<size_t>(kRows));
      EXPECT_TRUE(read.out.rejects.empty());
    }
  }
}

TEST(SampleTest, CsvAndJsonlKeepTheSameRows) {
  auto env = NewMemEnv();
  WriteTables(env.get());
  // One key of each kind; the ids are int64 in JSON Lines but float64 in CSV ("3.0").
  for (const auto& keys : {std::vector<std::string>{"id"}, std::vector<std::string>{"name"},
                           std::vector<std::string>{"score", "name"}}) {
    SCOPED_TRACE(keys.front());
    SourceOptions csv_options = Sampled(InputFormat::kCsv, 0.3, keys);
    SourceOptions jsonl_options = Sampled(InputFormat::kJsonl, 0.3, keys);
    jsonl_options.declared_types = {{"id", DataType::kInt64}};
    const SampledRead csv = ReadSampled(env.get(), InputRange{"t.csv"}, csv_options);
    const SampledRead jsonl = ReadSampled(env.get(), InputRange{"t.jsonl"}, jsonl_options);
    ASSERT_TRUE(csv.out.status.ok()) << csv.out.status.ToString();
    ASSERT_TRUE(jsonl.out.status.ok()) << jsonl.out.status.ToString();
    EXPECT_EQ(csv.out.schema.field(0).type, DataType::kFloat64);
    EXPECT_EQ(jsonl.out.schema.field(0).type, DataType::kInt64);
    EXPECT_EQ(csv.out.lines.size(), jsonl.out.lines.size());
    EXPECT_EQ(csv.sampled_out, jsonl.sampled_out);
    // Line n of the JSON Lines file is line n + 1 of the CSV file.
    std::vector<int64_t> csv_lines_as_jsonl;
    for (const int64_t line : csv.out.lines) csv_lines_as_jsonl.push_back(line - 1);
    EXPECT_EQ(csv_lines_as_jsonl, jsonl.out.lines);
    EXPECT_GT(csv.sampled_out, 0);
  }
}

TEST(SampleTest, KeyedDecisionIsTheStableHashOfTheValues) {
  auto env = NewMemEnv();
  WriteTables(env.get());
  SourceOptions options = Sampled(InputFormat::kCsv, 0.2, {"name"});
  options.columns = {"name"};
  const SampledRead read = ReadSampled(env.get(), InputRange{"t.csv"}, options);
  ASSERT_TRUE(read.out.status.ok());
  std::vector<std::string> expected;
  for (int row = 0; row < kRows; ++row) {
    const std::string name = "n" + std::to_string(row);
    if (SampleKeep(MixHash(HashKeyString(name, kHashSeed)), 0.2)) expected.push_back(name);
  }
  EXPECT_EQ(read.out.rows, expected);
}

TEST(SampleTest, WithoutKeysRowsAreSampledByFileAndLine) {
  auto env = NewMemEnv();
  WriteTables(env.get());
  ASSERT_TRUE(env->RenameFile("t.csv", "u.csv").ok());
  WriteTables(env.get());  // t.csv again: the same bytes under another name
  const SourceOptions options = Sampled(InputFormat::kCsv, 0.25, {});
  const SampledRead t = ReadSampled(env.get(), InputRange{"t.csv"}, options);
  const SampledRead u = ReadSampled(env.get(), InputRange{"u.csv"}, options);
  ASSERT_TRUE(t.out.status.ok());
  std::vector<int64_t> expected;
  for (int64_t line = 2; line <= kRows + 1; ++line) {
    if (SampleKeep(HashRowLocation("t.csv", line), 0.25)) expected.push_back(line);
  }
  EXPECT_EQ(t.out.lines, expected);
  EXPECT_NE(t.out.lines, u.out.lines);

  // A range that starts mid-file decides by the same lines as the whole-file read.
  const uint64_t begin = std::string("id,name,score\n0,n0,0.5\n1,n1,1.5\n").size();
  const SampledRead rest = ReadSampled(env.get(), InputRange{"t.csv", begin, UINT64_MAX, 4}, options);
  ASSERT_TRUE(rest.out.status.ok());
  std::vector<int64_t> expected_rest;
  for (const int64_t line : expected) {
    if (line >= 4) expected_rest.push_back(line);
  }
  EXPECT_EQ(rest.out.lines, expected_rest);

  WriteFile(env.get(), "t.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"a\":4}\n{\"a\":5}\n{\"a\":6}\n");
  const SampledRead jsonl = ReadSampled(env.get(), InputRange{"t.jsonl"}, Sampled(InputFormat::kJsonl, 0.5, {}));
  ASSERT_TRUE(jsonl.out.status.ok());
  std::vector<int64_t> expected_jsonl;
  for (int64_t line = 1; line <= 6; ++line) {
    if (SampleKeep(HashRowLocation("t.jsonl", line), 0.5)) expected_jsonl.push_back(line);
  }
  EXPECT_EQ(jsonl.out.lines, expected_jsonl);
  EXPECT_EQ(jsonl.sampled_out, 6 - static_cast<int64_t>(expected_jsonl.size()));
}

TEST(SampleTest, RejectsComeBeforeSampling) {
  auto env = NewMemEnv();
  std::string csv = "id,v\n";
  std::string jsonl;
  for (int row = 0; row < 200; ++row) {
    const std::string v = row % 10 == 0 ? "bad" : std::to_string(row);
    csv += std::to_string(row) + "," + v + "\n";
    jsonl += "{\"id\":" + std::to_string(row) + ",\"v\":" + (row % 10 == 0 ? "\"bad\"" : v) + "}\n";
  }
  WriteFile(env.get(), "r.csv", csv);
  WriteFile(env.get(), "r.jsonl", jsonl);
  for (const auto& [path, format] : {std::pair<std::string, InputFormat>{"r.csv", InputFormat::kCsv},
                                     std::pair<std::string, InputFormat>{"r.jsonl", InputFormat::kJsonl}}) {
    SCOPED_TRACE(path);
    SourceOptions options = Sampled(format, 0.5, {"id"});
    options.declared_types = {{"v", DataType::kInt64}};
    const SampledRead read = ReadSampled(env.get(), InputRange{path}, options);
    ASSERT_TRUE(read.out.status.ok()) << read.out.status.ToString();
    // Every bad row is rejected, whether or not its id would be sampled.
    EXPECT_EQ(read.out.rejects.size(), 20u);
    EXPECT_EQ(read.out.rows.size() + static_cast<size_t>(read.sampled_out), 180u);
    for (const std::string& id : FirstValues(read.out)) {
      EXPECT_TRUE(SampleKeep(MixHash(HashKeyInt(std::stoll(id), kHashSeed)), 0.5)) << id;
    }
  }
}

TEST(SampleTest, KeyThatIsNotReadIsAnError) {
  auto env = NewMemEnv();
  WriteTables(env.get());
  for (const auto& [path, format] : {std::pair<std::string, InputFormat>{"t.csv", InputFormat::kCsv},
                                     std::pair<std::string, InputFormat>{"t.jsonl", InputFormat::kJsonl}}) {
    SourceOptions options = Sampled(format, 0.5, {"name"});
    options.columns = {"id", "score"};
    const SampledRead read = ReadSampled(env.get(), InputRange{path}, options);
    EXPECT_EQ(read.out.status.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(read.out.status.message(),
              "input '" + path + "': sample key 'name' is not among the columns read (id, score)");
  }
}

TEST(SampleTest, FullSampleKeepsEverything) {
  auto env = NewMemEnv();
  WriteTables(env.get());
  const SampledRead read = ReadSampled(env.get(), InputRange{"t.jsonl"}, Sampled(InputFormat::kJsonl, 1.0, {"id"}));
  ASSERT_TRUE(read.out.status.ok());
  EXPECT_EQ(read.out.rows.size(), static_cast<size_t>(kRows));
  EXPECT_EQ(read.sampled_out, 0);
}

}  // namespace
}  // namespace sluice
