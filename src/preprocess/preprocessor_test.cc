#include "preprocess/preprocessor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

#include "preprocess/test_util.h"

namespace sluice {
namespace {

// ---- helpers ---------------------------------------------------------------

class CollectingRejects : public RejectSink {
 public:
  void Add(Reject reject) override {
    std::lock_guard<std::mutex> lock(mu_);
    rejects.push_back(std::move(reject));
  }
  std::vector<Reject> rejects;

 private:
  std::mutex mu_;
};

Batch MakeBatch(std::vector<Field> fields) {
  Batch batch;
  batch.schema = Schema(std::move(fields));
  for (const Field& f : batch.schema.fields()) batch.columns.emplace_back(f.type);
  return batch;
}

// A float64 column "x" with `values`; NaN entries become nulls.
Batch DoubleBatch(const std::vector<double>& values) {
  Batch batch = MakeBatch({{"x", DataType::kFloat64}});
  for (double v : values) {
    if (std::isnan(v)) {
      batch.columns[0].AppendNull();
    } else {
      batch.columns[0].AppendFloat64(v);
    }
  }
  return batch;
}

FeatureSpec OneHot(std::string name, std::vector<std::string> categories,
                   ImputeKind impute = ImputeKind::kNone) {
  FeatureSpec f;
  f.name = std::move(name);
  f.one_hot = std::move(categories);
  f.impute = impute;
  return f;
}

Stats OneFeatureStats(const std::string& name, FeatureStats fs) {
  Stats stats;
  stats.Set(name, std::move(fs));
  return stats;
}

std::unique_ptr<Preprocessor> MustMake(const std::vector<FeatureSpec>& features, const Stats& stats,
                                       const Schema& schema) {
  Result<std::unique_ptr<Preprocessor>> r = Preprocessor::Make(features, stats, schema);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

std::string MakeError(const std::vector<FeatureSpec>& features, const Stats& stats, const Schema& schema,
                      StatusCode code = StatusCode::kInvalidArgument) {
  Result<std::unique_ptr<Preprocessor>> r = Preprocessor::Make(features, stats, schema);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  return r.status().message();
}

struct Applied {
  std::vector<float> matrix;
  std::vector<uint8_t> row_ok;
  size_t n_ok = 0;
  std::vector<Reject> rejects;
};

Applied ApplyAll(const Preprocessor& p, const Batch& batch, const std::string& file = "in.csv") {
  Applied out;
  CollectingRejects rejects;
  out.n_ok = p.Apply(batch, file, &out.matrix, &out.row_ok, &rejects);
  out.rejects = rejects.rejects;
  EXPECT_EQ(out.matrix.size(), out.n_ok * p.num_outputs());
  EXPECT_EQ(out.row_ok.size(), batch.num_rows());
  return out;
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- numeric transforms ----------------------------------------------------

TEST(PreprocessorTest, PassThroughCastsToFloat32) {
  Batch batch = DoubleBatch({1.5, -2.25, 1e10, 0.1});
  auto p = MustMake({Numeric("x")}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  EXPECT_EQ(a.n_ok, 4u);
  EXPECT_EQ(a.matrix, (std::vector<float>{1.5f, -2.25f, 1e10f, 0.1f}));
  EXPECT_EQ(p->output_names(), (std::vector<std::string>{"x"}));
}

TEST(PreprocessorTest, Log1p) {
  Batch batch = DoubleBatch({0, 1, std::exp(2.0) - 1, -0.5});
  auto p = MustMake({Numeric("x", {TransformKind::kLog1p})}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  ASSERT_EQ(a.n_ok, 4u);
  EXPECT_EQ(a.matrix[0], 0.0f);
  EXPECT_FLOAT_EQ(a.matrix[1], 0.69314718f);   // ln 2
  EXPECT_FLOAT_EQ(a.matrix[2], 2.0f);
  EXPECT_FLOAT_EQ(a.matrix[3], -0.69314718f);  // ln 0.5
}

TEST(PreprocessorTest, Standardize) {
  FeatureStats fs;
  fs.mean = 2;
  fs.std = 4;
  Batch batch = DoubleBatch({10, 2, 0, -6});
  auto p = MustMake({Numeric("x", {TransformKind::kStandardize})}, OneFeatureStats("x", fs), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{2.0f, 0.0f, -0.5f, -2.0f}));
}

TEST(PreprocessorTest, StandardizeWithZeroStdScalesByOne) {
  FeatureStats fs;
  fs.mean = 3;
  fs.std = 0;
  Batch batch = DoubleBatch({3, 5, 1});
  auto p = MustMake({Numeric("x", {TransformKind::kStandardize})}, OneFeatureStats("x", fs), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{0.0f, 2.0f, -2.0f}));
}

TEST(PreprocessorTest, MinMax) {
  FeatureStats fs;
  fs.min = 18;
  fs.max = 90;
  Batch batch = DoubleBatch({18, 90, 54, 0, 108});
  auto p = MustMake({Numeric("x", {TransformKind::kMinMax})}, OneFeatureStats("x", fs), batch.schema);
  ASSERT_TRUE(p);
  // Values outside the training range are not clipped (as in scikit-learn).
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{0.0f, 1.0f, 0.5f, -0.25f, 1.25f}));
}

TEST(PreprocessorTest, MinMaxOfConstantFeatureMapsTheConstantToZero) {
  FeatureStats fs;
  fs.min = 7;
  fs.max = 7;
  Batch batch = DoubleBatch({7, 9});
  auto p = MustMake({Numeric("x", {TransformKind::kMinMax})}, OneFeatureStats("x", fs), batch.schema);
  ASSERT_TRUE(p);
  // Range 0 is treated as 1, as scikit-learn's MinMaxScaler does.
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{0.0f, 2.0f}));
}

