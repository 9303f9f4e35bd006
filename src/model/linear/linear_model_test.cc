#include "model/linear/linear_model.h"

#include <cmath>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/env.h"

namespace sluice {
namespace {

std::unique_ptr<Model> Parse(const std::string& json) {
  Result<std::unique_ptr<Model>> model = ParseLinearModel(json, "model.json");
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(model).value() : nullptr;
}

std::vector<float> PredictAll(Model* model, const std::vector<float>& features, size_t cols) {
  std::vector<OutputTensor> outputs;
  Status status = model->Predict(features.data(), features.size() / cols, cols, &outputs);
  EXPECT_TRUE(status.ok()) << status.ToString();
  if (!status.ok() || outputs.size() != 1) return {};
  std::span<const float> values = outputs[0].values.float32s();
  return {values.begin(), values.end()};
}

TEST(LinearModelTest, IdentityOneRow) {
  auto model = Parse(R"({"sluice_linear": 1, "feature_names": ["a", "b"],
                         "coefficients": [1.5, -2], "intercepts": 0.25, "link": "identity",
                         "metadata": {"source": "unit test"}})");
  ASSERT_NE(model, nullptr);
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.backend, "linear");
  EXPECT_EQ(info.num_features, 2u);
  EXPECT_EQ(info.feature_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(info.concurrent_predict);
  ASSERT_EQ(info.outputs.size(), 1u);
  EXPECT_EQ(info.outputs[0].name, "value");
  EXPECT_EQ(info.outputs[0].type, DataType::kFloat32);
  EXPECT_EQ(info.outputs[0].width, 1u);
  EXPECT_EQ(info.metadata.at("source"), "unit test");

  // 0.25 + 1.5*2 - 2*3 = -2.75; 0.25 + 1.5*(-1) - 2*0.5 = -2.25
  EXPECT_EQ(PredictAll(model.get(), {2, 3, -1, 0.5f}, 2), (std::vector<float>{-2.75f, -2.25f}));
}

TEST(LinearModelTest, IdentityMultiOutput) {
  auto model = Parse(R"({"sluice_linear": 1, "feature_names": ["a", "b"],
                         "coefficients": [[1, 0], [0, 1], [1, 1]], "intercepts": [0, 10, 100],
                         "link": "identity"})");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->info().outputs[0].width, 3u);
  EXPECT_EQ(PredictAll(model.get(), {2, 3}, 2), (std::vector<float>{2, 13, 105}));
}

TEST(LinearModelTest, LogisticIsSigmoidOfEachRow) {
  auto model = Parse(R"({"sluice_linear": 1, "feature_names": ["x"],
                         "coefficients": [[2]], "intercepts": [-1], "link": "logistic"})");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->info().outputs[0].name, "probability");
  std::vector<float> p = PredictAll(model.get(), {0.5f, 0, 1000, -1000}, 1);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_FLOAT_EQ(p[0], 0.5f);                                          // logit 0
  EXPECT_FLOAT_EQ(p[1], static_cast<float>(1 / (1 + std::exp(1.0))));  // logit -1
  EXPECT_EQ(p[2], 1.0f);                                                // saturates, no overflow
  EXPECT_EQ(p[3], 0.0f);
}

TEST(LinearModelTest, SoftmaxIsStableAndSumsToOne) {
  auto model = Parse(R"({"sluice_linear": 1, "feature_names": ["x"],
                         "coefficients": [[1], [2], [3]], "intercepts": [0, 0, 0], "link": "softmax"})");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->info().outputs[0].name, "probabilities");
  EXPECT_EQ(model->info().outputs[0].width, 3u);
  // x = 1000 gives logits 1000, 2000, 3000: exp overflows without the max shift.
  std::vector<float> p = PredictAll(model.get(), {0, 1, 1000}, 1);
  ASSERT_EQ(p.size(), 9u);
  for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(p[c], 1.0f / 3);
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0);
  EXPECT_FLOAT_EQ(p[3], static_cast<float>(e1 / (e1 + e2 + e3)));
  EXPECT_FLOAT_EQ(p[4], static_cast<float>(e2 / (e1 + e2 + e3)));
  EXPECT_FLOAT_EQ(p[5], static_cast<float>(e3 / (e1 + e2 + e3)));
  EXPECT_EQ(p[6], 0.0f);
  EXPECT_EQ(p[7], 0.0f);
  EXPECT_EQ(p[8], 1.0f);
}

