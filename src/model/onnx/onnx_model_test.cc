// The ONNX backend against references computed by the models' own libraries
// (tests/models/gen_onnx_models.py: torch for the MLP, numpy for the ONNX-ML classifiers),
// and its errors for bad models. Needs the CTest fixture onnx_models.
#include "model/onnx/onnx_model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice/env.h"
#include "sluice/model.h"

namespace sluice {
namespace {

constexpr double kTolerance = 1e-5;  // the issue's tolerance against the reference libraries

std::string ModelPath(const std::string& name) {
  return std::string(SLUICE_BINARY_DIR) + "/test_models/onnx/" + name;
}

class OnnxModelTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<Model>> Load(const std::string& path, ModelOptions options = {}) {
    options.path = path;
    return LoadOnnxModel(env_, options);
  }

  std::unique_ptr<Model> MustLoad(const std::string& name, ModelOptions options = {}) {
    Result<std::unique_ptr<Model>> model = Load(ModelPath(name), std::move(options));
    EXPECT_TRUE(model.ok()) << model.status().ToString() << " (models come from `ctest -R gen_onnx_models`)";
    return model.ok() ? std::move(model).value() : nullptr;
  }

  nlohmann::json Reference(const std::string& name) {
    Result<std::string> text = ReadFileToString(env_, ModelPath(name));
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    return text.ok() ? nlohmann::json::parse(*text) : nlohmann::json();
  }

  // A scratch file under the test's temp dir.
  std::string WriteTemp(const std::string& name, const std::string& bytes) {
    const std::string dir = JoinPath(::testing::TempDir(), "sluice_onnx_test_" + std::to_string(::getpid()));
    EXPECT_TRUE(env_->CreateDirs(dir).ok());
    const std::string path = JoinPath(dir, name);
    EXPECT_TRUE(WriteFileAtomic(env_, path, bytes).ok());
    return path;
  }

  // Loading `path` fails with `code`, in one line that names the path.
  Status ExpectLoadError(const std::string& path, StatusCode code) {
    Result<std::unique_ptr<Model>> model = Load(path);
    EXPECT_FALSE(model.ok()) << path;
    if (model.ok()) return Status::OK();
    EXPECT_EQ(model.status().code(), code) << model.status().ToString();
    EXPECT_EQ(model.status().message().find('\n'), std::string::npos) << model.status().message();
    EXPECT_NE(model.status().message().find(path), std::string::npos) << model.status().message();
    return model.status();
  }

  Env* env_ = Env::Default();
};

// Flattens a JSON array of rows (or of numbers) into float32 values.
std::vector<float> Floats(const nlohmann::json& rows) {
  std::vector<float> out;
  for (const auto& row : rows) {
    if (row.is_array()) {
      for (const auto& v : row) out.push_back(v.get<float>());
    } else {
      out.push_back(row.get<float>());
    }
  }
  return out;
}

// Row-major features from per-input columns, in `names` order.
std::vector<float> Interleave(const nlohmann::json& inputs, const std::vector<std::string>& names) {
  const size_t rows = inputs.at(names[0]).size();
  std::vector<float> out(rows * names.size());
  for (size_t c = 0; c < names.size(); ++c) {
    std::vector<float> column = Floats(inputs.at(names[c]));
    for (size_t r = 0; r < rows; ++r) out[r * names.size() + c] = column[r];
  }
  return out;
}

double MaxAbsDiff(const OutputTensor& got, const std::vector<double>& want) {
  EXPECT_EQ(got.values.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < want.size() && i < got.values.size(); ++i) {
    const double d = std::fabs(got.values.NumericAt(i) - want[i]);
    worst = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(worst, d);
  }
  return worst;
}

std::vector<double> Doubles(const nlohmann::json& rows) {
  std::vector<double> out;
  for (const auto& row : rows) {
    if (row.is_array()) {
      for (const auto& v : row) out.push_back(v.get<double>());
    } else {
      out.push_back(row.get<double>());
    }
  }
  return out;
}

TEST_F(OnnxModelTest, MlpMatchesTorch) {
  std::unique_ptr<Model> model = MustLoad("mlp.onnx");
  ASSERT_TRUE(model);
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.backend, "onnx");
  EXPECT_TRUE(info.concurrent_predict);
  EXPECT_EQ(info.num_features, 20u);
  EXPECT_TRUE(info.feature_names.empty());
  ASSERT_EQ(info.inputs.size(), 1u);
  EXPECT_EQ(info.inputs[0].name, "features");
  EXPECT_EQ(info.inputs[0].type, DataType::kFloat32);
  EXPECT_EQ(info.inputs[0].shape, (std::vector<int64_t>{-1, 20}));
  ASSERT_EQ(info.outputs.size(), 1u);
  EXPECT_EQ(info.outputs[0].name, "score");
  EXPECT_EQ(info.outputs[0].type, DataType::kFloat32);
  EXPECT_EQ(info.outputs[0].width, 1u);
  EXPECT_EQ(info.metadata.at("producer_name"), "pytorch");
  EXPECT_EQ(info.metadata.at("opset"), "ai.onnx 17");
  EXPECT_EQ(info.metadata.at("ir_version"), "8");
  EXPECT_EQ(info.metadata.at("model_version"), "3");
  EXPECT_EQ(info.metadata.at("description"), "reference MLP");
  EXPECT_EQ(info.metadata.at("custom.sluice_case"), "mlp");
  EXPECT_EQ(info.metadata.at("batch_size"), "dynamic");
  EXPECT_FALSE(info.metadata.at("onnxruntime_version").empty());