TEST(PreprocessorTest, ClipWithOneOrTwoBounds) {
  FeatureSpec both = Numeric("x");
  TransformSpec clip;
  clip.kind = TransformKind::kClip;
  clip.clip_min = -1;
  clip.clip_max = 2;
  both.transforms.push_back(clip);
  FeatureSpec upper_only = Numeric("upper");
  upper_only.column = "x";
  TransformSpec clip_hi;
  clip_hi.kind = TransformKind::kClip;
  clip_hi.clip_max = 0.5;
  upper_only.transforms.push_back(clip_hi);

  Batch batch = DoubleBatch({-5, 0, 1.5, 9});
  auto p = MustMake({both, upper_only}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(ApplyAll(*p, batch).matrix,
            (std::vector<float>{-1.0f, -5.0f, 0.0f, 0.0f, 1.5f, 0.5f, 2.0f, 0.5f}));
  EXPECT_EQ(p->input_columns(), (std::vector<std::string>{"x"}));
}

TEST(PreprocessorTest, ChainRunsInListedOrder) {
  // log1p then standardize then clip: clip((log1p(x) - 1) / 0.5, max 1.5).
  FeatureSpec f = Numeric("x", {TransformKind::kLog1p, TransformKind::kStandardize});
  TransformSpec clip;
  clip.kind = TransformKind::kClip;
  clip.clip_max = 1.5;
  f.transforms.push_back(clip);
  FeatureStats fs;
  fs.mean = 1;
  fs.std = 0.5;
  const double e = std::exp(1.0);
  Batch batch = DoubleBatch({e - 1, e * e - 1, e * e * e - 1});
  auto p = MustMake({f}, OneFeatureStats("x", fs), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  ASSERT_EQ(a.n_ok, 3u);
  EXPECT_NEAR(a.matrix[0], 0.0f, 1e-6);  // log1p -> 1, standardize -> 0
  EXPECT_FLOAT_EQ(a.matrix[1], 1.5f);    // log1p -> 2, standardize -> 2, clip -> 1.5
  EXPECT_FLOAT_EQ(a.matrix[2], 1.5f);    // log1p -> 3, standardize -> 4, clip -> 1.5
}

TEST(PreprocessorTest, IntBoolAndStringColumnsAreNumbers) {
  Batch batch = MakeBatch({{"i", DataType::kInt64}, {"b", DataType::kBool},
                           {"s", DataType::kString}, {"f", DataType::kFloat32}});
  batch.columns[0].AppendInt64(-7);
  batch.columns[1].AppendBool(true);
  batch.columns[2].AppendString(" 2.5e1 ");
  batch.columns[3].AppendFloat32(0.25f);
  batch.columns[0].AppendInt64(int64_t{1} << 40);
  batch.columns[1].AppendBool(false);
  batch.columns[2].AppendString("+3");
  batch.columns[3].AppendFloat32(-1.0f);
  auto p = MustMake({Numeric("i"), Numeric("b"), Numeric("s"), Numeric("f")}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  EXPECT_EQ(a.matrix, (std::vector<float>{-7.0f, 1.0f, 25.0f, 0.25f,
                                          static_cast<float>(int64_t{1} << 40), 0.0f, 3.0f, -1.0f}));
}

// ---- imputation ------------------------------------------------------------

TEST(PreprocessorTest, ImputeKinds) {
  const double kNull = std::numeric_limits<double>::quiet_NaN();
  Batch batch = DoubleBatch({4, kNull});
  FeatureStats mean_stats;
  mean_stats.impute_number = 12.5;
  FeatureStats median_stats;
  median_stats.impute_number = -3;
  FeatureStats mf_stats;
  mf_stats.impute_number = 8;
  Stats stats;
  stats.Set("mean", mean_stats);
  stats.Set("median", median_stats);
  stats.Set("mf", mf_stats);

  auto feature = [](std::string name, ImputeKind kind) {
    FeatureSpec f = Numeric(std::move(name), {}, kind);
    f.column = "x";
    return f;
  };
  FeatureSpec constant = feature("constant", ImputeKind::kConstant);
  constant.impute_number = 35;
  auto p = MustMake({feature("mean", ImputeKind::kMean), feature("median", ImputeKind::kMedian),
                     feature("mf", ImputeKind::kMostFrequent), constant, feature("nan", ImputeKind::kNan)},
                    stats, batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  ASSERT_EQ(a.n_ok, 2u);
  EXPECT_TRUE(a.rejects.empty());
  const std::vector<float> row0(a.matrix.begin(), a.matrix.begin() + 5);
  EXPECT_EQ(row0, (std::vector<float>{4, 4, 4, 4, 4}));
  EXPECT_EQ(a.matrix[5], 12.5f);
  EXPECT_EQ(a.matrix[6], -3.0f);
  EXPECT_EQ(a.matrix[7], 8.0f);
  EXPECT_EQ(a.matrix[8], 35.0f);
  EXPECT_TRUE(std::isnan(a.matrix[9]));
}

TEST(PreprocessorTest, ImputedValueGoesThroughTheTransforms) {
  FeatureStats fs;
  fs.impute_number = 3;
  fs.mean = 1;
  fs.std = 2;
  Batch batch = DoubleBatch({std::numeric_limits<double>::quiet_NaN(), 5});
  auto p = MustMake({Numeric("x", {TransformKind::kStandardize}, ImputeKind::kMedian)},
                    OneFeatureStats("x", fs), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{1.0f, 2.0f}));
}

TEST(PreprocessorTest, ImputeNanSkipsTransforms) {
  FeatureStats fs;
  fs.mean = 1;
  fs.std = 2;
  Batch batch = DoubleBatch({std::numeric_limits<double>::quiet_NaN()});
  auto p = MustMake({Numeric("x", {TransformKind::kLog1p, TransformKind::kStandardize}, ImputeKind::kNan)},
                    OneFeatureStats("x", fs), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  ASSERT_EQ(a.n_ok, 1u);
  EXPECT_TRUE(std::isnan(a.matrix[0]));
}

TEST(PreprocessorTest, NanValueInDataCountsAsNull) {
  Batch batch = MakeBatch({{"x", DataType::kFloat64}, {"y", DataType::kFloat32}});
  batch.columns[0].AppendFloat64(std::numeric_limits<double>::quiet_NaN());  // valid slot, NaN value
  batch.columns[1].AppendFloat32(std::numeric_limits<float>::quiet_NaN());
  FeatureSpec x = Numeric("x", {}, ImputeKind::kConstant);
  x.impute_number = 1;
  FeatureSpec y = Numeric("y", {}, ImputeKind::kConstant);
  y.impute_number = 2;
  auto p = MustMake({x, y}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{1.0f, 2.0f}));

  auto strict = MustMake({Numeric("x")}, Stats(), batch.schema);
  ASSERT_TRUE(strict);
  Applied a = ApplyAll(*strict, batch);
  EXPECT_EQ(a.n_ok, 0u);
  ASSERT_EQ(a.rejects.size(), 1u);
  EXPECT_EQ(a.rejects[0].reason, reject_reason::kMissingValue);
}

// ---- one-hot ---------------------------------------------------------------

Batch StringBatch(const std::string& name, const std::vector<std::optional<std::string>>& values) {
  Batch batch = MakeBatch({{name, DataType::kString}});
  for (const auto& v : values) {
    if (v) {
      batch.columns[0].AppendString(*v);
    } else {
      batch.columns[0].AppendNull();
    }
  }
  return batch;
}

TEST(PreprocessorTest, OneHotKnownUnknownAndNull) {
  Batch batch = StringBatch("merchant", {"grocery", "online", "casino", std::nullopt, "travel"});
  auto p = MustMake({OneHot("merchant", {"grocery", "travel", "online"})}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->num_outputs(), 3u);
  EXPECT_EQ(p->output_names(),
            (std::vector<std::string>{"merchant=grocery", "merchant=travel", "merchant=online"}));
  Applied a = ApplyAll(*p, batch);
  ASSERT_EQ(a.n_ok, 5u);
  EXPECT_TRUE(a.rejects.empty());
  EXPECT_EQ(a.matrix, (std::vector<float>{1, 0, 0,   // grocery
                                          0, 0, 1,   // online
                                          0, 0, 0,   // unknown -> zeros
                                          0, 0, 0,   // null, impute none -> zeros
                                          0, 1, 0}));
}

TEST(PreprocessorTest, OneHotUnknownAsError) {
  Batch batch = StringBatch("merchant", {"grocery", "casino", "travel"});
  batch.row_lines = {2, 3, 4};
  FeatureSpec f = OneHot("merchant", {"grocery", "travel"});
  f.unknown_category_is_error = true;
  auto p = MustMake({f}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch, "data/part-1.csv");
  ASSERT_EQ(a.n_ok, 2u);
  EXPECT_EQ(a.row_ok, (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(a.matrix, (std::vector<float>{1, 0, 0, 1}));
  ASSERT_EQ(a.rejects.size(), 1u);
  const Reject& r = a.rejects[0];
  EXPECT_EQ(r.file, "data/part-1.csv");
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.column, "merchant");
  EXPECT_EQ(r.value, "casino");
  EXPECT_EQ(r.reason, reject_reason::kUnknownCategory);
  EXPECT_EQ(r.message, "features[0] (merchant): unknown category 'casino' in column 'merchant'");
}

TEST(PreprocessorTest, OneHotImputation) {
  Batch batch = StringBatch("m", {std::nullopt, "b"});
  FeatureStats fs;
  fs.impute_string = "c";
  FeatureSpec mf = OneHot("m", {"a", "b", "c"}, ImputeKind::kMostFrequent);
  FeatureSpec constant = OneHot("m2", {"a", "b", "c"}, ImputeKind::kConstant);
  constant.column = "m";
  constant.impute_string = "a";
  FeatureSpec nan = OneHot("m3", {"a", "b"}, ImputeKind::kNan);
  nan.column = "m";
  auto p = MustMake({mf, constant, nan}, OneFeatureStats("m", fs), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  ASSERT_EQ(a.n_ok, 2u);
  ASSERT_EQ(a.matrix.size(), 16u);
  const std::vector<float> row0(a.matrix.begin(), a.matrix.begin() + 6);
  EXPECT_EQ(row0, (std::vector<float>{0, 0, 1, 1, 0, 0}));
  EXPECT_TRUE(std::isnan(a.matrix[6]));
  EXPECT_TRUE(std::isnan(a.matrix[7]));
  const std::vector<float> row1(a.matrix.begin() + 8, a.matrix.end());
  EXPECT_EQ(row1, (std::vector<float>{0, 1, 0, 0, 1, 0, 0, 1}));
}

TEST(PreprocessorTest, OneHotOnNumericColumnsComparesText) {
  Batch batch = MakeBatch({{"i", DataType::kInt64}, {"f", DataType::kFloat64}, {"b", DataType::kBool}});
  batch.columns[0].AppendInt64(10);
  batch.columns[1].AppendFloat64(2.5);
  batch.columns[2].AppendBool(true);
  batch.columns[0].AppendInt64(7);
  batch.columns[1].AppendFloat64(3.0);
  batch.columns[2].AppendBool(false);
  auto p = MustMake({OneHot("i", {"1", "2", "10"}), OneHot("f", {"2.5", "3"}), OneHot("b", {"true", "false"})},
                    Stats(), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{0, 0, 1, 1, 0, 1, 0,  //
                                                       0, 0, 0, 0, 1, 0, 1}));
}

TEST(PreprocessorTest, OneHotMostFrequentFromNumericStats) {
  Batch batch = MakeBatch({{"i", DataType::kInt64}});
  batch.columns[0].AppendNull();
  FeatureStats fs;
  fs.impute_number = 2;
  auto p = MustMake({OneHot("i", {"1", "2"}, ImputeKind::kMostFrequent)}, OneFeatureStats("i", fs),
                    batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{0, 1}));
}

// ---- datetime --------------------------------------------------------------

// ---- text features ---------------------------------------------------------

// Column "m" (string, with nulls) and column "x" (float64).
Batch TextBatch(const std::vector<std::optional<std::string>>& m, const std::vector<double>& x) {
  Batch batch = MakeBatch({{"m", DataType::kString}, {"x", DataType::kFloat64}});
  for (const auto& v : m) {
    if (v) {
      batch.columns[0].AppendString(*v);
    } else {
      batch.columns[0].AppendNull();
    }
  }
  for (double v : x) batch.columns[1].AppendFloat64(v);
  return batch;
}

FeatureSpec Text(std::string name, ImputeKind impute = ImputeKind::kNone) {
  FeatureSpec f;
  f.name = std::move(name);
  f.impute = impute;
  return f;
}

std::vector<std::string> Strings(const Column& col) {
  std::vector<std::string> out;
  for (size_t i = 0; i < col.size(); ++i) out.emplace_back(col.StringAt(i));
  return out;
}

TEST(PreprocessorTest, TextFeatureKeepsTheStringAndImputesConstant) {
  Batch batch = TextBatch({"grocery", std::nullopt, "casino"}, {1.5, 2.5, 3.5});
  FeatureSpec m = Text("m", ImputeKind::kConstant);
  m.impute_string = "travel";
  m.impute_number_ok = false;  // as the config reads {constant: travel}
  Result<std::unique_ptr<Preprocessor>> r = Preprocessor::Make({m, Numeric("x")}, Stats(), batch.schema, {0});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Preprocessor& p = **r;
  EXPECT_TRUE(p.has_text_features());
  std::vector<float> matrix;
  std::vector<uint8_t> row_ok;
  std::vector<Column> text;
  CollectingRejects rejects;
  ASSERT_EQ(p.Apply(batch, "in.csv", &matrix, &row_ok, &rejects, &text), 3u);
  EXPECT_TRUE(rejects.rejects.empty());
  ASSERT_EQ(matrix.size(), 6u);
  for (size_t row_idx = 0; row_idx < 3; ++row_idx) {
    EXPECT_TRUE(std::isnan(matrix[row_idx * 2]));
    EXPECT_EQ(matrix[row_idx * 2 + 1], static_cast<float>(1.5 + row_idx));
  }
  ASSERT_EQ(text.size(), 2u);
  EXPECT_EQ(Strings(text[0]), (std::vector<std::string>{"grocery", "travel", "casino"}));
  EXPECT_EQ(text[1].size(), 0u);

  // The text columns are reused: a second call replaces their contents.
  Batch second = TextBatch({"fuel"}, {7});
  ASSERT_EQ(p.Apply(second, "in.csv", &matrix, &row_ok, &rejects, &text), 1u);
  EXPECT_EQ(Strings(text[0]), (std::vector<std::string>{"fuel"}));
}

TEST(PreprocessorTest, TextFeatureImputesMostFrequentAndRejectsNullWithoutImpute) {
  Batch batch = TextBatch({std::nullopt, "a", "b"}, {1, 2, 3});
  FeatureStats fs;
  fs.impute_string = "z";
  auto mf = Preprocessor::Make({Text("m", ImputeKind::kMostFrequent), Numeric("x")}, OneFeatureStats("m", fs),
                               batch.schema, {0});
  ASSERT_TRUE(mf.ok()) << mf.status().ToString();
  std::vector<float> matrix;
  std::vector<uint8_t> row_ok;
  std::vector<Column> text;
  ASSERT_EQ((*mf)->Apply(batch, "in.csv", &matrix, &row_ok, nullptr, &text), 3u);
  EXPECT_EQ(Strings(text[0]), (std::vector<std::string>{"z", "a", "b"}));

  auto none = Preprocessor::Make({Text("m"), Numeric("x")}, Stats(), batch.schema, {0});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  CollectingRejects rejects;
  ASSERT_EQ((*none)->Apply(batch, "in.csv", &matrix, &row_ok, &rejects, &text), 2u);
  EXPECT_EQ(row_ok, (std::vector<uint8_t>{0, 1, 1}));
  ASSERT_EQ(rejects.rejects.size(), 1u);
  EXPECT_EQ(rejects.rejects[0].reason, reject_reason::kMissingValue);
  EXPECT_EQ(rejects.rejects[0].column, "m");
  EXPECT_EQ(Strings(text[0]), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(matrix.size(), 4u);
  EXPECT_EQ(matrix[1], 2.0f);
  EXPECT_EQ(matrix[3], 3.0f);
}

TEST(PreprocessorTest, TextFeatureMakeErrors) {
  Batch batch = TextBatch({"a"}, {1});
  auto error = [&](const std::vector<FeatureSpec>& features, const Stats& stats = Stats()) {
    Result<std::unique_ptr<Preprocessor>> r = Preprocessor::Make(features, stats, batch.schema, {0});
    EXPECT_FALSE(r.ok());
    if (r.ok()) return std::string();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    return r.status().message();
  };
  FeatureSpec with_transform = Text("m");
  with_transform.transforms.emplace_back().kind = TransformKind::kLog1p;
  EXPECT_EQ(error({with_transform}),
            "features[0] (m): the model takes this feature as text; it cannot have one_hot, transforms or datetime");
  EXPECT_EQ(error({OneHot("m", {"a"})}),
            "features[0] (m): the model takes this feature as text; it cannot have one_hot, transforms or datetime");
  FeatureSpec numeric_column = Text("x");
  EXPECT_EQ(error({numeric_column}),
            "features[0] (x): the model takes this feature as text, but column 'x' is float64");
  EXPECT_EQ(error({Text("m", ImputeKind::kMean)}),
            "features[0] (m): the model takes this feature as text; impute: mean does not apply "
            "(use none, most_frequent or {constant: …})");
  EXPECT_EQ(error({Text("m", ImputeKind::kMostFrequent)}),
            "features[0] (m): stats have no 'impute' string for impute: most_frequent");
  // The same feature, not taken as text, needs a numeric constant.
  FeatureSpec constant = Text("m", ImputeKind::kConstant);
  constant.impute_string = "travel";
  constant.impute_number_ok = false;
  EXPECT_EQ(MakeError({constant}, Stats(), batch.schema), "features[0] (m): impute constant 'travel' is not a number");
}

TEST(PreprocessorTest, DatetimeParts) {
  Batch batch = MakeBatch({{"ts", DataType::kTimestamp}});
  const int64_t kMicros = 1'000'000;
  batch.columns[0].AppendInt64(1710078330 * kMicros + 250'000);  // 2024-03-10T13:45:30.25Z, Sunday
  batch.columns[0].AppendInt64(951782400 * kMicros);              // 2000-02-29T00:00:00Z, Tuesday
  batch.columns[0].AppendInt64(-3600 * kMicros);                  // 1969-12-31T23:00:00Z, Wednesday
  batch.columns[0].AppendInt64(-1);                               // 1969-12-31T23:59:59.999999Z
  batch.columns[0].AppendInt64(-2208970800 * kMicros);            // 1900-01-01T05:00:00Z, Monday
  std::vector<FeatureSpec> features;
  const std::pair<const char*, DatetimePart> parts[] = {
      {"hour", DatetimePart::kHour},   {"dow", DatetimePart::kDayOfWeek}, {"day", DatetimePart::kDay},
      {"month", DatetimePart::kMonth}, {"year", DatetimePart::kYear},     {"epoch", DatetimePart::kEpoch}};
  for (const auto& [name, part] : parts) {
    FeatureSpec f;
    f.name = name;
    f.column = "ts";
    f.datetime = part;
    features.push_back(f);
  }
  auto p = MustMake(features, Stats(), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  ASSERT_EQ(a.n_ok, 5u);
  EXPECT_EQ(a.matrix, (std::vector<float>{13, 6, 10, 3, 2024, 1710078330.0f,  //
                                          0, 1, 29, 2, 2000, 951782400.0f,    //
                                          23, 2, 31, 12, 1969, -3600.0f,      //
                                          23, 2, 31, 12, 1969, -1.0f,         //
                                          5, 0, 1, 1, 1900, -2208970800.0f}));
}

TEST(PreprocessorTest, DatetimePartsOfDates) {
  Batch batch = MakeBatch({{"day", DataType::kDate}});
  batch.columns[0].AppendInt64(int64_t{19792} * 86400 * 1'000'000);  // 2024-03-10, Sunday
  batch.columns[0].AppendNull();
  FeatureSpec dow;
  dow.name = "dow";
  dow.column = "day";
  dow.datetime = DatetimePart::kDayOfWeek;
  dow.impute = ImputeKind::kNan;
  FeatureSpec month = dow;
  month.name = "month";
  month.datetime = DatetimePart::kMonth;
  auto p = MustMake({dow, month}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  ASSERT_EQ(a.n_ok, 2u);
  EXPECT_EQ(a.matrix[0], 6);
  EXPECT_EQ(a.matrix[1], 3);
  EXPECT_TRUE(std::isnan(a.matrix[2]));
  EXPECT_EQ(MakeError({Numeric("day")}, Stats(), batch.schema),
            "features[0] (day): date column 'day' needs a datetime part (hour, dow, day, month, year, epoch)");
}

TEST(PreprocessorTest, DatetimePartCanBeOneHot) {
  Batch batch = MakeBatch({{"ts", DataType::kTimestamp}});
  batch.columns[0].AppendInt64(int64_t{1710078330} * 1'000'000);  // Sunday -> 6
  FeatureSpec f = OneHot("weekend", {"5", "6"});
  f.column = "ts";
  f.datetime = DatetimePart::kDayOfWeek;
  auto p = MustMake({f}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(ApplyAll(*p, batch).matrix, (std::vector<float>{0, 1}));
}

// ---- rejects and compaction -------------------------------------------------

TEST(PreprocessorTest, RejectReasonsLinesAndCompactedMatrix) {
  Batch batch = MakeBatch({{"id", DataType::kInt64}, {"amount", DataType::kString},
                           {"merchant", DataType::kString}});
  batch.row_lines = {2, 3, 4, 5, 6, 8};
  auto add = [&](int64_t id, std::optional<std::string> amount, std::string merchant) {
    batch.columns[0].AppendInt64(id);
    if (amount) {
      batch.columns[1].AppendString(*amount);
    } else {
      batch.columns[1].AppendNull();
    }
    batch.columns[2].AppendString(merchant);
  };
  add(1, "3", "a");
  add(2, "abc", "a");      // bad_value
  add(3, "-2", "b");       // log1p(-2): invalid_feature
  add(4, std::nullopt, "a");  // missing_value
  add(5, "0", "zzz");     // unknown_category
  add(6, "1", "b");

  FeatureSpec amount = Numeric("amount", {TransformKind::kLog1p});
  FeatureSpec merchant = OneHot("merchant", {"a", "b"});
  merchant.unknown_category_is_error = true;
  auto p = MustMake({Numeric("id"), amount, merchant}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->input_columns(), (std::vector<std::string>{"id", "amount", "merchant"}));
  Applied a = ApplyAll(*p, batch, "tx.csv");
  EXPECT_EQ(a.n_ok, 2u);
  EXPECT_EQ(a.row_ok, (std::vector<uint8_t>{1, 0, 0, 0, 0, 1}));
  ASSERT_EQ(a.matrix.size(), 8u);
  EXPECT_EQ(a.matrix[0], 1.0f);
  EXPECT_FLOAT_EQ(a.matrix[1], static_cast<float>(std::log(4.0)));
  EXPECT_EQ(a.matrix[2], 1.0f);
  EXPECT_EQ(a.matrix[3], 0.0f);
  EXPECT_EQ(a.matrix[4], 6.0f);
  EXPECT_FLOAT_EQ(a.matrix[5], static_cast<float>(std::log(2.0)));
  EXPECT_EQ(a.matrix[6], 0.0f);
  EXPECT_EQ(a.matrix[7], 1.0f);

  ASSERT_EQ(a.rejects.size(), 4u);
  // Reported per feature, in feature order: amount's rows first, then merchant's.
  EXPECT_EQ(a.rejects[0].reason, reject_reason::kBadValue);
  EXPECT_EQ(a.rejects[0].line, 3);
  EXPECT_EQ(a.rejects[0].column, "amount");
  EXPECT_EQ(a.rejects[0].value, "abc");
  EXPECT_EQ(a.rejects[0].file, "tx.csv");
  EXPECT_EQ(a.rejects[0].message, "features[1] (amount): value 'abc' in column 'amount' is not a number");
  EXPECT_EQ(a.rejects[1].reason, reject_reason::kInvalidFeature);
  EXPECT_EQ(a.rejects[1].line, 4);
  EXPECT_EQ(a.rejects[1].value, "-2");
  EXPECT_EQ(a.rejects[1].message, "features[1] (amount): log1p of -2 (needs a value > -1)");
  EXPECT_EQ(a.rejects[2].reason, reject_reason::kMissingValue);
  EXPECT_EQ(a.rejects[2].line, 5);
  EXPECT_EQ(a.rejects[2].value, "");
  EXPECT_EQ(a.rejects[2].message, "features[1] (amount): null in column 'amount' and impute is none");
  EXPECT_EQ(a.rejects[3].reason, reject_reason::kUnknownCategory);
  EXPECT_EQ(a.rejects[3].line, 6);
  EXPECT_EQ(a.rejects[3].column, "merchant");
  for (const Reject& r : a.rejects) EXPECT_EQ(r.message.find('\n'), std::string::npos);
}

TEST(PreprocessorTest, RowFailingSeveralFeaturesIsReportedOnce) {
  Batch batch = MakeBatch({{"a", DataType::kFloat64}, {"b", DataType::kFloat64}});
  batch.columns[0].AppendNull();
  batch.columns[1].AppendNull();
  auto p = MustMake({Numeric("a"), Numeric("b")}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  EXPECT_EQ(a.n_ok, 0u);
  ASSERT_EQ(a.rejects.size(), 1u);
  EXPECT_EQ(a.rejects[0].column, "a");
  EXPECT_EQ(a.rejects[0].line, 0);  // no row_lines
}

TEST(PreprocessorTest, NonFiniteResultIsInvalidFeature) {
  Batch batch = DoubleBatch({1e300, -1, std::numeric_limits<double>::infinity(), 2});
  FeatureSpec plain = Numeric("x");
  auto p = MustMake({plain}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  Applied a = ApplyAll(*p, batch);
  EXPECT_EQ(a.row_ok, (std::vector<uint8_t>{0, 1, 0, 1}));
  EXPECT_EQ(a.matrix, (std::vector<float>{-1.0f, 2.0f}));
  ASSERT_EQ(a.rejects.size(), 2u);
  EXPECT_EQ(a.rejects[0].reason, reject_reason::kInvalidFeature);
  EXPECT_EQ(a.rejects[0].value, "1e+300");
  EXPECT_EQ(a.rejects[1].reason, reject_reason::kInvalidFeature);

  // log1p(-1) = -inf is outside the domain too.
  auto log = MustMake({Numeric("x", {TransformKind::kLog1p})}, Stats(), batch.schema);
  ASSERT_TRUE(log);
  Applied b = ApplyAll(*log, batch);
  EXPECT_EQ(b.row_ok, (std::vector<uint8_t>{1, 0, 0, 1}));

  // A clip can bring an infinity back into range.
  FeatureSpec clipped = Numeric("x");
  TransformSpec clip;
  clip.kind = TransformKind::kClip;
  clip.clip_max = 100;
  clipped.transforms.push_back(clip);
  auto c = MustMake({clipped}, Stats(), batch.schema);
  ASSERT_TRUE(c);
  EXPECT_EQ(ApplyAll(*c, batch).matrix, (std::vector<float>{100, -1, 100, 2}));
}

TEST(PreprocessorTest, ColumnMissingFromBatchRejectsEveryRow) {
  Batch schema_batch = DoubleBatch({});
  auto p = MustMake({Numeric("x")}, Stats(), schema_batch.schema);
  ASSERT_TRUE(p);
  Batch other = MakeBatch({{"y", DataType::kFloat64}});
  other.columns[0].AppendFloat64(1);
  other.columns[0].AppendFloat64(2);
  Applied a = ApplyAll(*p, other);
  EXPECT_EQ(a.n_ok, 0u);
  ASSERT_EQ(a.rejects.size(), 2u);
  EXPECT_EQ(a.rejects[0].reason, reject_reason::kMissingValue);
}

TEST(PreprocessorTest, ColumnsFoundByNameInAProjectedBatch) {
  Schema file_schema({{"id", DataType::kInt64}, {"x", DataType::kFloat64}});
  auto p = MustMake({Numeric("x")}, Stats(), file_schema);
  ASSERT_TRUE(p);
  Batch projected = DoubleBatch({4, 5});  // only "x", at index 0
  EXPECT_EQ(ApplyAll(*p, projected).matrix, (std::vector<float>{4, 5}));
}

TEST(PreprocessorTest, EmptyBatch) {
  Batch batch = DoubleBatch({});
  auto p = MustMake({Numeric("x")}, Stats(), batch.schema);
  ASSERT_TRUE(p);
  std::vector<float> matrix = {1, 2, 3};
  std::vector<uint8_t> row_ok = {1};
  EXPECT_EQ(p->Apply(batch, "f", &matrix, &row_ok, nullptr), 0u);
  EXPECT_TRUE(matrix.empty());
  EXPECT_TRUE(row_ok.empty());
}

TEST(PreprocessorTest, ConcurrentApplyGivesTheSameResult) {
  std::vector<double> values;
  for (int i = 0; i < 5000; ++i) values.push_back(i % 7 == 0 ? -5.0 : i * 0.5);
  Batch batch = DoubleBatch(values);
  FeatureStats fs;
  fs.mean = 3;
  fs.std = 2;
  auto p = MustMake({Numeric("x", {TransformKind::kLog1p, TransformKind::kStandardize})},
                    OneFeatureStats("x", fs), batch.schema);
  ASSERT_TRUE(p);
  const Applied expected = ApplyAll(*p, batch);
  std::vector<Applied> got(4);
  std::vector<std::thread> threads;
  for (Applied& g : got) {
    threads.emplace_back([&p, &batch, &g] {
      for (int rep = 0; rep < 5; ++rep) g.n_ok = p->Apply(batch, "f", &g.matrix, &g.row_ok, nullptr);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const Applied& g : got) {
    EXPECT_EQ(g.n_ok, expected.n_ok);
    EXPECT_EQ(g.matrix, expected.matrix);
    EXPECT_EQ(g.row_ok, expected.row_ok);
  }
}

// Apply takes rows in blocks, and a float64 block whose values are all plain
// (present, and finite float32s after the transforms) in one vectorized pass.
// Blocks that are not plain go value by value. Both must give what the
// transforms give value by value, and the same rejects.
TEST(PreprocessorTest, PlainAndOtherBlocksGiveTheSameValuesAndRejects) {
  constexpr size_t kRows = 1000;  // blocks of 256: three whole ones and a partial
  Batch batch = MakeBatch({{"a", DataType::kFloat64}, {"b", DataType::kFloat64}});
  batch.row_lines.resize(kRows);
  for (size_t i = 0; i < kRows; ++i) {
    batch.row_lines[i] = static_cast<int64_t>(i + 2);
    // a: rejects row 300 (null, impute none); b's plain block writes a value for
    // that row too, and the row is dropped all the same.
    if (i == 300) {
      batch.columns[0].AppendNull();
    } else {
      batch.columns[0].AppendFloat64(static_cast<double>(i) * 0.37 - 100.0);
    }
    // b: its third block has a NaN (imputed), its fourth a value that overflows
    // float32 after the transforms (rejected); its first block is plain.
    if (i == 600) {
      batch.columns[1].AppendFloat64(std::numeric_limits<double>::quiet_NaN());
    } else if (i == 900) {
      batch.columns[1].AppendFloat64(1e300);
    } else {
      batch.columns[1].AppendFloat64(std::sin(static_cast<double>(i)) * 1e3);
    }
  }
  FeatureStats fa;
  fa.mean = 3.25;
  fa.std = 7.1;
  FeatureStats fb;
  fb.mean = -0.5;
  fb.std = 0.3;
  Stats stats;
  stats.Set("a", fa);
  stats.Set("b", fb);
  FeatureSpec a = Numeric("a", {TransformKind::kStandardize});
  FeatureSpec b = Numeric("b", {TransformKind::kStandardize}, ImputeKind::kConstant);
  b.impute_number = 1.0;
  TransformSpec clip;
  clip.kind = TransformKind::kClip;
  clip.clip_min = -2000;
  b.transforms.push_back(clip);
  auto p = MustMake({a, b}, stats, batch.schema);
  ASSERT_TRUE(p);
  Applied got = ApplyAll(*p, batch);

  std::vector<float> expected;
  for (size_t i = 0; i < kRows; ++i) {
    if (i == 300 || i == 900) continue;
    const double x = static_cast<double>(i) * 0.37 - 100.0;
    expected.push_back(static_cast<float>((x - 3.25) / 7.1));
    const double y = i == 600 ? 1.0 : std::sin(static_cast<double>(i)) * 1e3;
    expected.push_back(static_cast<float>(std::max(-2000.0, (y + 0.5) / 0.3)));
  }
  EXPECT_EQ(got.n_ok, kRows - 2);
  EXPECT_EQ(got.matrix, expected);
  for (size_t i = 0; i < kRows; ++i) EXPECT_EQ(got.row_ok[i], (i == 300 || i == 900) ? 0 : 1) << i;
  ASSERT_EQ(got.rejects.size(), 2u);
  EXPECT_EQ(got.rejects[0].line, 302);
  EXPECT_EQ(got.rejects[0].column, "a");
  EXPECT_EQ(got.rejects[0].reason, reject_reason::kMissingValue);
  EXPECT_EQ(got.rejects[1].line, 902);
  EXPECT_EQ(got.rejects[1].column, "b");
  EXPECT_EQ(got.rejects[1].reason, reject_reason::kInvalidFeature);
}

// ---- Make errors -----------------------------------------------------------

TEST(PreprocessorTest, MakeErrorsNameTheFeature) {
  Schema schema({{"id", DataType::kInt64}, {"x", DataType::kFloat64}, {"y", DataType::kFloat64},
                 {"ts", DataType::kString}, {"when", DataType::kTimestamp}});
  Schema small({{"id", DataType::kInt64}, {"x", DataType::kFloat64}, {"y", DataType::kFloat64}});

  EXPECT_EQ(MakeError({Numeric("amount")}, Stats(), small),
            "features[0] (amount): no input column 'amount' (columns: id, x, y)");

  EXPECT_EQ(MakeError({Numeric("x"), Numeric("y"), Numeric("amount_x", {}, ImputeKind::kMedian)}, Stats(),
                      small)
                .find("features[2] (amount_x): no input column"),
            0u);
  FeatureSpec median = Numeric("amount", {}, ImputeKind::kMedian);
  median.column = "x";
  EXPECT_EQ(MakeError({Numeric("x"), Numeric("y"), median}, Stats(), small),
            "features[2] (amount): stats have no 'impute' value for impute: median");

  FeatureSpec hour;
  hour.name = "hour";
  hour.column = "ts";
  hour.datetime = DatetimePart::kHour;
  EXPECT_EQ(MakeError({Numeric("id"), Numeric("x"), Numeric("y"), hour}, Stats(), schema),
            "features[3] (hour): datetime needs a timestamp or date column, 'ts' is string");

  EXPECT_EQ(MakeError({Numeric("when")}, Stats(), schema),
            "features[0] (when): timestamp column 'when' needs a datetime part (hour, dow, day, month, "
            "year, epoch)");

  EXPECT_EQ(MakeError({Numeric("x", {TransformKind::kStandardize})}, Stats(), schema),
            "features[0] (x): stats have no 'standardize' values (mean, std) for transform standardize");
  FeatureStats only_mean;
  only_mean.mean = 1;
  EXPECT_EQ(MakeError({Numeric("x", {TransformKind::kStandardize})}, OneFeatureStats("x", only_mean), schema),
            "features[0] (x): stats have no 'standardize' values (mean, std) for transform standardize");
  EXPECT_EQ(MakeError({Numeric("x", {TransformKind::kMinMax})}, Stats(), schema),
            "features[0] (x): stats have no 'minmax' values (min, max) for transform minmax");

  EXPECT_EQ(MakeError({Numeric("x", {TransformKind::kStandardize, TransformKind::kLog1p,
                                     TransformKind::kStandardize})},
                      Stats(), schema, StatusCode::kNotSupported),
            "features[0] (x): transform standardize appears twice; a feature may use each of standardize "
            "and minmax at most once");

  FeatureSpec neg = Numeric("x", {TransformKind::kLog1p}, ImputeKind::kConstant);
  neg.impute_number = -5;
  EXPECT_EQ(MakeError({neg}, Stats(), schema),
            "features[0] (x): impute: constant value -5 is outside the domain of transform log1p");

  FeatureStats string_impute;
  string_impute.impute_string = "abc";
  EXPECT_EQ(MakeError({Numeric("x", {}, ImputeKind::kMean)}, OneFeatureStats("x", string_impute), schema),
            "features[0] (x): stats 'impute' value is the string 'abc'; a numeric feature needs a number");

  EXPECT_EQ(MakeError({OneHot("x", {"a"}, ImputeKind::kMean)}, Stats(), schema),
            "features[0] (x): impute: mean needs a numeric feature; a one_hot feature takes none, nan, "
            "most_frequent or constant");
  EXPECT_EQ(MakeError({OneHot("x", {"a", "b", "a"})}, Stats(), schema),
            "features[0] (x): one_hot: duplicate category 'a'");
  FeatureSpec strict = OneHot("x", {"a", "b"}, ImputeKind::kConstant);
  strict.impute_string = "c";
  strict.unknown_category_is_error = true;
  EXPECT_EQ(MakeError({strict}, Stats(), schema),
            "features[0] (x): impute: constant value 'c' is not one of the categories, and unknown "
            "categories are errors");
  EXPECT_EQ(MakeError({OneHot("x", {"a"}, ImputeKind::kMostFrequent)}, Stats(), schema),
            "features[0] (x): stats have no 'impute' value for impute: most_frequent");
  EXPECT_EQ(MakeError({Numeric("x"), Numeric("x")}, Stats(), schema),
            "features[1] (x): duplicate feature name");
}

}  // namespace
}  // namespace sluice
