// PrepareJob's model preload: the model loads while the input is planned, and
// the job keeps it only when the plan's thread split is the one it was loaded with.
#include "exec/job_context.h"

#include <gtest/gtest.h>
#include <tbb/info.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <vector>

#include "exec/test_util.h"
#include "sluice/job.h"
#include "sluice/model.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

class JobContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sluice_job_context_test_");
    ASSERT_FALSE(dir_.empty());
    WriteLinearJobFiles(dir_, 2000);  // about 20 KB
    std::ofstream(dir_ + "/job.yaml") << R"(
input: {path: data.csv}
partition: {target_bytes: 1KiB}
features: [{name: x1}, {name: x2}]
model: {path: model.json, kind: recording}
output: {path: out, keys: [id]}
)";
    RegisterBuiltinModels(&builtin_);
    // The linear backend, recording the intra-op threads of every load.
    ASSERT_TRUE(registry_
                    .Register(
                        "recording", [](std::string_view path, std::string_view) { return path.ends_with(".json"); },
                        [this](Env* env, const ModelOptions& options) {
                          {
                            std::lock_guard<std::mutex> lock(mu_);
                            threads_.push_back(options.threads);
                          }
                          return builtin_.Load(env, "linear", options);
                        })
                    .ok());
  }

  void TearDown() override { fs::remove_all(dir_); }

  Result<std::unique_ptr<JobContext>> Prepare(const std::vector<std::string>& overrides) {
    Result<JobSpec> spec = LoadJobSpec(Env::Default(), dir_ + "/job.yaml", overrides);
    if (!spec.ok()) return spec.status();
    RunOptions options;
    options.models = &registry_;
    return PrepareJob(*spec, Env::Default(), options);
  }

  std::vector<int> Loads() {
    std::lock_guard<std::mutex> lock(mu_);
    return threads_;
  }

  std::string dir_;
  ModelRegistry builtin_;
  ModelRegistry registry_;
  std::mutex mu_;
  std::vector<int> threads_;  // guarded by mu_
};

TEST_F(JobContextTest, PreloadedModelIsKeptWhenThePlanHasUnitsForEveryWorker) {
  Result<std::unique_ptr<JobContext>> ctx = Prepare({"execution.workers=2"});
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_GT((*ctx)->plan.units.size(), 2u);
  EXPECT_EQ((*ctx)->workers, 2);
  EXPECT_EQ(Loads(), std::vector<int>{(*ctx)->model_threads});
  EXPECT_EQ((*ctx)->models->loads(), 1);
  EXPECT_TRUE((*ctx)->bound);
}

TEST_F(JobContextTest, PlanWithFewerUnitsThanWorkersLoadsTheModelWithItsOwnSplit) {
  const int cores = std::max(1, tbb::info::default_concurrency());
  // model.threads auto and one unit: one worker, with every core for the model;
  // the preload assumed 4 workers.
  Result<std::unique_ptr<JobContext>> ctx =
      Prepare({"execution.workers=4", "model.threads=auto", "partition.target_bytes=1GiB"});
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  ASSERT_EQ((*ctx)->plan.units.size(), 1u);
  EXPECT_EQ((*ctx)->workers, 1);
  EXPECT_EQ((*ctx)->model_threads, cores);
  const std::vector<int> loads = Loads();
  ASSERT_FALSE(loads.empty());
  EXPECT_EQ(loads.front(), std::max(1, cores / 4));
  EXPECT_EQ(loads.back(), cores);
  EXPECT_EQ(loads.size(), cores / 4 == cores ? 1u : 2u);  // one core: both splits are 1 thread
  EXPECT_EQ((*ctx)->models->loads(), 1);
}

TEST_F(JobContextTest, InputErrorComesFirstAndWaitsForThePreload) {
  std::ofstream(dir_ + "/model.json") << "{not a model";
  Result<std::unique_ptr<JobContext>> ctx = Prepare({"input.path=missing.csv"});
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("input.path"), std::string::npos) << ctx.status().ToString();
}

TEST_F(JobContextTest, LazyModelIsNotPreloaded) {
  Result<std::unique_ptr<JobContext>> ctx = Prepare({"model.load=lazy"});
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_TRUE(Loads().empty());
  EXPECT_FALSE((*ctx)->bound);
}

}  // namespace
}  // namespace sluice