  const nlohmann::json ref = Reference("mlp_reference.json");
  const std::vector<float> x = Floats(ref["inputs"]["features"]);
  const size_t rows = x.size() / 20;
  ASSERT_GT(rows, 100u);
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(x.data(), rows, 20, &outputs).ok());
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_LE(MaxAbsDiff(outputs[0], Doubles(ref["outputs"]["score"])), kTolerance);
}

// A call of more rows than one run takes is scored in several runs: every row
// gets exactly the score it gets in a small call of its own block.
TEST_F(OnnxModelTest, CallsLargerThanOneRunGiveEachRowItsOwnScore) {
  std::unique_ptr<Model> model = MustLoad("mlp.onnx");
  ASSERT_TRUE(model);
  const nlohmann::json ref = Reference("mlp_reference.json");
  const std::vector<float> block = Floats(ref["inputs"]["features"]);
  const size_t block_rows = block.size() / 20;
  std::vector<OutputTensor> alone;
  ASSERT_TRUE(model->Predict(block.data(), block_rows, 20, &alone).ok());
  std::vector<float> x;
  while (x.size() / 20 < 2 * kOnnxRowsPerThread + 7) x.insert(x.end(), block.begin(), block.end());
  const size_t rows = x.size() / 20;
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(x.data(), rows, 20, &outputs).ok());
  ASSERT_EQ(outputs[0].values.size(), rows);
  for (size_t row = 0; row < rows; ++row) {
    ASSERT_EQ(outputs[0].values.float32s()[row], alone[0].values.float32s()[row % block_rows]) << "row " << row;
  }
}

TEST_F(OnnxModelTest, IntraOpThreadsGiveTheSameScores) {
  ModelOptions four;
  four.threads = 4;
  std::unique_ptr<Model> model = MustLoad("mlp.onnx", four);
  ASSERT_TRUE(model);
  const nlohmann::json ref = Reference("mlp_reference.json");
  const std::vector<float> x = Floats(ref["inputs"]["features"]);
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(x.data(), x.size() / 20, 20, &outputs).ok());
  EXPECT_LE(MaxAbsDiff(outputs[0], Doubles(ref["outputs"]["score"])), kTolerance);
}

