#include "model/fake/fake_model.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/env.h"

namespace sluice {
namespace {

// Records sleeps instead of sleeping.
class SleepRecordingEnv : public EnvWrapper {
 public:
  explicit SleepRecordingEnv(Env* target) : EnvWrapper(target) {}
  void SleepForMicros(uint64_t micros) override { slept_micros += micros; }
  std::atomic<uint64_t> slept_micros{0};
};

double Frac(double v) { return v - std::floor(v); }

std::unique_ptr<Model> Make(const FakeModelOptions& options) {
  Result<std::unique_ptr<Model>> model = MakeFakeModel(options);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(model).value() : nullptr;
}

TEST(FakeModelTest, ScoreFormula) {
  FakeModelOptions options;
  options.num_features = 3;
  options.outputs = 2;
  auto model = Make(options);
  ASSERT_NE(model, nullptr);
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.backend, "fake");
  EXPECT_EQ(info.num_features, 3u);
  EXPECT_TRUE(info.concurrent_predict);
  ASSERT_EQ(info.outputs.size(), 1u);
  EXPECT_EQ(info.outputs[0].name, "score");
  EXPECT_EQ(info.outputs[0].type, DataType::kFloat32);
  EXPECT_EQ(info.outputs[0].width, 2u);

  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> features = {100, 20, 3, -5, 0, 0, nan, 1, 2};
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(features.data(), 3, 3, &outputs).ok());
  ASSERT_EQ(outputs.size(), 1u);
  ASSERT_EQ(outputs[0].width, 2u);
  std::span<const float> s = outputs[0].values.float32s();
  ASSERT_EQ(s.size(), 6u);
  const double base0 = 100 * 0.001 + 20 * 2 * 0.001 + 3 * 3 * 0.001;  // 0.149
  EXPECT_EQ(s[0], static_cast<float>(Frac(base0)));
  EXPECT_EQ(s[1], static_cast<float>(Frac(base0 + 0.1)));
  EXPECT_EQ(s[2], static_cast<float>(Frac(-5 * 0.001)));  // negative sums wrap into [0, 1)
  EXPECT_EQ(s[3], static_cast<float>(Frac(-5 * 0.001 + 0.1)));
  const double base2 = 1 * 2 * 0.001 + 2 * 3 * 0.001;  // NaN counts as 0
  EXPECT_EQ(s[4], static_cast<float>(Frac(base2)));
  EXPECT_EQ(s[5], static_cast<float>(Frac(base2 + 0.1)));
  for (float v : s) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LT(v, 1.0f);
  }
}

TEST(FakeModelTest, SensitiveToEveryFeature) {
  FakeModelOptions options;
  options.num_features = 8;
  auto model = Make(options);
  ASSERT_NE(model, nullptr);
  std::vector<float> base = {0.5f, 1, 2, 3, 4, 5, 6, 7};
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(base.data(), 1, 8, &outputs).ok());
  const float base_score = outputs[0].values.float32s()[0];
  for (size_t f = 0; f < base.size(); ++f) {
    std::vector<float> changed = base;
    changed[f] += 1;
    ASSERT_TRUE(model->Predict(changed.data(), 1, 8, &outputs).ok());
    EXPECT_NE(outputs[0].values.float32s()[0], base_score) << "feature " << f;
  }
}

TEST(FakeModelTest, InjectedFailuresAreCountedAcrossThreads) {
  FakeModelOptions options;
  options.num_features = 2;
  options.fail_calls = 10;
  options.fail_code = StatusCode::kIOError;
  auto model = Make(options);
  ASSERT_NE(model, nullptr);

  // A wrong width is an input error, not a consumed injected failure.
  std::vector<float> features = {1, 2, 3, 4};
  std::vector<OutputTensor> outputs;
  EXPECT_EQ(model->Predict(features.data(), 1, 4, &outputs).code(), StatusCode::kInvalidArgument);

  std::atomic<int> failures{0};
  std::atomic<int> successes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<OutputTensor> local;
      for (int i = 0; i < 25; ++i) {
        Status status = model->Predict(features.data(), 2, 2, &local);
        if (status.ok()) {
          ++successes;
        } else {
          EXPECT_EQ(status.code(), StatusCode::kIOError);
          EXPECT_EQ(status.message(), "fake model: injected failure");
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 10);
  EXPECT_EQ(successes.load(), 90);
}

TEST(FakeModelTest, DelaySleepsThroughEnv) {
  SleepRecordingEnv env(Env::Default());
  FakeModelOptions options;
  options.delay_ms = 7;
  options.env = &env;
  auto model = Make(options);
  ASSERT_NE(model, nullptr);
  float x = 1;
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(&x, 1, 1, &outputs).ok());
  ASSERT_TRUE(model->Predict(&x, 1, 1, &outputs).ok());
  EXPECT_EQ(env.slept_micros.load(), 14000u);
}

