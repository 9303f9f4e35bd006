// The XGBoost backend against Booster.predict of python3-xgboost: models and
// predictions generated at test time by tests/models/gen_xgboost_models.py into
// SLUICE_BINARY_DIR/test_models/xgboost (CTest fixture xgboost_models).
#include "model/xgboost/xgboost_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "model/xgboost/xgboost_test_util.h"
#include "sluice/env.h"
#include "sluice/model.h"

namespace sluice {
namespace {

const std::string kModelDir = std::string(SLUICE_BINARY_DIR) + "/test_models/xgboost";
constexpr double kTolerance = 1e-6;

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// A numeric CSV with a header; empty fields are NaN.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
};

Table ReadTable(const std::string& path) {
  Table table;
  Result<std::string> text = ReadFileToString(Env::Default(), path);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  if (!text.ok()) return table;
  std::vector<std::string_view> lines = Split(*text, '\n');
  for (std::string_view c : Split(lines[0], ',')) table.columns.emplace_back(c);
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<double> row;
    for (std::string_view field : Split(lines[i], ',')) {
      double v = std::numeric_limits<double>::quiet_NaN();
      if (!field.empty()) {
        auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
        EXPECT_TRUE(ec == std::errc() && end == field.data() + field.size()) << path << ":" << i + 1;
      }
      row.push_back(v);
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

class XgboostReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Result<std::string> text = ReadFileToString(Env::Default(), kModelDir + "/manifest.json");
    if (!text.ok()) return;
    manifest_ = new nlohmann::json(nlohmann::json::parse(*text));
    const Table table = ReadTable(kModelDir + "/features.csv");
    features_ = new std::vector<float>();
    for (const std::vector<double>& row : table.rows) {
      for (size_t f = 1; f < row.size(); ++f) features_->push_back(static_cast<float>(row[f]));
    }
  }
  static void TearDownTestSuite() {
    delete manifest_;
    delete features_;
    manifest_ = nullptr;
    features_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(manifest_, nullptr) << "no " << kModelDir
                                  << "/manifest.json: run `ctest -R gen_xgboost_models` (the fixture) first";
    RegisterBuiltinModels(&registry_);
  }

  size_t num_features() const { return (*manifest_)["num_features"].get<size_t>(); }
  size_t rows() const { return features_->size() / num_features(); }

  Result<std::unique_ptr<Model>> Load(const std::string& file, std::string_view kind = "auto",
                                      std::vector<std::string> requested = {"margin"}, int threads = 1) {
    ModelOptions options;
    options.path = kModelDir + "/" + file;
    options.threads = threads;
    options.requested_outputs = std::move(requested);
    return registry_.Load(Env::Default(), kind, options);
  }

  static nlohmann::json* manifest_;
  static std::vector<float>* features_;
  ModelRegistry registry_;
};

nlohmann::json* XgboostReferenceTest::manifest_ = nullptr;
std::vector<float>* XgboostReferenceTest::features_ = nullptr;

std::string Bytes(const std::vector<OutputTensor>& outputs) {
  std::string bytes;
  for (const OutputTensor& t : outputs) {
    if (t.values.type() == DataType::kInt64) {
      bytes.append(reinterpret_cast<const char*>(t.values.int64s().data()), t.values.int64s().size_bytes());
    } else {
      bytes.append(reinterpret_cast<const char*>(t.values.float32s().data()), t.values.float32s().size_bytes());
    }
  }
  return bytes;
}

TEST_F(XgboostReferenceTest, EveryModelInEveryFormatMatchesBoosterPredict) {
  size_t checked = 0;
  for (const nlohmann::json& m : (*manifest_)["models"]) {
    const std::string name = m["name"].get<std::string>();
    const Table expected = ReadTable(kModelDir + "/" + m["expected"].get<std::string>());
    ASSERT_EQ(expected.rows.size(), rows()) << name;
    const size_t width = m["width"].get<size_t>();
    const size_t margin_width = m["margin_width"].get<size_t>();
    for (const auto& [format, file] : m["files"].items()) {
      SCOPED_TRACE(name + " as " + format);
      Result<std::unique_ptr<Model>> loaded = Load(file.get<std::string>());
      ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
      Model& model = **loaded;
      const ModelInfo& info = model.info();

      EXPECT_EQ(info.backend, "xgboost");
      EXPECT_EQ(info.num_features, num_features());
      if (format == "binary") {
        EXPECT_TRUE(info.feature_names.empty());  // the legacy format does not keep them
      } else {
        EXPECT_EQ(info.feature_names, (*manifest_)["feature_names"].get<std::vector<std::string>>());
      }
      ASSERT_EQ(info.inputs.size(), 1u);
      EXPECT_EQ(info.inputs[0].shape, (std::vector<int64_t>{-1, static_cast<int64_t>(num_features())}));
      ASSERT_EQ(info.outputs.size(), 2u);
      EXPECT_EQ(info.outputs[0].name, m["output"].get<std::string>());
      EXPECT_EQ(info.outputs[0].type, m["output_type"] == "int64" ? DataType::kInt64 : DataType::kFloat32);
      EXPECT_EQ(info.outputs[0].width, width);
      EXPECT_EQ(info.outputs[1].name, "margin");
      EXPECT_EQ(info.outputs[1].width, margin_width);
      if (info.outputs[0].name == "probabilities") {
        EXPECT_EQ(info.outputs[0].element_names, (std::vector<std::string>{"0", "1", "2"}));
      }
      const bool trees = m["booster"] != "gblinear";
      EXPECT_EQ(info.concurrent_predict, trees);
      EXPECT_EQ(info.metadata.at("objective"), m["objective"].get<std::string>());
      EXPECT_EQ(info.metadata.at("booster"), m["booster"].get<std::string>());
      EXPECT_EQ(info.metadata.at("format"), format == "binary" ? "binary" : format);
      EXPECT_EQ(info.metadata.at("num_classes"), std::to_string(m["num_classes"].get<int>()));
      EXPECT_EQ(info.metadata.at("num_boosted_rounds"), std::to_string(m["num_boosted_rounds"].get<int>()));
      EXPECT_EQ(info.metadata.at("base_score"), "0.5");
      if (trees) {
        EXPECT_EQ(info.metadata.at("num_trees"), std::to_string(m["num_trees"].get<int>()));
      }
      if (name == "binary" || name == "regression") {
        EXPECT_GE(m["num_trees"].get<int>(), 100);  // the issue asks >= 100 trees of depth 6
      }
      if (name == "multiclass") {
        EXPECT_GE(m["num_trees"].get<int>(), 300);
      }

      std::vector<OutputTensor> outputs;
      ASSERT_TRUE(model.Predict(features_->data(), rows(), num_features(), &outputs).ok());
      ASSERT_EQ(outputs.size(), 2u);
      double max_diff[2] = {0, 0};
      for (size_t r = 0; r < rows(); ++r) {
        for (size_t o = 0; o < 2; ++o) {
          const size_t w = outputs[o].width;
          for (size_t e = 0; e < w; ++e) {
            const double want = expected.rows[r][1 + (o == 0 ? 0 : width) + e];
            const double got = outputs[o].values.NumericAt(r * w + e);
            const double diff = std::fabs(got - want);
            ASSERT_TRUE(diff <= kTolerance) << "id " << r + 1 << " output " << info.outputs[o].name << "[" << e
                                            << "]: got " << got << ", Booster.predict " << want;
            max_diff[o] = std::max(max_diff[o], diff);
          }
        }
      }
      std::cout << name << " " << format << ": max |diff| " << max_diff[0] << " (" << info.outputs[0].name << "), "
                << max_diff[1] << " (margin)\n";
      ++checked;

      // Batches of 1 (the first 20 rows) and of 777 give the same bits as the whole.
      std::vector<OutputTensor> piece;
      for (size_t start = 0; start < rows();) {
        const size_t n = std::min(rows() - start, start < 20 ? size_t{1} : size_t{777});
        ASSERT_TRUE(model.Predict(features_->data() + start * num_features(), n, num_features(), &piece).ok());
        for (size_t o = 0; o < 2; ++o) {
          const size_t w = outputs[o].width;
          const size_t bytes = n * w * (o == 0 && info.outputs[0].type == DataType::kInt64 ? 8 : 4);
          const char* all = o == 0 && info.outputs[0].type == DataType::kInt64
                                ? reinterpret_cast<const char*>(outputs[o].values.int64s().data() + start * w)
                                : reinterpret_cast<const char*>(outputs[o].values.float32s().data() + start * w);
          const char* part = o == 0 && info.outputs[0].type == DataType::kInt64
                                 ? reinterpret_cast<const char*>(piece[o].values.int64s().data())
                                 : reinterpret_cast<const char*>(piece[o].values.float32s().data());
          ASSERT_EQ(std::memcmp(all, part, bytes), 0) << "rows " << start << ".." << start + n;
        }
        start += n;
      }
    }
  }
  EXPECT_EQ(checked, 12u);
}

// ThreadSanitizer cannot see libgomp's barriers: OpenMP teams (model.threads > 1)
// show up as races there, so TSan builds check one OpenMP thread per call only.
#if defined(__SANITIZE_THREAD__)
constexpr int kOpenMpThreads = 1;
#else
constexpr int kOpenMpThreads = 2;
#endif

TEST_F(XgboostReferenceTest, ThreadsAndConcurrentCallersGiveTheSameBits) {
  Result<std::unique_ptr<Model>> one = Load("multiclass.ubj", "xgboost", {"margin"}, 1);
  Result<std::unique_ptr<Model>> two = Load("multiclass.ubj", "xgboost", {"margin"}, kOpenMpThreads);
  ASSERT_TRUE(one.ok() && two.ok());
  std::vector<OutputTensor> a, b;
  ASSERT_TRUE((*one)->Predict(features_->data(), rows(), num_features(), &a).ok());
  ASSERT_TRUE((*two)->Predict(features_->data(), rows(), num_features(), &b).ok());
  const std::string single = Bytes(a);
  EXPECT_TRUE(Bytes(b) == single);

  // Four threads on one model (the big one: 300 trees), each twice.
  ASSERT_TRUE((*two)->info().concurrent_predict);
  std::vector<std::string> results(4);
  std::vector<Status> errors(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<OutputTensor> out;
      for (int round = 0; round < 2 && errors[t].ok(); ++round) {
        errors[t] = (*two)->Predict(features_->data(), rows(), num_features(), &out);
        if (errors[t].ok()) results[t] = Bytes(out);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    ASSERT_TRUE(errors[t].ok()) << errors[t].ToString();
    EXPECT_TRUE(results[t] == single) << "thread " << t;
  }
}

TEST_F(XgboostReferenceTest, MarginOnlyWhenRequested) {
  for (const std::vector<std::string>& requested :
       {std::vector<std::string>{}, std::vector<std::string>{"probability", "no_such_output"}}) {
    Result<std::unique_ptr<Model>> model = Load("binary.json", "auto", requested);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ASSERT_EQ((*model)->info().outputs.size(), 1u);
    EXPECT_EQ((*model)->info().outputs[0].name, "probability");
  }
}

TEST_F(XgboostReferenceTest, ReadsThroughEnv) {
  Result<std::string> bytes = ReadFileToString(Env::Default(), kModelDir + "/regression.ubj");
  ASSERT_TRUE(bytes.ok());
  std::unique_ptr<Env> mem = NewMemEnv();
  ASSERT_TRUE(mem->CreateDirs("/models").ok());
  ASSERT_TRUE(WriteFileAtomic(mem.get(), "/models/r.ubj", *bytes).ok());
  ModelOptions options;
  options.path = "/models/r.ubj";
  Result<std::unique_ptr<Model>> model = registry_.Load(mem.get(), "auto", options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->info().outputs[0].name, "value");

  options.path = "/models/missing.ubj";
  Result<std::unique_ptr<Model>> missing = LoadXgboostModel(mem.get(), options);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "model.path: no such file '/models/missing.ubj'");
}

// A bad model is a one-line kCorruption naming the file, never a crash or a huge
// allocation; libxgboost's own messages lose their timestamp, source location
// and stack trace.
void ExpectBadModel(std::string_view bytes, const std::string& path, const std::string& what) {
  ModelOptions options;
  options.path = path;
  Result<std::unique_ptr<Model>> model = LoadXgboostModelFromBytes(bytes, options);
  ASSERT_FALSE(model.ok()) << what << " loaded";
  const std::string& msg = model.status().message();
  EXPECT_EQ(model.status().code(), StatusCode::kCorruption) << what << ": " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << what << ": " << msg;
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << what << ": " << msg;
  EXPECT_EQ(msg.find("Stack trace"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("] "), std::string::npos) << "timestamp left in: " << msg;
  EXPECT_EQ(msg.find(".cc:"), std::string::npos) << "source location left in: " << msg;
}

TEST_F(XgboostReferenceTest, TruncatedModelsAreOneLineErrors) {
  for (const char* file : {"binary.json", "binary.ubj", "binary.bin", "dart.ubj", "gblinear.json"}) {
    Result<std::string> bytes = ReadFileToString(Env::Default(), kModelDir + "/" + file);
    ASSERT_TRUE(bytes.ok());
    const size_t size = bytes->size();
    std::vector<size_t> cuts = {0, 1, 2, 3, 4, 5, 9, 17, 100, 140, 150, 200, 1000, size - 1, size - 2, size - 9};
    for (size_t i = 1; i < 24; ++i) cuts.push_back(size * i / 24);
    for (size_t cut : cuts) {
      if (cut >= size) continue;
      ExpectBadModel(std::string_view(*bytes).substr(0, cut), file,
                     std::string(file) + " cut at " + std::to_string(cut));
    }
  }
}

TEST_F(XgboostReferenceTest, ForeignFilesAreOneLineErrors) {
  Result<std::string> csv = ReadFileToString(Env::Default(), kModelDir + "/features.csv");
  ASSERT_TRUE(csv.ok());
  for (const char* path : {"data.json", "data.ubj", "data.bin", "data.model"}) {
    ExpectBadModel(*csv, path, std::string("CSV as ") + path);
  }
  Result<std::string> jsonl = ReadFileToString(Env::Default(), kModelDir + "/features.jsonl");
  ASSERT_TRUE(jsonl.ok());
  ExpectBadModel(*jsonl, "data.json", "JSON Lines as .json");
  ExpectBadModel(R"({"learner": {"objective": {"name": "binary:logistic"}}})", "other.json", "other JSON");
  ExpectBadModel(R"({"a": [1, 2, 3]})", "other.json", "unrelated JSON");
  ExpectBadModel("", "empty.json", "empty file");

  ModelOptions options;
  options.path = "other.json";
  Result<std::unique_ptr<Model>> model = LoadXgboostModelFromBytes(R"({"a": 1})", options);
  EXPECT_EQ(model.status().message().rfind("other.json: not a valid XGBoost model (json): ", 0), 0u)
      << model.status().message();
}

TEST(XgboostDetectTest, ByExtensionOrContent) {
  EXPECT_TRUE(DetectXgboostModel("m.ubj", ""));
  EXPECT_TRUE(DetectXgboostModel("dir/M.MODEL", ""));
  EXPECT_TRUE(DetectXgboostModel("m.bin", "whatever"));
  EXPECT_TRUE(DetectXgboostModel("m.json", R"({"learner":{"attributes":{},"gradient_booster":{"name":"gbtree"}}})"));
  EXPECT_TRUE(DetectXgboostModel("m.txt", "\n {\"learner\": {\"gradient_booster\": 1}}"));
  EXPECT_TRUE(DetectXgboostModel("model", std::string("binf\0\0\0?", 8)));
  EXPECT_TRUE(DetectXgboostModel("model", std::string("{L\0\0\0\0\0\0\0\x07learner{", 18)));
  EXPECT_FALSE(DetectXgboostModel("m.json", R"({"sluice_linear": 1, "feature_names": ["learner"]})"));
  EXPECT_FALSE(DetectXgboostModel("m.json", "id,learner,gradient_booster\n"));
  EXPECT_FALSE(DetectXgboostModel("m.onnx", "\x08\x07\x12\x07pytorch"));
  EXPECT_FALSE(DetectXgboostModel("m.json", ""));
}

// gblinear has no in-place prediction in libxgboost 1.7: it goes through a
// DMatrix and declares itself not concurrent.
TEST(XgboostLinearTest, PredictsThroughDMatrixAgainstTheReference) {
  Result<xgboost_test::TrainedModel> trained =
      xgboost_test::Train({.objective = "reg:squarederror", .booster = "gblinear", .num_features = 5}, "ubj");
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  Result<xgboost_test::Reference> reference = xgboost_test::Reference::FromJson(trained->json);
  ASSERT_TRUE(reference.ok());
  ModelOptions options;
  options.path = "linear.ubj";
  Result<std::unique_ptr<Model>> model = LoadXgboostModelFromBytes(trained->bytes, options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_FALSE((*model)->info().concurrent_predict);
  EXPECT_EQ((*model)->info().metadata.count("num_trees"), 0u);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {1, 2, 3, 4, 5, nan, -1, 0.5f, nan, 2, nan, nan, nan, nan, nan};
  std::vector<OutputTensor> out;
  ASSERT_TRUE((*model)->Predict(x.data(), 3, 5, &out).ok());
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_NEAR(out[0].values.NumericAt(r), reference->Transformed(x.data() + r * 5)[0], 1e-6) << r;
  }
}

// dart scales each tree by its weight_drop at prediction time.
TEST(XgboostDartTest, WeightedTreesAgainstTheReference) {
  Result<xgboost_test::TrainedModel> trained = xgboost_test::Train(
      {.objective = "reg:squarederror", .booster = "dart", .rounds = 15, .num_features = 6}, "json");
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  Result<xgboost_test::Reference> reference = xgboost_test::Reference::FromJson(trained->json);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  ModelOptions options;
  options.path = "dart.json";
  Result<std::unique_ptr<Model>> model = LoadXgboostModelFromBytes(trained->bytes, options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->info().metadata.at("booster"), "dart");
  EXPECT_EQ((*model)->info().metadata.at("num_trees"), "15");
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(-3.0f, 3.0f);
  std::vector<float> x(200 * 6);
  for (float& v : x) v = value(rng);
  x[7] = std::numeric_limits<float>::quiet_NaN();
  std::vector<OutputTensor> out;
  ASSERT_TRUE((*model)->Predict(x.data(), 200, 6, &out).ok());
  for (size_t r = 0; r < 200; ++r) {
    const double want = reference->Transformed(x.data() + r * 6)[0];
    EXPECT_NEAR(out[0].values.NumericAt(r), want, 1e-6 + 1e-6 * std::fabs(want)) << r;
  }
}

}  // namespace
}  // namespace sluice