TEST_F(OnnxModelTest, ZipMapClassifierWithNamedInputsMatchesNumpy) {
  std::unique_ptr<Model> model = MustLoad("clf_zipmap.onnx");
  ASSERT_TRUE(model);
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.num_features, 3u);
  EXPECT_EQ(info.feature_names, (std::vector<std::string>{"amount", "ratio", "count"}));
  ASSERT_EQ(info.inputs.size(), 3u);
  EXPECT_EQ(info.inputs[0].type, DataType::kFloat32);
  EXPECT_EQ(info.inputs[1].type, DataType::kFloat64);
  EXPECT_EQ(info.inputs[2].type, DataType::kInt64);
  EXPECT_EQ(info.inputs[2].shape, (std::vector<int64_t>{-1, 1}));
  ASSERT_EQ(info.outputs.size(), 2u);
  EXPECT_EQ(info.outputs[0].name, "output_label");
  EXPECT_EQ(info.outputs[0].type, DataType::kString);
  EXPECT_EQ(info.outputs[0].width, 1u);
  EXPECT_EQ(info.outputs[1].name, "output_probability");
  EXPECT_EQ(info.outputs[1].type, DataType::kFloat32);
  EXPECT_EQ(info.outputs[1].width, 3u);
  // Class order from the ZipMap node, not ORT's sorted map order (high, low, medium).
  EXPECT_EQ(info.outputs[1].element_names, (std::vector<std::string>{"low", "medium", "high"}));
  EXPECT_EQ(info.metadata.at("opset"), "ai.onnx 17, ai.onnx.ml 3");

  const nlohmann::json ref = Reference("clf_zipmap_reference.json");
  const std::vector<float> x = Interleave(ref["inputs"], info.feature_names);
  const size_t rows = x.size() / 3;
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(x.data(), rows, 3, &outputs).ok());
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_LE(MaxAbsDiff(outputs[1], Doubles(ref["outputs"]["output_probability"])), kTolerance);
  ASSERT_EQ(outputs[0].values.size(), rows);
  for (size_t r = 0; r < rows; ++r) {
    EXPECT_EQ(outputs[0].values.StringAt(r), ref["outputs"]["output_label"][r].get<std::string>()) << "row " << r;
  }
  // The same buffers serve a second, smaller call.
  ASSERT_TRUE(model->Predict(x.data() + 3, 2, 3, &outputs).ok());
  ASSERT_EQ(outputs[0].values.size(), 2u);
  EXPECT_EQ(outputs[0].values.StringAt(0), ref["outputs"]["output_label"][1].get<std::string>());
  EXPECT_EQ(outputs[1].values.size(), 6u);
}

TEST_F(OnnxModelTest, TensorClassifierLearnsTheSymbolicWidth) {
  std::unique_ptr<Model> model = MustLoad("clf_tensor.onnx");
  ASSERT_TRUE(model);
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.num_features, 4u);
  EXPECT_TRUE(info.feature_names.empty());
  ASSERT_EQ(info.outputs.size(), 2u);
  EXPECT_EQ(info.outputs[0].type, DataType::kInt64);
  EXPECT_EQ(info.outputs[1].width, 3u);  // declared [N, "classes"]

  const nlohmann::json ref = Reference("clf_tensor_reference.json");
  const std::vector<float> x = Floats(ref["inputs"]["input"]);
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(x.data(), x.size() / 4, 4, &outputs).ok());
  EXPECT_LE(MaxAbsDiff(outputs[1], Doubles(ref["outputs"]["probabilities"])), kTolerance);
  EXPECT_EQ(MaxAbsDiff(outputs[0], Doubles(ref["outputs"]["label"])), 0.0);
}

TEST_F(OnnxModelTest, ZipMapWithIntKeysKeepsClassOrder) {
  std::unique_ptr<Model> model = MustLoad("clf_zipmap_int.onnx");
  ASSERT_TRUE(model);
  const ModelInfo& info = model->info();
  ASSERT_EQ(info.outputs.size(), 2u);
  EXPECT_EQ(info.outputs[1].element_names, (std::vector<std::string>{"30", "10", "20"}));

  const nlohmann::json ref = Reference("clf_zipmap_int_reference.json");
  const std::vector<float> x = Floats(ref["inputs"]["input"]);
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(x.data(), x.size() / 4, 4, &outputs).ok());
  EXPECT_LE(MaxAbsDiff(outputs[1], Doubles(ref["outputs"]["output_probability"])), kTolerance);
  EXPECT_EQ(MaxAbsDiff(outputs[0], Doubles(ref["outputs"]["label"])), 0.0);
}

