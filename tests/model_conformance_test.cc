// One conformance suite that every model backend passes. A backend joins by
// adding a case to Cases() below: a function that writes a model with F
// features into a directory and says how to load it, plus what the backend does
// with NaN features and (when cheap) a double-precision reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/env.h"
#include "sluice/model.h"

#if SLUICE_WITH_XGBOOST
#include "model/xgboost/xgboost_test_util.h"
#endif

namespace sluice {
namespace {

// What a backend does with a NaN feature.
enum class NanBehavior {
  kPropagates,  // every output of the row is NaN
  kFinite,      // outputs stay finite (missing-value aware backends, the fake)
};

struct WrittenModel {
  std::string kind;  // registry name; the suite also checks that "auto" picks it
  ModelOptions options;
  // Expected outputs of one row in double precision, all outputs concatenated in
  // info().outputs order; empty function when the case has no reference.
  std::function<std::vector<double>(const float* row)> reference;
};

struct BackendCase {
  std::string name;
  // Writes a model taking `num_features` features under `dir` through `env`.
  std::function<Result<WrittenModel>(Env* env, const std::string& dir, size_t num_features)> write;
  NanBehavior nan = NanBehavior::kPropagates;
};

void PrintTo(const BackendCase& c, std::ostream* os) { *os << c.name; }

// ---- linear -----------------------------------------------------------------

enum class Link { kIdentity, kLogistic, kSoftmax };

BackendCase LinearCase(std::string name, Link link, size_t num_rows) {
  auto write = [link, num_rows](Env* env, const std::string& dir,
                                size_t num_features) -> Result<WrittenModel> {
    std::mt19937 rng(static_cast<uint32_t>(num_rows * 131 + num_features));
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    std::vector<std::vector<double>> coefficients(num_rows, std::vector<double>(num_features));
    std::vector<double> intercepts(num_rows);
    for (auto& row : coefficients) {
      for (double& w : row) w = dist(rng);
    }
    for (double& b : intercepts) b = dist(rng);
    std::vector<std::string> names;
    for (size_t f = 0; f < num_features; ++f) names.push_back("f" + std::to_string(f));

    nlohmann::ordered_json doc;  // ordered: the marker goes first, where detection looks
    doc["sluice_linear"] = 1;
    doc["feature_names"] = names;
    if (num_rows == 1) {
      doc["coefficients"] = coefficients[0];
      doc["intercepts"] = intercepts[0];
    } else {
      doc["coefficients"] = coefficients;
      doc["intercepts"] = intercepts;
    }
    doc["link"] = link == Link::kIdentity ? "identity" : link == Link::kLogistic ? "logistic" : "softmax";
    const std::string path = JoinPath(dir, "linear.json");
    // dump(-1, ' ', false, strict) writes doubles with round-trip precision.
    RETURN_IF_ERROR(WriteFileAtomic(env, path, doc.dump()));

    WrittenModel written;
    written.kind = "linear";
    written.options.path = path;
    written.reference = [=](const float* row) {
      std::vector<double> logits(num_rows);
      for (size_t c = 0; c < num_rows; ++c) {
        logits[c] = intercepts[c];
        for (size_t f = 0; f < num_features; ++f) logits[c] += coefficients[c][f] * row[f];
      }
      if (link == Link::kLogistic) {
        for (double& l : logits) l = 1.0 / (1.0 + std::exp(-l));
      } else if (link == Link::kSoftmax) {
        double sum = 0;
        for (double l : logits) sum += std::exp(l);
        for (double& l : logits) l = std::exp(l) / sum;
      }
      return logits;
    };
    return written;
  };
  return BackendCase{std::move(name), write, NanBehavior::kPropagates};
}

// ---- fake -------------------------------------------------------------------

BackendCase FakeCase() {
  auto write = [](Env* env, const std::string& dir, size_t num_features) -> Result<WrittenModel> {
    const size_t outputs = 3;
    const std::string path = JoinPath(dir, "fake.json");
    RETURN_IF_ERROR(WriteFileAtomic(env, path,
                                    R"({"sluice_fake": 1, "num_features": )" + std::to_string(num_features) +
                                        R"(, "outputs": )" + std::to_string(outputs) + "}"));
    WrittenModel written;
    written.kind = "fake";
    written.options.path = path;
    written.reference = [=](const float* row) {
      double base = 0;
      for (size_t f = 0; f < num_features; ++f) {
        if (!std::isnan(row[f])) base += row[f] * (f + 1) * 0.001;
      }
      std::vector<double> scores(outputs);
      for (size_t j = 0; j < outputs; ++j) scores[j] = base + j * 0.1 - std::floor(base + j * 0.1);
      return scores;
    };
    return written;
  };
  return BackendCase{"fake", write, NanBehavior::kFinite};
}

#if SLUICE_WITH_XGBOOST
// ---- xgboost ----------------------------------------------------------------

// A model trained on the spot through libxgboost's C API (30 rounds of depth-6
// trees, 10% NaN in the training features) and saved as `format`; the reference
// walks the trees of its JSON dump (xgboost_test_util.h), not libxgboost.
BackendCase XgboostCase(std::string name, xgboost_test::TrainSpec spec, std::string format, std::string file_name,
                        std::vector<std::string> requested_outputs = {}) {
  auto write = [=](Env* env, const std::string& dir, size_t num_features) -> Result<WrittenModel> {
    xgboost_test::TrainSpec sized = spec;
    sized.num_features = num_features;
    ASSIGN_OR_RETURN(xgboost_test::TrainedModel trained, xgboost_test::Train(sized, format));
    ASSIGN_OR_RETURN(xgboost_test::Reference reference, xgboost_test::Reference::FromJson(trained.json));
    const std::string path = JoinPath(dir, file_name);
    RETURN_IF_ERROR(WriteFileAtomic(env, path, trained.bytes));
    WrittenModel written;
    written.kind = "xgboost";
    written.options.path = path;
    written.options.requested_outputs = requested_outputs;
    const bool margin = !requested_outputs.empty();
    written.reference = [reference, margin](const float* row) {
      std::vector<double> expected = reference.Transformed(row);
      if (margin) {
        for (float m : reference.Margins(row)) expected.push_back(m);
      }
      return expected;
    };
    return written;
  };
  // Missing values follow each split's default direction: outputs stay finite.
  return BackendCase{std::move(name), write, NanBehavior::kFinite};
}
#endif

#if SLUICE_WITH_ONNX
// ---- onnx -------------------------------------------------------------------

// Models generated at test time by tests/models/gen_onnx_models.py (CTest fixture
// onnx_models) for exactly 7 features; the reference recomputes them in double from
// the weights the script writes beside each model ({"layers": [{"w": [in][out], "b"}]}).
enum class OnnxNet {
  kMlp,    // x [N, 7] -> Linear, ReLU, Linear, ReLU, Linear, sigmoid -> y [N, 1] (float32)
  kMulti,  // f0..f6 one column each -> value = x W + b (double), probability = sigmoid (float32)
};

BackendCase OnnxCase(std::string name, OnnxNet net, std::string file_stem) {
  auto write = [net, file_stem](Env* env, const std::string& /*dir*/, size_t num_features) -> Result<WrittenModel> {
    if (num_features != 7) return Status::InvalidArgument("the generated ONNX models take 7 features");
    const std::string base = std::string(SLUICE_BINARY_DIR) + "/test_models/onnx/" + file_stem;
    Result<std::string> text = ReadFileToString(env, base + ".json");
    if (!text.ok()) return text.status().WithContext("run `ctest -R gen_onnx_models` first");
    struct Layer {
      std::vector<std::vector<double>> w;  // [in][out]
      std::vector<double> b;
    };
    std::vector<Layer> layers;
    const nlohmann::json doc = nlohmann::json::parse(*text);
    for (const auto& layer : doc["layers"]) {
      layers.push_back({layer["w"].get<std::vector<std::vector<double>>>(), layer["b"].get<std::vector<double>>()});
    }
    WrittenModel written;
    written.kind = "onnx";
    written.options.path = base + ".onnx";
    written.reference = [net, layers](const float* row) {
      std::vector<double> x(row, row + 7);
      for (size_t l = 0; l < layers.size(); ++l) {
        std::vector<double> y = layers[l].b;
        for (size_t i = 0; i < x.size(); ++i) {
          for (size_t j = 0; j < y.size(); ++j) y[j] += x[i] * layers[l].w[i][j];
        }
        if (net == OnnxNet::kMlp && l + 1 < layers.size()) {
          for (double& v : y) v = std::isnan(v) ? v : std::max(v, 0.0);
        }
        x = std::move(y);
      }
      std::vector<double> out = net == OnnxNet::kMulti ? x : std::vector<double>{};
      for (double v : x) out.push_back(1.0 / (1.0 + std::exp(-v)));
      return out;
    };
    return written;
  };
  return BackendCase{std::move(name), write, NanBehavior::kPropagates};
}
#endif

// The table. ONNX and XGBoost cases join here behind their build options.
std::vector<BackendCase> Cases() {
  return {
      LinearCase("linear_logistic_binary", Link::kLogistic, 1),
      LinearCase("linear_softmax_3class", Link::kSoftmax, 3),
      LinearCase("linear_identity", Link::kIdentity, 2),
      FakeCase(),
#if SLUICE_WITH_XGBOOST
      XgboostCase("xgboost_binary_logistic_json", {.objective = "binary:logistic"}, "json", "model.json"),
      XgboostCase("xgboost_softprob_3class_ubj", {.objective = "multi:softprob", .num_class = 3}, "ubj",
                  "model.ubj"),
      XgboostCase("xgboost_regression_legacy_binary", {.objective = "reg:squarederror", .feature_names = false},
                  "deprecated", "model.bin"),
      XgboostCase("xgboost_softmax_label_and_margin", {.objective = "multi:softmax", .num_class = 3}, "json",
                  "model.json", {"margin"}),
      XgboostCase("xgboost_gblinear_json", {.objective = "reg:squarederror", .booster = "gblinear"}, "json",
                  "model.json"),
#endif
#if SLUICE_WITH_ONNX
      OnnxCase("onnx_mlp_float_tensor", OnnxNet::kMlp, "conformance_mlp"),
      OnnxCase("onnx_multi_input_float_double", OnnxNet::kMulti, "conformance_multi"),
#endif
  };
}

// ---- the suite ----------------------------------------------------------------

constexpr size_t kNumFeatures = 7;

std::vector<float> RandomFeatures(size_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  std::vector<float> x(rows * kNumFeatures);
  for (float& v : x) v = dist(rng);
  return x;
}

// Every output as raw bytes, for bit-identical comparisons.
std::string Bytes(const std::vector<OutputTensor>& outputs) {
  std::string bytes;
  for (const OutputTensor& t : outputs) {
    const Column& c = t.values;
    switch (c.type()) {
      case DataType::kFloat32:
        bytes.append(reinterpret_cast<const char*>(c.float32s().data()), c.float32s().size_bytes());
        break;
      case DataType::kFloat64:
        bytes.append(reinterpret_cast<const char*>(c.float64s().data()), c.float64s().size_bytes());
        break;
      case DataType::kInt64:
        bytes.append(reinterpret_cast<const char*>(c.int64s().data()), c.int64s().size_bytes());
        break;
      default:
        for (size_t i = 0; i < c.size(); ++i) bytes.append(c.StringAt(i)).push_back('\0');
        break;
    }
  }
  return bytes;
}

double ValueAt(const OutputTensor& t, size_t row, size_t element) {
  return t.values.NumericAt(row * t.width + element);
}

class ModelConformanceTest : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    RegisterBuiltinModels(&registry_);
    dir_ = JoinPath(::testing::TempDir(),
                    "sluice_model_conformance_" + GetParam().name + "_" + std::to_string(::getpid()));
    ASSERT_TRUE(env_->CreateDirs(dir_).ok());
    Result<WrittenModel> written = GetParam().write(env_, dir_, kNumFeatures);
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    written_ = std::move(written).value();
    Result<std::unique_ptr<Model>> model = registry_.Load(env_, written_.kind, written_.options);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value();
  }