TEST(FakeModelTest, BadOptions) {
  FakeModelOptions options;
  options.num_features = 0;
  EXPECT_EQ(MakeFakeModel(options).status().message(), "fake model: num_features must be >= 1");
  options = {};
  options.outputs = 0;
  EXPECT_EQ(MakeFakeModel(options).status().message(), "fake model: outputs must be >= 1");
  options = {};
  options.fail_calls = -1;
  EXPECT_EQ(MakeFakeModel(options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.fail_code = StatusCode::kOk;
  EXPECT_EQ(MakeFakeModel(options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.delay_ms = 5;
  EXPECT_EQ(MakeFakeModel(options).status().message(), "fake model: delay_ms needs an Env to sleep on");
}

class FakeModelFileTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<Model>> Load(const std::string& json) {
    EXPECT_TRUE(WriteFileAtomic(&env_, "f.json", json).ok());
    return LoadFakeModel(&env_, {"f.json"});
  }
  std::unique_ptr<Env> mem_ = NewMemEnv();
  SleepRecordingEnv env_{mem_.get()};
};

TEST_F(FakeModelFileTest, LoadsEveryKey) {
  Result<std::unique_ptr<Model>> model = Load(
      R"({"sluice_fake": 1, "num_features": 2, "outputs": 3, "fail_calls": 1,
          "fail_code": "timeout", "delay_ms": 2})");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->info().num_features, 2u);
  EXPECT_EQ((*model)->info().outputs[0].width, 3u);
  std::vector<float> features = {1, 2};
  std::vector<OutputTensor> outputs;
  Status first = (*model)->Predict(features.data(), 1, 2, &outputs);
  EXPECT_EQ(first.code(), StatusCode::kTimeout);
  EXPECT_TRUE(first.IsTransient());
  ASSERT_TRUE((*model)->Predict(features.data(), 1, 2, &outputs).ok());
  EXPECT_EQ(outputs[0].values.size(), 3u);
  EXPECT_EQ(env_.slept_micros.load(), 4000u);
}

TEST_F(FakeModelFileTest, Defaults) {
  Result<std::unique_ptr<Model>> model = Load(R"({"sluice_fake": 1, "num_features": 4})");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->info().outputs[0].width, 1u);
  std::vector<float> features = {1, 2, 3, 4};
  std::vector<OutputTensor> outputs;
  EXPECT_TRUE((*model)->Predict(features.data(), 1, 4, &outputs).ok());
  EXPECT_EQ(env_.slept_micros.load(), 0u);
}

TEST_F(FakeModelFileTest, BadFiles) {
  struct Case {
    std::string json;
    std::string message;
  };
  const Case cases[] = {
      {"{", "f.json: not valid JSON: parse error at line 1, column 2"},
      {R"({"num_features": 1})", "f.json: missing key 'sluice_fake'"},
      {R"({"sluice_fake": 1})", "f.json: missing key 'num_features'"},
      {R"({"sluice_fake": 1, "num_features": 0})", "f.json: num_features must be an integer >= 1, got 0"},
      {R"({"sluice_fake": 1, "num_features": 2.5})", "f.json: num_features must be an integer >= 1, got 2.5"},
      {R"({"sluice_fake": 1, "num_features": 1, "outputs": "2"})",
       "f.json: outputs must be an integer >= 1, got \"2\""},
      {R"({"sluice_fake": 1, "num_features": 1, "delay_ms": -1})",
       "f.json: delay_ms must be an integer >= 0, got -1"},
      {R"({"sluice_fake": 1, "num_features": 1, "fail_code": "sometimes"})",
       "f.json: fail_code 'sometimes' is not a status code (expected one of: invalid_argument, not_found,"},
      {R"({"sluice_fake": 1, "num_features": 1, "delay": 5})",
       "f.json: unknown key 'delay' (expected sluice_fake, num_features, outputs, fail_calls, fail_code, "
       "delay_ms)"},
  };
  for (const Case& c : cases) {
    Result<std::unique_ptr<Model>> model = Load(c.json);
    ASSERT_FALSE(model.ok()) << c.json;
    EXPECT_EQ(model.status().code(), StatusCode::kCorruption) << c.json;
    EXPECT_EQ(model.status().message().rfind(c.message, 0), 0u) << model.status().message();
    EXPECT_EQ(model.status().message().find('\n'), std::string::npos);
  }
}

TEST(FakeModelDetectTest, ByExtensionAndMarker) {
  EXPECT_TRUE(DetectFakeModel("a/b.json", R"({"sluice_fake": 1})"));
  EXPECT_FALSE(DetectFakeModel("a/b.yaml", R"({"sluice_fake": 1})"));
  EXPECT_FALSE(DetectFakeModel("a/b.json", R"({"sluice_linear": 1})"));
}

}  // namespace
}  // namespace sluice