TEST(LinearModelTest, NonFiniteFeatures) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto softmax = Parse(R"({"sluice_linear": 1, "feature_names": ["x", "y"],
                           "coefficients": [[1, 1], [1, 2], [-1, 1]], "intercepts": [0, 0, 0],
                           "link": "softmax"})");
  ASSERT_NE(softmax, nullptr);
  std::vector<float> p = PredictAll(softmax.get(), {nan, 0, inf, 0, 0, -inf}, 2);
  ASSERT_EQ(p.size(), 9u);
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(std::isnan(p[c])) << c;  // NaN anywhere -> NaN row
  EXPECT_EQ(p[3], 0.5f);  // logits +inf, +inf, -inf: the two +inf share the mass
  EXPECT_EQ(p[4], 0.5f);
  EXPECT_EQ(p[5], 0.0f);
  for (int c = 6; c < 9; ++c) EXPECT_TRUE(std::isnan(p[c])) << c;  // every logit -inf

  auto logistic = Parse(R"({"sluice_linear": 1, "feature_names": ["x", "y"],
                            "coefficients": [0, 1], "intercepts": 0, "link": "logistic"})");
  ASSERT_NE(logistic, nullptr);
  // NaN propagates even through a zero coefficient.
  p = PredictAll(logistic.get(), {nan, 1, 1, nan}, 2);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_TRUE(std::isnan(p[0]));
  EXPECT_TRUE(std::isnan(p[1]));
}

TEST(LinearModelTest, WrongInputWidth) {
  auto model = Parse(R"({"sluice_linear": 1, "feature_names": ["a", "b"],
                         "coefficients": [1, 2], "intercepts": 0, "link": "identity"})");
  ASSERT_NE(model, nullptr);
  std::vector<float> features(6, 1.0f);
  std::vector<OutputTensor> outputs;
  Status status = model->Predict(features.data(), 2, 3, &outputs);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "linear model 'model.json': input has 3 features per row, expected 2");
}

TEST(LinearModelTest, ReusesOutputTensors) {
  auto model = Parse(R"({"sluice_linear": 1, "feature_names": ["a"],
                         "coefficients": [2], "intercepts": 1, "link": "identity"})");
  ASSERT_NE(model, nullptr);
  std::vector<OutputTensor> outputs(3);  // too many, wrong type: Predict fixes both
  outputs[0].values = Column(DataType::kFloat64);
  std::vector<float> features = {1, 2, 3};
  ASSERT_TRUE(model->Predict(features.data(), 3, 1, &outputs).ok());
  ASSERT_EQ(outputs.size(), 1u);
  ASSERT_EQ(outputs[0].values.type(), DataType::kFloat32);
  EXPECT_EQ(outputs[0].values.size(), 3u);
  ASSERT_TRUE(model->Predict(features.data(), 1, 1, &outputs).ok());
  EXPECT_EQ(outputs[0].values.size(), 1u);
  EXPECT_EQ(outputs[0].values.float32s()[0], 3.0f);
}

