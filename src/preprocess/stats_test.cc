#include "preprocess/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace sluice {
namespace {

constexpr char kExample[] = R"({"sluice_stats": 1,
  "features": {
    "amount":   {"impute": 12.5, "standardize": {"mean": 2.1, "std": 0.7}, "count": 9000, "nulls": 1000},
    "merchant": {"impute": "grocery"},
    "age":      {"minmax": {"min": 18, "max": 90}}
  }})";

std::string ParseError(std::string_view json) {
  Result<Stats> r = Stats::Parse(json, "stats.json");
  EXPECT_FALSE(r.ok()) << json;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  return r.status().message();
}

TEST(StatsTest, ParsesTheDocumentedExample) {
  Result<Stats> r = Stats::Parse(kExample, "stats.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Stats& stats = *r;
  EXPECT_EQ(stats.FeatureNames(), (std::vector<std::string>{"amount", "merchant", "age"}));

  const FeatureStats* amount = stats.Find("amount");
  ASSERT_NE(amount, nullptr);
  EXPECT_EQ(amount->impute_number, 12.5);
  EXPECT_FALSE(amount->impute_string.has_value());
  EXPECT_EQ(amount->mean, 2.1);
  EXPECT_EQ(amount->std, 0.7);
  EXPECT_FALSE(amount->min.has_value());
  EXPECT_FALSE(amount->max.has_value());
  EXPECT_EQ(amount->count, 9000);
  EXPECT_EQ(amount->nulls, 1000);

  const FeatureStats* merchant = stats.Find("merchant");
  ASSERT_NE(merchant, nullptr);
  EXPECT_EQ(merchant->impute_string, "grocery");
  EXPECT_FALSE(merchant->impute_number.has_value());
  EXPECT_FALSE(merchant->mean.has_value());
  EXPECT_EQ(merchant->count, 0);

  const FeatureStats* age = stats.Find("age");
  ASSERT_NE(age, nullptr);
  EXPECT_EQ(age->min, 18.0);
  EXPECT_EQ(age->max, 90.0);
  EXPECT_FALSE(age->impute_number.has_value());

  EXPECT_EQ(stats.Find("missing"), nullptr);
}

TEST(StatsTest, RoundTripIsExactAndStable) {
  Stats stats;
  FeatureStats a;
  a.impute_number = 0.1;
  a.mean = 1.0 / 3.0;
  a.std = 1e-300;
  a.min = -std::numeric_limits<double>::max();
  a.max = 123456789.123456789;
  a.count = 42;
  a.nulls = 0;
  stats.Set("zeta", a);
  FeatureStats b;
  b.impute_string = "caf\xc3\xa9 \"quoted\"";
  stats.Set("alpha", b);
  FeatureStats c;  // nothing fitted
  stats.Set("middle", c);

  const std::string json = stats.ToJson();
  Result<Stats> back = Stats::Parse(json, "round trip");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << json;
  EXPECT_TRUE(*back == stats) << json;
  // Insertion order is kept, not sorted.
  EXPECT_EQ(back->FeatureNames(), (std::vector<std::string>{"zeta", "alpha", "middle"}));
  EXPECT_EQ(back->ToJson(), json);
  // Fixed key order inside a feature.
  EXPECT_LT(json.find("\"impute\""), json.find("\"standardize\""));
  EXPECT_LT(json.find("\"standardize\""), json.find("\"minmax\""));
  EXPECT_LT(json.find("\"minmax\""), json.find("\"count\""));
}

TEST(StatsTest, ParsedFileRoundTrips) {
  Result<Stats> r = Stats::Parse(kExample, "stats.json");
  ASSERT_TRUE(r.ok());
  Result<Stats> again = Stats::Parse(r->ToJson(), "stats.json");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(*again == *r);
}

TEST(StatsTest, SetReplacesInPlace) {
  Stats stats;
  FeatureStats one;
  one.impute_number = 1;
  stats.Set("x", one);
  stats.Set("y", one);
  FeatureStats two;
  two.impute_number = 2;
  stats.Set("x", two);
  EXPECT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats.FeatureNames(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(stats.Find("x")->impute_number, 2.0);
}

TEST(StatsTest, EmptyFeaturesIsValid) {
  Result<Stats> r = Stats::Parse(R"({"sluice_stats": 1, "features": {}})", "s");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 0u);
}

TEST(StatsTest, ErrorsNameTheKeyPath) {
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"amount": {"standardize": {"mean": 1}}}})"),
            "stats.json: features.amount.standardize: missing 'std'");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"age": {"minmax": {"max": 1}}}})"),
            "stats.json: features.age.minmax: missing 'min'");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": {"standardize": {"mean": "x", "std": 1}}}})"),
            "stats.json: features.a.standardize.mean: expected a number, got string");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": {"standardize": {"mean": 0, "std": -1}}}})"),
            "stats.json: features.a.standardize.std: must be >= 0");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": {"minmax": {"min": 5, "max": 1}}}})"),
            "stats.json: features.a.minmax: min is greater than max");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": {"minmax": {"min": 0, "max": 1, "mid": 2}}}})"),
            "stats.json: features.a.minmax: unknown key 'mid' (expected min, max)");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": {"impute": true}}})"),
            "stats.json: features.a.impute: expected a number or a string, got boolean");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": {"imput": 1}}})"),
            "stats.json: features.a: unknown key 'imput' (expected impute, standardize, minmax, count, "
            "nulls)");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": {"count": -3}}})"),
            "stats.json: features.a.count: expected a non-negative integer, got -3");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": {"nulls": 1.5}}})"),
            "stats.json: features.a.nulls: expected a non-negative integer, got number");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {"a": 3}})"),
            "stats.json: features.a: expected an object, got number");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": []})"),
            "stats.json: features: expected an object, got array");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 2, "features": {}})"),
            "stats.json: sluice_stats: unsupported format version 2 (expected 1)");
  EXPECT_EQ(ParseError(R"({"features": {}})"), "stats.json: missing 'sluice_stats' (format version, 1)");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1})"), "stats.json: missing 'features'");
  EXPECT_EQ(ParseError(R"({"sluice_stats": 1, "features": {}, "extra": 0})"),
            "stats.json: unknown key 'extra' (expected sluice_stats, features, scores)");
  EXPECT_EQ(ParseError("[1, 2]"), "stats.json: expected a JSON object, got array");
}