// The conformance suite covers concurrent tensor outputs; this covers string labels and
// ZipMaps (per-thread string buffers) from four threads at once.
TEST_F(OnnxModelTest, ConcurrentClassifierCallsAgree) {
  std::unique_ptr<Model> model = MustLoad("clf_zipmap.onnx");
  ASSERT_TRUE(model);
  ASSERT_TRUE(model->info().concurrent_predict);
  const nlohmann::json ref = Reference("clf_zipmap_reference.json");
  const std::vector<float> x = Interleave(ref["inputs"], model->info().feature_names);
  const size_t rows = x.size() / 3;
  std::vector<OutputTensor> single;
  ASSERT_TRUE(model->Predict(x.data(), rows, 3, &single).ok());
  std::vector<std::vector<OutputTensor>> results(4);
  std::vector<Status> errors(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5 && errors[t].ok(); ++round) errors[t] = model->Predict(x.data(), rows, 3, &results[t]);
    });
  }
  for (std::thread& th : threads) th.join();
  for (size_t t = 0; t < 4; ++t) {
    ASSERT_TRUE(errors[t].ok()) << errors[t].ToString();
    for (size_t r = 0; r < rows; ++r) ASSERT_EQ(results[t][0].values.StringAt(r), single[0].values.StringAt(r));
    EXPECT_TRUE(std::equal(single[1].values.float32s().begin(), single[1].values.float32s().end(),
                           results[t][1].values.float32s().begin()));
  }
}

TEST_F(OnnxModelTest, RequestedOutputsSelectAndAreChecked) {
  ModelOptions options;
  options.requested_outputs = {"output_probability"};
  std::unique_ptr<Model> model = MustLoad("clf_zipmap.onnx", options);
  ASSERT_TRUE(model);
  ASSERT_EQ(model->info().outputs.size(), 1u);
  EXPECT_EQ(model->info().outputs[0].name, "output_probability");
  const float row[3] = {5.0f, 0.5f, 3.0f};
  std::vector<OutputTensor> outputs;
  ASSERT_TRUE(model->Predict(row, 1, 3, &outputs).ok());
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].values.size(), 3u);

  options.requested_outputs = {"output_label", "proba"};
  options.path = ModelPath("clf_zipmap.onnx");
  Result<std::unique_ptr<Model>> bad = LoadOnnxModel(env_, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "model.outputs: the model '" + options.path +
                                        "' has no output 'proba' (outputs: output_label, output_probability)");
}

TEST_F(OnnxModelTest, NanIntoAnInt64InputIsAnErrorNamingTheInput) {
  std::unique_ptr<Model> model = MustLoad("clf_zipmap.onnx");
  ASSERT_TRUE(model);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float rows[9] = {1.0f, 0.5f, 2.0f, 1.0f, 0.5f, nan, 1.0f, 0.5f, 3.0f};
  std::vector<OutputTensor> outputs;
  Status status = model->Predict(rows, 3, 3, &outputs);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "onnx model '" + ModelPath("clf_zipmap.onnx") +
                                  "': input 'count' (feature 2) is int64 but row 1 of the batch holds NaN");
  // NaN into the float and double inputs is fine (the classifier propagates it).
  const float ok_rows[3] = {nan, nan, 2.0f};
  EXPECT_TRUE(model->Predict(ok_rows, 1, 3, &outputs).ok());
  // Integral values round to nearest; 2.5 -> 3 like 3.0.
  const float half[6] = {1.0f, 0.5f, 2.5f, 1.0f, 0.5f, 3.0f};
  ASSERT_TRUE(model->Predict(half, 2, 3, &outputs).ok());
  for (size_t e = 0; e < 3; ++e) EXPECT_EQ(outputs[1].values.NumericAt(e), outputs[1].values.NumericAt(3 + e));
}

TEST_F(OnnxModelTest, FixedBatchModelRunsRowByRow) {
  std::unique_ptr<Model> fixed = MustLoad("fixed_batch.onnx");
  std::unique_ptr<Model> dynamic = MustLoad("conformance_mlp.onnx");
  ASSERT_TRUE(fixed && dynamic);
  EXPECT_EQ(fixed->info().metadata.at("batch_size"), "1");
  EXPECT_EQ(fixed->info().inputs[0].shape, (std::vector<int64_t>{1, 7}));
  std::vector<float> x(5 * 7);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 11) * 0.3f - 1.5f;
  std::vector<OutputTensor> a, b;
  ASSERT_TRUE(fixed->Predict(x.data(), 5, 7, &a).ok());
  ASSERT_TRUE(dynamic->Predict(x.data(), 5, 7, &b).ok());
  ASSERT_EQ(a[0].values.size(), 5u);
  for (size_t r = 0; r < 5; ++r) EXPECT_NEAR(a[0].values.NumericAt(r), b[0].values.NumericAt(r), 1e-6) << r;
}

TEST_F(OnnxModelTest, MissingFileIsNotFound) {
  const std::string path = ModelPath("no_such_model.onnx");
  Status status = ExpectLoadError(path, StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "model.path: no such file '" + path + "'");
}