  void TearDown() override {
    if (dir_.empty()) return;
    Result<std::vector<std::string>> children = env_->GetChildren(dir_);
    if (children.ok()) {
      for (const std::string& name : *children) (void)env_->RemoveFile(JoinPath(dir_, name));
    }
  }

  std::vector<OutputTensor> Predict(const std::vector<float>& features) {
    std::vector<OutputTensor> outputs;
    Status status = model_->Predict(features.data(), features.size() / kNumFeatures, kNumFeatures, &outputs);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return outputs;
  }

  // Declared widths and types, and rows * width values in each tensor.
  void CheckShapes(const std::vector<OutputTensor>& outputs, size_t rows) {
    const ModelInfo& info = model_->info();
    ASSERT_EQ(outputs.size(), info.outputs.size());
    for (size_t o = 0; o < outputs.size(); ++o) {
      EXPECT_EQ(outputs[o].width, info.outputs[o].width) << info.outputs[o].name;
      EXPECT_EQ(outputs[o].values.type(), info.outputs[o].type) << info.outputs[o].name;
      EXPECT_EQ(outputs[o].values.size(), rows * info.outputs[o].width) << info.outputs[o].name;
    }
  }

  // Compares each row with the case's double-precision reference.
  void CheckReference(const std::vector<float>& features, const std::vector<OutputTensor>& outputs) {
    if (!written_.reference) return;
    const size_t rows = features.size() / kNumFeatures;
    size_t mismatches = 0;
    for (size_t row = 0; row < rows && mismatches < 5; ++row) {
      std::vector<double> expected = written_.reference(features.data() + row * kNumFeatures);
      size_t k = 0;
      for (const OutputTensor& t : outputs) {
        for (size_t e = 0; e < t.width; ++e, ++k) {
          ASSERT_LT(k, expected.size());
          const double got = ValueAt(t, row, e);
          // float32 output of a double computation: half an ulp of float, plus slack.
          const double tolerance = 1e-6 + 1e-6 * std::fabs(expected[k]);
          if (std::isnan(expected[k]) ? !std::isnan(got) : !(std::fabs(got - expected[k]) <= tolerance)) {
            ADD_FAILURE() << "row " << row << " value " << k << ": got " << got << ", expected " << expected[k];
            ++mismatches;
          }
        }
      }
      EXPECT_EQ(k, expected.size());
    }
  }

