// fit-stats' score reference and the preflight of score alerts.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "exec/job_context.h"
#include "exec/test_util.h"
#include "sluice/job.h"
#include "sluice/model.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr char kDrift[] = "monitoring.alerts=[{name: drift, when: 'score_psi > 0.2'}]";

class FitStatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sluice_fit_stats_test_");
    ASSERT_FALSE(dir_.empty());
    rows_ = WriteLinearJobFiles(dir_, 3000);  // rows with x2 "bad" are neither fitted nor scored
    std::ofstream(dir_ + "/job.yaml") << R"(
input: {path: data.csv, schema: {x2: float64}}
features: [{name: x1, transform: [standardize]}, {name: x2}]
stats: stats.json
model: {path: model.json, outputs: {score: probability}}
output: {path: out, keys: [id]}
)";
    RegisterBuiltinModels(&registry_);
  }

  void TearDown() override { fs::remove_all(dir_); }

  JobSpec Spec(std::vector<std::string> overrides = {}) {
    Result<JobSpec> spec = LoadJobSpec(Env::Default(), dir_ + "/job.yaml", overrides);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return *spec;
  }

  Result<Stats> Fit(const JobSpec& spec, bool scores, FitStatsReport* report = nullptr) {
    FitStatsOptions options;
    options.scores = scores;
    options.models = &registry_;
    Result<FitStatsReport> r = FitStats(spec, Env::Default(), dir_ + "/stats.json", options);
    if (!r.ok()) return r.status();
    if (report != nullptr) *report = *r;
    Result<std::string> text = ReadFileToString(Env::Default(), dir_ + "/stats.json");
    if (!text.ok()) return text.status();
    return Stats::Parse(*text, "stats.json");
  }

  Result<std::unique_ptr<JobContext>> Prepare(const JobSpec& spec) {
    RunOptions options;
    options.models = &registry_;
    return PrepareJob(spec, Env::Default(), options);
  }

  std::string dir_;
  ModelRegistry registry_;
  std::vector<std::pair<double, double>> rows_;  // (x1, x2) of the readable rows
};

TEST_F(FitStatsTest, ScoresAreTheDecilesOfTheModelsPredictions) {
  FitStatsReport report;
  Result<Stats> stats = Fit(Spec(), /*scores=*/true, &report);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(report.score_column, "score");
  EXPECT_EQ(report.scores, static_cast<int64_t>(rows_.size()));
  // The model scores the features prepared with the statistics just fitted.
  const FeatureStats* x1 = stats->Find("x1");
  ASSERT_TRUE(x1 != nullptr && x1->mean && x1->std);
  std::vector<double> scores;
  for (const auto& [a, b] : rows_) {
    const double z = (a - *x1->mean) / *x1->std;
    scores.push_back(static_cast<float>(1 / (1 + std::exp(-(0.1 + 0.5 * z - 1.25 * b)))));
  }
  const ScoreReference* ref = stats->FindScores("score");
  ASSERT_NE(ref, nullptr);
  const std::optional<ScoreReference> expected = FitScoreReference("score", scores);
  ASSERT_TRUE(expected.has_value());
  ASSERT_EQ(ref->edges.size(), expected->edges.size());
  for (size_t i = 0; i < ref->edges.size(); ++i) EXPECT_NEAR(ref->edges[i], expected->edges[i], 1e-6) << i;
  ASSERT_EQ(ref->fractions.size(), expected->fractions.size());
  for (size_t i = 0; i < ref->fractions.size(); ++i) EXPECT_NEAR(ref->fractions[i], expected->fractions[i], 1e-3) << i;
}

TEST_F(FitStatsTest, NoScoresUnlessAskedOrWatched) {
  Result<Stats> stats = Fit(Spec(), /*scores=*/false);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_TRUE(stats->scores().empty());
  // A score rule asks for them.
  stats = Fit(Spec({kDrift}), /*scores=*/false);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_NE(stats->FindScores("score"), nullptr);
}

TEST_F(FitStatsTest, ScorePsiWithoutReferenceFailsPreflight) {
  ASSERT_TRUE(Fit(Spec(), /*scores=*/false).ok());
  Result<std::unique_ptr<JobContext>> ctx = Prepare(Spec({kDrift}));
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), StatusCode::kInvalidArgument);
  const std::string& msg = ctx.status().message();
  EXPECT_NE(msg.find("monitoring.alerts[0] ('drift')"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sluice fit-stats"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;

  // Without the rule the same stats are fine, and there is no reference.
  ctx = Prepare(Spec());
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_FALSE((*ctx)->score_reference.has_value());
  ASSERT_TRUE((*ctx)->score_column.has_value());
  EXPECT_EQ((*ctx)->score_column->name, "score");
}

TEST_F(FitStatsTest, FittedReferenceReachesTheJobContext) {
  ASSERT_TRUE(Fit(Spec({kDrift}), /*scores=*/false).ok());
  Result<std::unique_ptr<JobContext>> ctx = Prepare(Spec({kDrift}));
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  ASSERT_TRUE((*ctx)->score_reference.has_value());
  EXPECT_EQ((*ctx)->score_reference->column, "score");
  EXPECT_EQ((*ctx)->score_reference->fractions.size(), (*ctx)->score_reference->edges.size() + 1);
  ASSERT_TRUE((*ctx)->score_column.has_value());
  EXPECT_EQ((*ctx)->score_column->output, 0u);
  EXPECT_EQ((*ctx)->score_column->element, 0u);
}

TEST_F(FitStatsTest, ScoreRuleColumnMustBeAPrediction) {
  ASSERT_TRUE(Fit(Spec(), /*scores=*/false).ok());
  Result<std::unique_ptr<JobContext>> ctx =
      Prepare(Spec({"monitoring.alerts=[{name: mean, when: 'score_mean > 0.9', column: id}]"}));
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().message(),
            "monitoring.alerts[0].column: 'id' is not a prediction column (prediction columns: score)");
}

}  // namespace
}  // namespace sluice