TEST_F(OnnxModelTest, TruncatedFileIsCorruption) {
  Result<std::string> bytes = ReadFileToString(env_, ModelPath("mlp.onnx"));
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const std::string path = WriteTemp("truncated.onnx", bytes->substr(0, bytes->size() / 2));
  Status status = ExpectLoadError(path, StatusCode::kCorruption);
  EXPECT_EQ(status.message().rfind("model.path '" + path + "': not a valid ONNX model (", 0), 0u)
      << status.message();
}

TEST_F(OnnxModelTest, CsvRenamedOnnxIsCorruption) {
  const std::string path = WriteTemp("data.onnx", "id,f0,f1\n1,0.5,0.25\n2,0.75,1.5\n");
  Status status = ExpectLoadError(path, StatusCode::kCorruption);
  EXPECT_NE(status.message().find("not a valid ONNX model"), std::string::npos) << status.message();
  (void)ExpectLoadError(WriteTemp("empty.onnx", ""), StatusCode::kCorruption);
}

TEST_F(OnnxModelTest, UnknownOperatorIsNotSupported) {
  Status status = ExpectLoadError(ModelPath("unknown_op.onnx"), StatusCode::kNotSupported);
  EXPECT_NE(status.message().find("NoSuchOp"), std::string::npos) << status.message();
}

TEST_F(OnnxModelTest, FutureOpsetIsNotSupported) {
  Status status = ExpectLoadError(ModelPath("future_opset.onnx"), StatusCode::kNotSupported);
  EXPECT_NE(status.message().find("99"), std::string::npos) << status.message();
  // The throwing site ORT prefixes to this message is dropped.
  EXPECT_EQ(status.message().find(".h:"), std::string::npos) << status.message();
}

TEST_F(OnnxModelTest, StringInputTakesText) {
  std::unique_ptr<Model> model = MustLoad("string_input.onnx");
  ASSERT_NE(model, nullptr);
  const ModelInfo& info = model->info();
  ASSERT_EQ(info.num_features, 3u);
  ASSERT_EQ(info.inputs.size(), 3u);
  EXPECT_EQ(info.inputs[0].type, DataType::kString);
  EXPECT_EQ(info.inputs[1].type, DataType::kFloat32);

  const nlohmann::json ref = Reference("string_input_reference.json");
  const nlohmann::json& merchant = ref["inputs"]["merchant"];
  const std::vector<float> amount = Floats(ref["inputs"]["amount"]);
  const std::vector<float> ratio = Floats(ref["inputs"]["ratio"]);
  const std::vector<float> expected = Floats(ref["outputs"]["score"]);
  const size_t rows = merchant.size();
  ASSERT_EQ(expected.size(), rows);
  Column text(DataType::kString);
  std::vector<float> x;
  for (size_t row_idx = 0; row_idx < rows; ++row_idx) {
    text.AppendString(merchant[row_idx].get<std::string>());
    x.insert(x.end(), {std::numeric_limits<float>::quiet_NaN(), amount[row_idx], ratio[row_idx]});
  }
  std::vector<OutputTensor> outputs;
  Status status = model->PredictWithText(x.data(), rows, 3, {&text, nullptr, nullptr}, &outputs);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(outputs.size(), 1u);
  ASSERT_EQ(outputs[0].values.size(), rows);
  for (size_t row_idx = 0; row_idx < rows; ++row_idx) {
    EXPECT_NEAR(outputs[0].values.float32s()[row_idx], expected[row_idx], kTolerance) << "row " << row_idx;
  }

  // The string input needs its text; a numeric input takes none.
  status = model->Predict(x.data(), rows, 3, &outputs);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_NE(status.message().find("input 'merchant' (feature 0) is a string tensor and needs text"),
            std::string::npos) << status.message();
  status = model->PredictWithText(x.data(), rows, 3, {&text, &text, nullptr}, &outputs);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  // A text column shorter than the rows.
  Column short_text(DataType::kString);
  short_text.AppendString("grocery");
  status = model->PredictWithText(x.data(), rows, 3, {&short_text, nullptr, nullptr}, &outputs);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
}

TEST_F(OnnxModelTest, DynamicFeatureWidthIsNotSupported) {
  Status status = ExpectLoadError(ModelPath("dynamic_width.onnx"), StatusCode::kNotSupported);
  EXPECT_NE(status.message().find("model input 'x' has shape [?, ?]"), std::string::npos) << status.message();
}