  Env* env_ = Env::Default();
  ModelRegistry registry_;
  std::string dir_;
  WrittenModel written_;
  std::unique_ptr<Model> model_;
};

TEST_P(ModelConformanceTest, DeclaresItself) {
  const ModelInfo& info = model_->info();
  EXPECT_EQ(info.backend, written_.kind);
  EXPECT_EQ(info.num_features, kNumFeatures);
  EXPECT_TRUE(info.feature_names.empty() || info.feature_names.size() == kNumFeatures);
  ASSERT_FALSE(info.outputs.empty());
  for (const ModelOutputInfo& out : info.outputs) {
    EXPECT_FALSE(out.name.empty());
    EXPECT_GE(out.width, 1u);
    EXPECT_TRUE(out.type == DataType::kFloat32 || out.type == DataType::kFloat64 ||
                out.type == DataType::kInt64 || out.type == DataType::kString)
        << DataTypeName(out.type);
  }
}

TEST_P(ModelConformanceTest, AutoDetectsTheFile) {
  Result<std::string> kind = registry_.Detect(env_, written_.options.path);
  ASSERT_TRUE(kind.ok()) << kind.status().ToString();
  EXPECT_EQ(*kind, written_.kind);
}

TEST_P(ModelConformanceTest, OneRow) {
  std::vector<float> features = RandomFeatures(1, 1);
  std::vector<OutputTensor> outputs = Predict(features);
  CheckShapes(outputs, 1);
  CheckReference(features, outputs);
}