TEST(LinearModelTest, LoadsThroughEnvAndDetects) {
  std::unique_ptr<Env> env = NewMemEnv();
  const std::string text = R"({"sluice_linear": 1, "feature_names": ["a"],
                               "coefficients": [2], "intercepts": 1, "link": "identity"})";
  ASSERT_TRUE(WriteFileAtomic(env.get(), "/models/m.json", text).ok());
  Result<std::unique_ptr<Model>> model = LoadLinearModel(env.get(), {"/models/m.json"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(PredictAll(model->get(), {4}, 1), std::vector<float>{9});

  Result<std::unique_ptr<Model>> missing = LoadLinearModel(env.get(), {"/models/none.json"});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "model.path: no such file '/models/none.json'");

  EXPECT_TRUE(DetectLinearModel("m.json", text));
  EXPECT_TRUE(DetectLinearModel("M.JSON", text));
  EXPECT_FALSE(DetectLinearModel("m.txt", text));
  EXPECT_FALSE(DetectLinearModel("m.json", R"({"sluice_fake": 1})"));
}

struct BadFile {
  const char* name;
  std::string json;
  StatusCode code;
  std::string message;
};

void PrintTo(const BadFile& bad, std::ostream* os) { *os << bad.name; }

class LinearModelBadFileTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(LinearModelBadFileTest, OneLineErrorNamingFileAndKey) {
  const BadFile& bad = GetParam();
  Result<std::unique_ptr<Model>> model = ParseLinearModel(bad.json, "model.json");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), bad.code) << model.status().ToString();
  EXPECT_EQ(model.status().message().find('\n'), std::string::npos) << model.status().message();
  EXPECT_EQ(model.status().message().rfind("model.json: ", 0), 0u) << model.status().message();
  EXPECT_NE(model.status().message().find(bad.message), std::string::npos) << model.status().message();
}

// Seven features, three classes: the base of most bad files.
std::string Doc(const std::string& coefficients, const std::string& intercepts = "[0, 0, 0]",
                const std::string& link = "\"softmax\"",
                const std::string& names = R"(["a", "b", "c", "d", "e", "f", "g"])") {
  return R"({"sluice_linear": 1, "feature_names": )" + names + R"(, "coefficients": )" + coefficients +
         R"(, "intercepts": )" + intercepts + R"(, "link": )" + link + "}";
}
const std::string kRow7 = "[1, 2, 3, 4, 5, 6, 7]";
const std::string kGood3 = "[" + kRow7 + ", " + kRow7 + ", " + kRow7 + "]";