TEST_F(OnnxModelTest, ThreadsMustBePositive) {
  ModelOptions options;
  options.threads = 0;
  Result<std::unique_ptr<Model>> model = Load(ModelPath("mlp.onnx"), options);
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(OnnxModelTest, DetectsByExtensionOrContent) {
  Result<std::string> bytes = ReadFileToString(env_, ModelPath("mlp.onnx"));
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_TRUE(DetectOnnxModel("m.onnx", ""));
  EXPECT_TRUE(DetectOnnxModel("M.ONNX", ""));
  EXPECT_TRUE(DetectOnnxModel("model.bin", *bytes));
  EXPECT_FALSE(DetectOnnxModel("data.csv", "id,f0\n1,2\n"));
  EXPECT_FALSE(DetectOnnxModel("model.json", R"({"sluice_linear": 1})"));

  // The registry's "auto" picks the backend for a model under another name.
  ModelRegistry registry;
  RegisterBuiltinModels(&registry);
  const std::string renamed = WriteTemp("model.bin", *bytes);
  Result<std::string> kind = registry.Detect(env_, renamed);
  ASSERT_TRUE(kind.ok()) << kind.status().ToString();
  EXPECT_EQ(*kind, "onnx");
  ModelOptions options;
  options.path = renamed;
  Result<std::unique_ptr<Model>> model = registry.Load(env_, "auto", options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->info().backend, "onnx");
}

// ---- execution.batch_timeout ----------------------------------------------------------

constexpr size_t kSlowWidth = 256;  // slow_chain.onnx: [N, 256] through 5000 MatMuls
// Rows that keep slow_chain.onnx busy for well over 20 s (5.5 TFLOP: about 40 s on one core
// here); a few rows take tens of milliseconds.
constexpr size_t kSlowRows = 8192;

// Rows of distinct values, so that a permutation of the columns shows.
std::vector<float> SlowInput(size_t rows) {
  std::vector<float> x(rows * kSlowWidth);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 9973) * 0.25f - 1000.0f;
  return x;
}

class OnnxBatchTimeoutTest : public OnnxModelTest {
 protected:
  void SetUp() override {
    const nlohmann::json ref = Reference("slow_chain.json");
    source_ = ref["source"].get<std::vector<size_t>>();
    ASSERT_EQ(source_.size(), kSlowWidth);
  }

  std::unique_ptr<Model> LoadSlow(int64_t batch_timeout_ms) {
    ModelOptions options;
    options.batch_timeout_ms = batch_timeout_ms;
    return MustLoad("slow_chain.onnx", options);
  }

  // The chain permutes the columns exactly: y[r][j] = x[r][source[j]].
  void ExpectPermuted(const std::vector<float>& x, size_t rows, const std::vector<OutputTensor>& outputs) {
    ASSERT_EQ(outputs.size(), 1u);
    ASSERT_EQ(outputs[0].values.size(), rows * kSlowWidth);
    const auto y = outputs[0].values.float32s();
    for (size_t row_idx = 0; row_idx < rows; ++row_idx) {
      for (size_t col_idx = 0; col_idx < kSlowWidth; ++col_idx) {
        ASSERT_EQ(y[row_idx * kSlowWidth + col_idx], x[row_idx * kSlowWidth + source_[col_idx]])
            << "row " << row_idx << ", column " << col_idx;
      }
    }
  }

  // The call times out with a one-line kTimeout naming the model and the timeout.
  void ExpectTimeout(const Status& status, int64_t batch_timeout_ms) {
    EXPECT_EQ(status.code(), StatusCode::kTimeout) << status.ToString();
    EXPECT_EQ(status.message(), "onnx model '" + ModelPath("slow_chain.onnx") + "': execution.batch_timeout of " +
                                    std::to_string(batch_timeout_ms) + " ms exceeded scoring " +
                                    std::to_string(kSlowRows) + " rows; the run was stopped");
  }

  std::vector<size_t> source_;
};