TEST_P(ModelConformanceTest, ZeroRows) {
  std::vector<OutputTensor> outputs;
  float unused = 0;
  ASSERT_TRUE(model_->Predict(&unused, 0, kNumFeatures, &outputs).ok());
  CheckShapes(outputs, 0);
}

TEST_P(ModelConformanceTest, HundredThousandRows) {
  const size_t rows = 100000;
  std::vector<float> features = RandomFeatures(rows, 2);
  std::vector<OutputTensor> outputs = Predict(features);
  CheckShapes(outputs, rows);
  CheckReference(features, outputs);
  // Rows are scored independently: a slice predicted alone gives the same bits.
  std::vector<float> slice(features.begin() + 500 * kNumFeatures, features.begin() + 510 * kNumFeatures);
  std::vector<OutputTensor> slice_out = Predict(slice);
  for (size_t o = 0; o < outputs.size(); ++o) {
    for (size_t i = 0; i < 10 * outputs[o].width; ++i) {
      const double whole = outputs[o].values.NumericAt(500 * outputs[o].width + i);
      const double alone = slice_out[o].values.NumericAt(i);
      EXPECT_EQ(std::memcmp(&whole, &alone, sizeof(double)), 0) << i;
    }
  }
}

TEST_P(ModelConformanceTest, NanFeatures) {
  const size_t rows = 4;
  std::vector<float> features = RandomFeatures(rows, 3);
  std::vector<OutputTensor> clean = Predict(features);
  // Row 1: one NaN; row 3: every feature NaN. Rows 0 and 2 untouched.
  features[1 * kNumFeatures + 2] = std::numeric_limits<float>::quiet_NaN();
  for (size_t f = 0; f < kNumFeatures; ++f) features[3 * kNumFeatures + f] = std::numeric_limits<float>::quiet_NaN();
  std::vector<OutputTensor> outputs = Predict(features);
  CheckShapes(outputs, rows);
  for (size_t o = 0; o < outputs.size(); ++o) {
    const OutputTensor& t = outputs[o];
    if (t.values.type() == DataType::kString) continue;
    for (size_t e = 0; e < t.width; ++e) {
      for (size_t row : {size_t{0}, size_t{2}}) {
        EXPECT_EQ(ValueAt(t, row, e), ValueAt(clean[o], row, e)) << "row " << row << " changed";
      }
      for (size_t row : {size_t{1}, size_t{3}}) {
        const double v = ValueAt(t, row, e);
        if (GetParam().nan == NanBehavior::kPropagates) {
          EXPECT_TRUE(std::isnan(v)) << "row " << row << " element " << e << " = " << v;
        } else {
          EXPECT_TRUE(std::isfinite(v)) << "row " << row << " element " << e << " = " << v;
        }
      }
    }
  }
  CheckReference(features, outputs);
}

