#include "preprocess/stats_fitter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "preprocess/preprocessor.h"
#include "preprocess/test_util.h"

namespace sluice {
namespace {

// ---- helpers ---------------------------------------------------------------

constexpr double kNull = std::numeric_limits<double>::quiet_NaN();

TransformSpec Clip(std::optional<double> lo, std::optional<double> hi) {
  TransformSpec t;
  t.kind = TransformKind::kClip;
  t.clip_min = lo;
  t.clip_max = hi;
  return t;
}

// Splits `values` (NaN = null) into float64 batches of column `name`, with
// uneven batch sizes so batch boundaries fall everywhere.
std::vector<Batch> DoubleBatches(const std::string& name, const std::vector<double>& values) {
  std::vector<Batch> batches;
  size_t pos = 0;
  size_t size = 1;
  while (pos < values.size()) {
    Batch b;
    b.schema = Schema({{name, DataType::kFloat64}});
    b.columns.emplace_back(DataType::kFloat64);
    const size_t end = std::min(values.size(), pos + size);
    for (; pos < end; ++pos) {
      if (std::isnan(values[pos])) {
        b.columns[0].AppendNull();
      } else {
        b.columns[0].AppendFloat64(values[pos]);
      }
    }
    batches.push_back(std::move(b));
    size = size * 3 + 7;
    if (size > 5000) size = 1 + size % 3001;
  }
  return batches;
}

Result<Stats> Fit(const std::vector<FeatureSpec>& features, const std::vector<Batch>& batches,
                  const StatsFitterOptions& options = {}) {
  const Schema schema = batches.at(0).schema;
  ASSIGN_OR_RETURN(auto fitter, StatsFitter::Make(features, schema, options));
  for (const Batch& b : batches) fitter->Add(b);
  return fitter->Finish();
}

// Generated data: a lognormal-ish positive column with ~10% nulls.
std::vector<double> Generate(size_t n, uint64_t seed, double null_fraction = 0.1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(3.0, 1.5);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> values;
  values.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    values.push_back(unit(rng) < null_fraction ? kNull : std::exp(normal(rng)) * 10.0);
  }
  return values;
}

// ---- straightforward two-pass reference computations -------------------------
// Sums in long double, so the reference is more precise than what is tested.

std::vector<double> NonNull(const std::vector<double>& v) {
  std::vector<double> out;
  for (double x : v) {
    if (!std::isnan(x)) out.push_back(x);
  }
  return out;
}

double RefMean(const std::vector<double>& v) {
  long double sum = 0;
  for (double x : v) sum += x;
  return static_cast<double>(sum / static_cast<long double>(v.size()));
}

double RefStd(const std::vector<double>& v) {
  const long double mean = RefMean(v);
  long double sq = 0;
  for (double x : v) sq += (x - mean) * (x - mean);
  return static_cast<double>(std::sqrt(sq / static_cast<long double>(v.size())));
}

double RefMedian(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void ExpectRelative(double got, double want, double tolerance = 1e-12) {
  EXPECT_LE(std::abs(got - want), tolerance * std::abs(want)) << "got " << got << " want " << want;
}

// Checks minmax stats against the column entering minmax, and standardize
// stats against the min-max scaled column.
void ExpectMinMaxThenStandardize(const FeatureStats& fs, const std::vector<double>& entering) {
  const double lo = *std::min_element(entering.begin(), entering.end());
  const double hi = *std::max_element(entering.begin(), entering.end());
  EXPECT_EQ(*fs.min, lo);
  EXPECT_EQ(*fs.max, hi);
  std::vector<double> scaled;
  for (double v : entering) scaled.push_back((v - lo) / (hi - lo));
  ExpectRelative(*fs.mean, RefMean(scaled));
  ExpectRelative(*fs.std, RefStd(scaled));
}

// ---- tests -----------------------------------------------------------------

TEST(StatsFitterTest, MeanImputeThenStandardizeEqualsStandardizingTheImputedColumn) {
  const std::vector<double> data = Generate(50'000, 1);
  const std::vector<Batch> batches = DoubleBatches("amount", data);
  Result<Stats> r = Fit({Numeric("amount", {TransformKind::kStandardize}, ImputeKind::kMean)}, batches);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const FeatureStats* fs = r->Find("amount");
  ASSERT_NE(fs, nullptr);

  const std::vector<double> non_null = NonNull(data);
  const double impute = RefMean(non_null);
  std::vector<double> imputed = data;
  for (double& x : imputed) {
    if (std::isnan(x)) x = impute;
  }
  ExpectRelative(*fs->impute_number, impute);
  ExpectRelative(*fs->mean, RefMean(imputed));
  ExpectRelative(*fs->std, RefStd(imputed));
  EXPECT_FALSE(fs->min.has_value());
  EXPECT_EQ(fs->count, static_cast<int64_t>(non_null.size()));
  EXPECT_EQ(fs->nulls, static_cast<int64_t>(data.size() - non_null.size()));
  // Imputing shrinks the spread compared with the non-null values alone.
  EXPECT_LT(*fs->std, RefStd(non_null));
}

TEST(StatsFitterTest, MedianImputeThroughParameterFreePrefixIntoMinMaxThenStandardize) {
  const std::vector<double> data = Generate(30'001, 2);
  FeatureSpec f = Numeric("x", {TransformKind::kLog1p}, ImputeKind::kMedian);
  f.transforms.push_back(Clip(2.0, 8.0));
  TransformSpec minmax;
  minmax.kind = TransformKind::kMinMax;
  f.transforms.push_back(minmax);
  TransformSpec standardize;
  standardize.kind = TransformKind::kStandardize;
  f.transforms.push_back(standardize);
  f.transforms.push_back(Clip(std::nullopt, 3.0));  // after the last fitted step: free
  Result<Stats> r = Fit({f}, DoubleBatches("x", data));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const FeatureStats* fs = r->Find("x");
  ASSERT_NE(fs, nullptr);

  const double median = RefMedian(NonNull(data));
  EXPECT_EQ(*fs->impute_number, median);
  // Entering minmax: clip(log1p(imputed x)).
  std::vector<double> entering;
  for (double x : data) {
    const double v = std::isnan(x) ? median : x;
    entering.push_back(std::clamp(std::log1p(v), 2.0, 8.0));
  }
  ExpectMinMaxThenStandardize(*fs, entering);
}

TEST(StatsFitterTest, StandardizeThenMinMax) {
  const std::vector<double> data = Generate(20'000, 3);
  Result<Stats> r =
      Fit({Numeric("x", {TransformKind::kStandardize, TransformKind::kMinMax}, ImputeKind::kNone)},
          DoubleBatches("x", data));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const FeatureStats* fs = r->Find("x");
  const std::vector<double> non_null = NonNull(data);  // impute none: nulls left out
  const double mean = RefMean(non_null);
  const double sd = RefStd(non_null);
  ExpectRelative(*fs->mean, mean);
  ExpectRelative(*fs->std, sd);
  EXPECT_FALSE(fs->impute_number.has_value());
  std::vector<double> standardized;
  for (double x : non_null) standardized.push_back((x - mean) / sd);
  ExpectRelative(*fs->min, *std::min_element(standardized.begin(), standardized.end()));
  ExpectRelative(*fs->max, *std::max_element(standardized.begin(), standardized.end()));
}

TEST(StatsFitterTest, LargeOffsetIsNumericallyStable) {
  // A running sum of squares would lose every digit here.
  std::vector<double> data;
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 100'000; ++i) data.push_back(1e9 + unit(rng));
  Result<Stats> r = Fit({Numeric("x", {TransformKind::kStandardize}, ImputeKind::kNan)},
                        DoubleBatches("x", data));
  ASSERT_TRUE(r.ok());
  ExpectRelative(*r->Find("x")->mean, RefMean(data));
  ExpectRelative(*r->Find("x")->std, RefStd(data), 1e-6);
}

TEST(StatsFitterTest, MedianIsExactForSmallCounts) {
  // Odd and even counts, with nulls and duplicates, split into many batches.
  const std::vector<double> odd = {5, kNull, 1, 9, 3, 3, kNull, 7, -2};
  Result<Stats> r = Fit({Numeric("x", {}, ImputeKind::kMedian)}, DoubleBatches("x", odd));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->Find("x")->impute_number, 3.0);  // sorted: -2 1 3 3 5 7 9
  EXPECT_EQ(r->Find("x")->count, 7);
  EXPECT_EQ(r->Find("x")->nulls, 2);

  const std::vector<double> even = {4, 1, kNull, 10, 2};
  r = Fit({Numeric("x", {}, ImputeKind::kMedian)}, DoubleBatches("x", even));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->Find("x")->impute_number, 3.0);  // (2 + 4) / 2

  const std::vector<double> generated = Generate(10'000, 5);
  r = Fit({Numeric("x", {}, ImputeKind::kMedian)}, DoubleBatches("x", generated));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->Find("x")->impute_number, RefMedian(NonNull(generated)));
}

TEST(StatsFitterTest, MedianBeyondTheLimitIsASampleNearTheTrueMedian) {
  std::vector<double> data;
  std::mt19937_64 rng(6);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 200'000; ++i) data.push_back(unit(rng));
  StatsFitterOptions options;
  options.median_exact_limit = 4096;
  Result<Stats> a = Fit({Numeric("x", {}, ImputeKind::kMedian)}, DoubleBatches("x", data), options);
  Result<Stats> b = Fit({Numeric("x", {}, ImputeKind::kMedian)}, DoubleBatches("x", data), options);
  ASSERT_TRUE(a.ok() && b.ok());
  const double sampled = *a->Find("x")->impute_number;
  EXPECT_EQ(sampled, *b->Find("x")->impute_number);  // fixed seed: repeatable
  EXPECT_NE(sampled, RefMedian(data));               // a sample, not the exact median
  // Rank error sd ~ 0.5/sqrt(4096) = 0.78% of n; uniform data: value error alike. 5 sd:
  EXPECT_NEAR(sampled, RefMedian(data), 0.04);
  EXPECT_EQ(a->Find("x")->count, 200'000);
}

TEST(StatsFitterTest, MostFrequentTiesGoToTheSmallestValue) {
  Result<Stats> r = Fit({Numeric("x", {}, ImputeKind::kMostFrequent)},
                        DoubleBatches("x", {3, 1, kNull, 3, 2, 1, 5, kNull, kNull}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->Find("x")->impute_number, 1.0);  // 1 and 3 twice each; nulls are not a value

  Batch strings;
  strings.schema = Schema({{"m", DataType::kString}});
  strings.columns.emplace_back(DataType::kString);
  for (const char* s : {"travel", "b", "grocery", "travel", "grocery", "b"}) strings.columns[0].AppendString(s);
  strings.columns[0].AppendNull();
  FeatureSpec m;
  m.name = "m";
  m.one_hot = {"grocery", "travel"};
  m.impute = ImputeKind::kMostFrequent;
  r = Fit({m}, {strings});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Find("m")->impute_string, "b");  // three-way tie: byte-wise smallest
  EXPECT_FALSE(r->Find("m")->impute_number.has_value());
  EXPECT_EQ(r->Find("m")->count, 6);
  EXPECT_EQ(r->Find("m")->nulls, 1);

  // One-hot on an int64 column: numbers compared as numbers (9 < 10), written as text.
  Batch ints;
  ints.schema = Schema({{"k", DataType::kInt64}});
  ints.columns.emplace_back(DataType::kInt64);
  for (int64_t v : {10, 9, 10, 9, 4}) ints.columns[0].AppendInt64(v);
  FeatureSpec k;
  k.name = "k";
  k.one_hot = {"9", "10"};
  k.impute = ImputeKind::kMostFrequent;
  r = Fit({k}, {ints});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Find("k")->impute_string, "9");
}

TEST(StatsFitterTest, TooManyDistinctValues) {
  std::vector<double> data;
  for (int i = 0; i < 100; ++i) data.push_back(i);
  StatsFitterOptions options;
  options.max_distinct = 50;
  Result<Stats> r = Fit({Numeric("x", {}, ImputeKind::kMostFrequent)}, DoubleBatches("x", data), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(),
            "features[0] (x): more than 50 distinct values to count for impute: most_frequent");
}

TEST(StatsFitterTest, ChainsThatNeedTwoPassesAreNotSupported) {
  const Schema schema({{"amount", DataType::kFloat64}});
  auto error = [&](std::vector<TransformSpec> transforms) {
    FeatureSpec f;
    f.name = "amount";
    f.transforms = std::move(transforms);
    Result<std::unique_ptr<StatsFitter>> r = StatsFitter::Make({f}, schema);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return std::string();
    EXPECT_EQ(r.status().code(), StatusCode::kNotSupported);
    return r.status().message();
  };
  TransformSpec log1p, standardize, minmax;
  log1p.kind = TransformKind::kLog1p;
  standardize.kind = TransformKind::kStandardize;
  minmax.kind = TransformKind::kMinMax;
  EXPECT_EQ(error({standardize, log1p, minmax}),
            "features[0] (amount): transforms [standardize, log1p, minmax] cannot be fitted in one pass "
            "(log1p between standardize and minmax); give the stats inline or in a stats file");
  EXPECT_EQ(error({log1p, minmax, Clip(0, 1), standardize}),
            "features[0] (amount): transforms [log1p, minmax, clip, standardize] cannot be fitted in one "
            "pass (clip between minmax and standardize); give the stats inline or in a stats file");
  // A parameterized step twice is not supported anywhere.
  EXPECT_EQ(error({standardize, standardize}).find("features[0] (amount): transform standardize appears twice"),
            0u);

  FeatureSpec ok;
  ok.name = "amount";
  ok.transforms = {log1p, Clip(0, std::nullopt), standardize, minmax, log1p, Clip(std::nullopt, 1)};
  EXPECT_TRUE(StatsFitter::Make({ok}, schema).ok());
}

TEST(StatsFitterTest, ImputeNanLeavesNullsOutOfStepStats) {
  const std::vector<double> data = Generate(5'000, 7, 0.3);
  Result<Stats> r = Fit({Numeric("x", {TransformKind::kMinMax, TransformKind::kStandardize}, ImputeKind::kNan)},
                        DoubleBatches("x", data));
  ASSERT_TRUE(r.ok());
  const FeatureStats* fs = r->Find("x");
  const std::vector<double> non_null = NonNull(data);
  ExpectMinMaxThenStandardize(*fs, non_null);
  EXPECT_FALSE(fs->impute_number.has_value());
}

TEST(StatsFitterTest, ConstantImputeIsWrittenAndCountsInSteps) {
  FeatureSpec f = Numeric("x", {TransformKind::kStandardize}, ImputeKind::kConstant);
  f.impute_number = 100;
  Result<Stats> r = Fit({f}, DoubleBatches("x", {0, kNull, 2}));
  ASSERT_TRUE(r.ok());
  const FeatureStats* fs = r->Find("x");
  EXPECT_EQ(fs->impute_number, 100.0);
  ExpectRelative(*fs->mean, 34.0);
  ExpectRelative(*fs->std, RefStd({0, 100, 2}));
}

TEST(StatsFitterTest, ValuesThePreprocessorWouldRejectAreSkipped) {
  Batch b;
  b.schema = Schema({{"s", DataType::kString}});
  b.columns.emplace_back(DataType::kString);
  for (const char* s : {"1", "abc", "3", "-5", "inf", "nan"}) b.columns[0].AppendString(s);
  Result<std::unique_ptr<StatsFitter>> fitter =
      StatsFitter::Make({Numeric("s", {TransformKind::kLog1p, TransformKind::kStandardize}, ImputeKind::kMean)},
                        b.schema);
  ASSERT_TRUE(fitter.ok());
  (*fitter)->Add(b);
  Result<Stats> r = (*fitter)->Finish();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const FeatureStats* fs = r->Find("s");
  // "abc" and "inf" are skipped; "nan" is a null; -5 counts for the mean but
  // log1p(-5) is left out of the standardize statistics.
  EXPECT_EQ(fs->count, 3);
  EXPECT_EQ(fs->nulls, 1);
  ExpectRelative(*fs->impute_number, -1.0 / 3.0);
  EXPECT_EQ((*fitter)->skipped_values(), 3);
  // Entering standardize: log1p(1), log1p(3), and the null as log1p(-1/3).
  const std::vector<double> entering = {std::log1p(1.0), std::log1p(3.0), std::log1p(-1.0 / 3.0)};
  ExpectRelative(*fs->mean, RefMean(entering));
  ExpectRelative(*fs->std, RefStd(entering));
}

TEST(StatsFitterTest, DatetimePartsAreFitted) {
  Batch b;
  b.schema = Schema({{"ts", DataType::kTimestamp}});
  b.columns.emplace_back(DataType::kTimestamp);
  const int64_t kHour = int64_t{3600} * 1'000'000;
  for (int64_t h : {1, 5, 5, 23}) b.columns[0].AppendInt64(h * kHour + 86400LL * 1'000'000 * 3);
  FeatureSpec f;
  f.name = "hour";
  f.column = "ts";
  f.datetime = DatetimePart::kHour;
  f.impute = ImputeKind::kMostFrequent;
  TransformSpec minmax;
  minmax.kind = TransformKind::kMinMax;
  f.transforms.push_back(minmax);
  Result<Stats> r = Fit({f}, {b});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Find("hour")->impute_number, 5.0);
  EXPECT_EQ(r->Find("hour")->min, 1.0);
  EXPECT_EQ(r->Find("hour")->max, 23.0);
}

TEST(StatsFitterTest, ErrorsNameTheFeature) {
  Result<Stats> r = Fit({Numeric("x", {}, ImputeKind::kMean)}, DoubleBatches("x", {kNull, kNull}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "features[0] (x): no non-null values to compute impute: mean");

  r = Fit({Numeric("x", {TransformKind::kStandardize}, ImputeKind::kNone)}, DoubleBatches("x", {kNull}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "features[0] (x): no non-null values to compute the statistics of transform standardize");

  Result<std::unique_ptr<StatsFitter>> fitter =
      StatsFitter::Make({Numeric("x", {}, ImputeKind::kMean)}, Schema({{"x", DataType::kFloat64}}));
  ASSERT_TRUE(fitter.ok());
  Batch other;
  other.schema = Schema({{"y", DataType::kFloat64}});
  other.columns.emplace_back(DataType::kFloat64);
  other.unit_id = "00003";
  (*fitter)->Add(other);
  r = (*fitter)->Finish();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "features[0] (x): no input column 'x' in batch of unit '00003'");

  Result<std::unique_ptr<StatsFitter>> bad = StatsFitter::Make(
      {Numeric("amount", {}, ImputeKind::kMean)}, Schema({{"id", DataType::kInt64}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "features[0] (amount): no input column 'amount' (columns: id)");
}

TEST(StatsFitterTest, FittedStatsDriveThePreprocessorToZeroMeanUnitStd) {
  const std::vector<double> data = Generate(10'000, 8);
  const std::vector<Batch> batches = DoubleBatches("amount", data);
  const std::vector<FeatureSpec> features = {
      Numeric("amount", {TransformKind::kLog1p, TransformKind::kStandardize}, ImputeKind::kMedian)};
  Result<Stats> r = Fit(features, batches);
  ASSERT_TRUE(r.ok());
  // Through the file format and back, as fit-stats then run would.
  Result<Stats> reread = Stats::Parse(r->ToJson(), "stats.json");
  ASSERT_TRUE(reread.ok());
  auto p = Preprocessor::Make(features, *reread, batches[0].schema);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::vector<double> out;
  for (const Batch& b : batches) {
    std::vector<float> matrix;
    std::vector<uint8_t> row_ok;
    ASSERT_EQ((*p)->Apply(b, "train.csv", &matrix, &row_ok, nullptr), b.num_rows());
    out.insert(out.end(), matrix.begin(), matrix.end());
  }
  EXPECT_NEAR(RefMean(out), 0.0, 1e-6);
  EXPECT_NEAR(RefStd(out), 1.0, 1e-6);
}

}  // namespace
}  // namespace sluice