INSTANTIATE_TEST_SUITE_P(
    BadFiles, LinearModelBadFileTest,
    ::testing::Values(
        BadFile{"NotJson", "this is not json", StatusCode::kCorruption,
                "model.json: not valid JSON: parse error at line 1, column 2"},
        BadFile{"Truncated", Doc(kGood3).substr(0, 60), StatusCode::kCorruption,
                "model.json: not valid JSON: parse error at line 1, column 61"},
        BadFile{"NotAnObject", "[1, 2]", StatusCode::kCorruption, "model.json: expected a JSON object"},
        BadFile{"NoMarker", R"({"feature_names": ["a"], "coefficients": [1], "intercepts": 0,
                               "link": "identity"})",
                StatusCode::kCorruption, "model.json: missing key 'sluice_linear'"},
        BadFile{"NewerVersion", R"({"sluice_linear": 2})", StatusCode::kNotSupported,
                "model.json: sluice_linear version 2 is not supported (expected 1)"},
        BadFile{"MissingFeatureNames", R"({"sluice_linear": 1, "coefficients": [1], "intercepts": 0,
                                          "link": "identity"})",
                StatusCode::kCorruption, "model.json: missing key 'feature_names'"},
        BadFile{"MissingCoefficients", R"({"sluice_linear": 1, "feature_names": ["a"], "intercepts": 0,
                                          "link": "identity"})",
                StatusCode::kCorruption, "model.json: missing key 'coefficients'"},
        BadFile{"MissingIntercepts", R"({"sluice_linear": 1, "feature_names": ["a"], "coefficients": [1],
                                        "link": "identity"})",
                StatusCode::kCorruption, "model.json: missing key 'intercepts'"},
        BadFile{"MissingLink", R"({"sluice_linear": 1, "feature_names": ["a"], "coefficients": [1],
                                  "intercepts": 0})",
                StatusCode::kCorruption, "model.json: missing key 'link'"},
        BadFile{"UnknownKey", R"({"sluice_linear": 1, "intercept": 0})", StatusCode::kCorruption,
                "model.json: unknown key 'intercept' (expected sluice_linear, feature_names, coefficients, "
                "intercepts, link, metadata)"},
        BadFile{"EmptyFeatureNames", Doc("[1]", "0", "\"identity\"", "[]"), StatusCode::kCorruption,
                "model.json: feature_names must be a non-empty array of strings"},
        BadFile{"FeatureNameNotString", Doc("[1, 2]", "0", "\"identity\"", R"(["a", 3])"),
                StatusCode::kCorruption, "model.json: feature_names[1] is not a string"},
        BadFile{"DuplicateFeatureName", Doc("[1, 2, 3]", "0", "\"identity\"", R"(["a", "b", "a"])"),
                StatusCode::kCorruption, "model.json: feature_names[2] 'a' repeats feature_names[0]"},
        BadFile{"ShortRow", Doc("[" + kRow7 + ", " + kRow7 + ", [1, 2, 3, 4, 5]]"), StatusCode::kCorruption,
                "model.json: coefficients row 2 has 5 values, expected 7 (feature_names)"},
        BadFile{"ShortFlatRow", Doc("[1, 2, 3]", "0", "\"identity\""), StatusCode::kCorruption,
                "model.json: coefficients has 3 values, expected 7 (feature_names)"},
        BadFile{"RowNotArray", Doc("[" + kRow7 + ", 5]"), StatusCode::kCorruption,
                "model.json: coefficients row 1 is not an array"},
        BadFile{"ValueNotNumber", Doc("[" + kRow7 + ", [1, 2, \"x\", 4, 5, 6, 7], " + kRow7 + "]"),
                StatusCode::kCorruption, "model.json: coefficients row 1 value 2 is not a number"},
        BadFile{"NumberOverflow", Doc("[1, 2, 3, 4, 5, 6, 1e999]", "0", "\"identity\""),
                StatusCode::kCorruption, "model.json: not valid JSON: number overflow parsing '1e999'"},
        BadFile{"EmptyCoefficients", Doc("[]"), StatusCode::kCorruption,
                "model.json: coefficients must be an array of 7 numbers (feature_names) or of rows of 7 numbers"},
        BadFile{"WrongInterceptCount", Doc(kGood3, "[0, 0]"), StatusCode::kCorruption,
                "model.json: intercepts has 2 values, expected 3 (coefficients rows)"},
        BadFile{"ScalarInterceptForManyRows", Doc(kGood3, "0"), StatusCode::kCorruption,
                "model.json: intercepts is one number, expected 3 (coefficients rows)"},
        BadFile{"InterceptNotNumber", Doc(kGood3, "[0, null, 0]"), StatusCode::kCorruption,
                "model.json: intercepts value 1 is not a number"},
        BadFile{"InterceptWrongType", Doc(kGood3, "\"0\""), StatusCode::kCorruption,
                "model.json: intercepts must be a number or an array of numbers"},
        BadFile{"BadLink", Doc(kGood3, "[0, 0, 0]", "\"relu\""), StatusCode::kNotSupported,
                "model.json: link 'relu' is not supported (expected identity, logistic, softmax)"},
        BadFile{"LinkNotString", Doc(kGood3, "[0, 0, 0]", "1"), StatusCode::kCorruption,
                "model.json: link must be a string"},
        BadFile{"SoftmaxOneRow", Doc(kRow7, "0"), StatusCode::kCorruption,
                "model.json: link 'softmax' needs at least 2 coefficient rows, got 1"},
        BadFile{"MetadataNotString",
                R"({"sluice_linear": 1, "feature_names": ["a"], "coefficients": [1], "intercepts": 0,
                    "link": "identity", "metadata": {"n": 1}})",
                StatusCode::kCorruption, "model.json: metadata.n is not a string"}),
    [](const ::testing::TestParamInfo<BadFile>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace sluice