TEST_P(ModelConformanceTest, ConcurrentPredictIsBitIdentical) {
  const size_t rows = 20000;
  const int kThreads = 4;
  std::vector<float> features = RandomFeatures(rows, 4);
  const std::string single = Bytes(Predict(features));
  const size_t slice_rows = rows / kThreads;
  std::vector<std::string> single_slices;
  for (int t = 0; t < kThreads; ++t) {
    std::vector<float> slice(features.begin() + t * slice_rows * kNumFeatures,
                             features.begin() + (t + 1) * slice_rows * kNumFeatures);
    single_slices.push_back(Bytes(Predict(slice)));
  }

  // Backends without concurrent predict are still checked, serialized.
  std::mutex serialize;
  const bool concurrent = model_->info().concurrent_predict;
  std::vector<std::string> identical(kThreads), disjoint(kThreads);
  std::vector<Status> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<OutputTensor> outputs;
      std::unique_lock<std::mutex> lock(serialize, std::defer_lock);
      for (int round = 0; round < 3; ++round) {
        if (!concurrent) lock.lock();
        Status st = model_->Predict(features.data(), rows, kNumFeatures, &outputs);
        if (st.ok()) identical[t] = Bytes(outputs);
        if (st.ok()) {
          st = model_->Predict(features.data() + t * slice_rows * kNumFeatures, slice_rows, kNumFeatures,
                               &outputs);
        }
        if (st.ok()) disjoint[t] = Bytes(outputs);
        if (!concurrent) lock.unlock();
        if (!st.ok()) errors[t] = st;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(errors[t].ok()) << errors[t].ToString();
    EXPECT_TRUE(identical[t] == single) << "thread " << t << ": identical batch differs";
    EXPECT_TRUE(disjoint[t] == single_slices[t]) << "thread " << t << ": its slice differs";
  }
}

TEST_P(ModelConformanceTest, WrongInputWidthIsInvalidArgument) {
  std::vector<float> features = RandomFeatures(3, 5);  // 21 floats: enough for every width tried
  std::vector<OutputTensor> outputs;
  for (size_t cols : {kNumFeatures - 1, kNumFeatures + 1, size_t{1}}) {
    Status status = model_->Predict(features.data(), 2, cols, &outputs);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << cols << ": " << status.ToString();
    EXPECT_EQ(status.message().find('\n'), std::string::npos);
  }
  // And the model still works afterwards.
  CheckShapes(Predict(features), 3);
}

INSTANTIATE_TEST_SUITE_P(Backends, ModelConformanceTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<BackendCase>& info) { return info.param.name; });

}  // namespace
}  // namespace sluice