// The run is stopped, not waited for: without the terminate flag this call takes well over
// 20 s, and the test would not return before CTest's limit on a loaded machine either way.
TEST_F(OnnxBatchTimeoutTest, SlowRunIsStoppedAtTheDeadline) {
  std::unique_ptr<Model> model = LoadSlow(50);
  ASSERT_TRUE(model);
  const std::vector<float> x = SlowInput(kSlowRows);
  std::vector<OutputTensor> outputs;
  const auto start = std::chrono::steady_clock::now();
  const Status status = model->Predict(x.data(), kSlowRows, kSlowWidth, &outputs);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  ExpectTimeout(status, 50);
  RecordProperty("stopped_after_ms", std::to_string(took.count()));
}

TEST_F(OnnxBatchTimeoutTest, SessionStaysUsableAfterAStoppedRun) {
  std::unique_ptr<Model> model = LoadSlow(2000);
  ASSERT_TRUE(model);
  const std::vector<float> x = SlowInput(kSlowRows);
  std::vector<OutputTensor> outputs;
  ExpectTimeout(model->Predict(x.data(), kSlowRows, kSlowWidth, &outputs), 2000);
  // The next calls, each with its own deadline, run to the end and score right.
  for (size_t rows : {4u, 1u, 37u}) {
    const Status status = model->Predict(x.data(), rows, kSlowWidth, &outputs);
    ASSERT_TRUE(status.ok()) << status.ToString();
    ExpectPermuted(x, rows, outputs);
  }
}

// Also the largest timeout there is (which must not overflow the deadline arithmetic).
TEST_F(OnnxBatchTimeoutTest, FastCallsWithAGenerousTimeoutAreUnaffected) {
  const nlohmann::json ref = Reference("mlp_reference.json");
  const std::vector<float> x = Floats(ref["inputs"]["features"]);
  const std::vector<double> want = Doubles(ref["outputs"]["score"]);
  for (int64_t timeout_ms : {int64_t{60000}, std::numeric_limits<int64_t>::max()}) {
    ModelOptions options;
    options.batch_timeout_ms = timeout_ms;
    std::unique_ptr<Model> model = MustLoad("mlp.onnx", options);
    ASSERT_TRUE(model);
    std::vector<OutputTensor> outputs;
    for (int round = 0; round < 20; ++round) {
      const Status status = model->Predict(x.data(), x.size() / 20, 20, &outputs);
      ASSERT_TRUE(status.ok()) << timeout_ms << " ms: " << status.ToString();
      ASSERT_LE(MaxAbsDiff(outputs[0], want), kTolerance) << timeout_ms << " ms, round " << round;
    }
  }
}

// Four threads share one model: the one with a large batch is stopped, the three scoring
// small batches meanwhile (each call its own RunOptions) are not.
TEST_F(OnnxBatchTimeoutTest, ConcurrentCallsTimeOutAlone) {
  std::unique_ptr<Model> model = LoadSlow(2000);
  ASSERT_TRUE(model);
  ASSERT_TRUE(model->info().concurrent_predict);
  const std::vector<float> x = SlowInput(kSlowRows);
  constexpr size_t kSmallRows = 8;
  std::atomic<bool> slow_done{false};
  Status slow_status;
  std::vector<OutputTensor> slow_outputs;
  std::vector<Status> errors(3);
  std::vector<std::vector<OutputTensor>> results(3);
  std::vector<int> rounds(3, 0);
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    slow_status = model->Predict(x.data(), kSlowRows, kSlowWidth, &slow_outputs);
    slow_done = true;
  });
  for (size_t t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      while (errors[t].ok() && (rounds[t] < 3 || !slow_done)) {
        errors[t] = model->Predict(x.data() + t * kSmallRows * kSlowWidth, kSmallRows, kSlowWidth, &results[t]);
        ++rounds[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  ExpectTimeout(slow_status, 2000);
  for (size_t t = 0; t < 3; ++t) {
    ASSERT_TRUE(errors[t].ok()) << "thread " << t << " round " << rounds[t] << ": " << errors[t].ToString();
    std::vector<float> rows(x.begin() + t * kSmallRows * kSlowWidth, x.begin() + (t + 1) * kSmallRows * kSlowWidth);
    ExpectPermuted(rows, kSmallRows, results[t]);
  }
}

TEST_F(OnnxModelTest, NegativeBatchTimeoutIsInvalid) {
  ModelOptions options;
  options.batch_timeout_ms = -5;
  Result<std::unique_ptr<Model>> model = Load(ModelPath("mlp.onnx"), options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model.status().message(), "execution.batch_timeout: must not be negative, got -5 ms");
}

}  // namespace
}  // namespace sluice