TEST(StatsTest, InvalidJsonNamesLineAndColumn) {
  const std::string msg = ParseError("{\"sluice_stats\": 1,\n  \"features\": {\"a\": {\"impute\": nope}}}");
  EXPECT_EQ(msg.rfind("stats.json: invalid JSON: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("column"), std::string::npos) << msg;

  const std::string inline_msg = Stats::Parse("", "stats (inline)").status().message();
  EXPECT_EQ(inline_msg.rfind("stats (inline): invalid JSON", 0), 0u) << inline_msg;
}

TEST(StatsTest, OutOfRangeNumberIsRejected) {
  const std::string msg =
      ParseError(R"({"sluice_stats": 1, "features": {"a": {"impute": 1e999}}})");
  EXPECT_NE(msg.find("stats.json"), std::string::npos) << msg;
}

TEST(StatsTest, ScoresSectionParsesAndRoundTrips) {
  Result<Stats> r = Stats::Parse(R"({"sluice_stats": 1, "features": {},
    "scores": {"score": {"edges": [0.2, 0.5], "fractions": [0.25, 0.5, 0.25]}}})",
                                 "stats.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->scores().size(), 1u);
  const ScoreReference* ref = r->FindScores("score");
  ASSERT_NE(ref, nullptr);
  EXPECT_EQ(ref->column, "score");
  EXPECT_EQ(ref->edges, (std::vector<double>{0.2, 0.5}));
  EXPECT_EQ(ref->fractions, (std::vector<double>{0.25, 0.5, 0.25}));
  EXPECT_EQ(r->FindScores("other"), nullptr);

  Result<Stats> again = Stats::Parse(r->ToJson(), "again");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(*again == *r);
  Stats without = *again;
  without.SetScores({"score", {0.3}, {0.5, 0.5}});
  EXPECT_FALSE(without == *r);
  EXPECT_EQ(without.scores().size(), 1u);
  // No scores: no "scores" key, as before.
  EXPECT_EQ(Stats().ToJson().find("scores"), std::string::npos);
}

TEST(StatsTest, ScoresErrorsNameTheKeyPath) {
  auto doc = [](const std::string& scores) {
    return R"({"sluice_stats": 1, "features": {}, "scores": )" + scores + "}";
  };
  EXPECT_EQ(ParseError(doc(R"({"s": {"edges": [0.5, 0.5], "fractions": [0.2, 0.3, 0.5]}})")),
            "stats.json: scores.s.edges: not strictly ascending at index 1");
  EXPECT_EQ(ParseError(doc(R"({"s": {"edges": [0.5], "fractions": [1]}})")),
            "stats.json: scores.s.fractions: expected 2 fractions (one more than edges), got 1");
  EXPECT_NE(ParseError(doc(R"({"s": {"edges": [0.5], "fractions": [0.5, 0.6]}})"))
                .find("stats.json: scores.s.fractions: sum to 1.1"),
            std::string::npos);
  EXPECT_EQ(ParseError(doc(R"({"s": {"edges": [0.5], "fractions": [-0.5, 1.5]}})")),
            "stats.json: scores.s.fractions[0]: must be between 0 and 1");
  EXPECT_EQ(ParseError(doc(R"({"s": {"edges": [0.5]}})")), "stats.json: scores.s: missing 'fractions'");
  EXPECT_EQ(ParseError(doc(R"({"s": {"edges": ["a"], "fractions": [1]}})")),
            "stats.json: scores.s.edges[0]: expected a number, got string");
  EXPECT_EQ(ParseError(doc(R"({"s": {"edges": [], "fractions": [1], "bins": 3}})")),
            "stats.json: scores.s: unknown key 'bins' (expected edges, fractions)");
  EXPECT_EQ(ParseError(doc("[]")), "stats.json: scores: expected an object, got array");
}

TEST(StatsTest, FitScoreReferenceUsesDeciles) {
  // numpy.quantile(np.arange(1, 101), [0.1, …, 0.9]) = 10.9, 20.8, …, 90.1.
  std::vector<double> scores;
  for (int i = 100; i >= 1; --i) scores.push_back(i);
  std::optional<ScoreReference> ref = FitScoreReference("score", scores);
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->column, "score");
  ASSERT_EQ(ref->edges.size(), 9u);
  for (int b = 1; b <= 9; ++b) EXPECT_NEAR(ref->edges[b - 1], 10.0 * b + 1 - 0.1 * b, 1e-9) << b;
  ASSERT_EQ(ref->fractions.size(), 10u);
  for (double f : ref->fractions) EXPECT_DOUBLE_EQ(f, 0.1);
}

TEST(StatsTest, FitScoreReferenceMergesEqualEdges) {
  // numpy.quantile([0, 0, 0, 0, 1], [0.1, …, 0.9]) = 0 (x7), 0.2, 0.6.
  std::optional<ScoreReference> ref = FitScoreReference("p", {0, 1, 0, 0, 0});
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->edges.size(), 3u);
  EXPECT_DOUBLE_EQ(ref->edges[0], 0);
  EXPECT_NEAR(ref->edges[1], 0.2, 1e-12);
  EXPECT_NEAR(ref->edges[2], 0.6, 1e-12);
  EXPECT_EQ(ref->fractions, (std::vector<double>{0.8, 0, 0, 0.2}));
  // The result is a valid stats-file section.
  Stats stats;
  stats.SetScores(*ref);
  EXPECT_TRUE(Stats::Parse(stats.ToJson(), "fitted").ok());
  EXPECT_FALSE(FitScoreReference("p", {}).has_value());
}

}  // namespace
}  // namespace sluice
