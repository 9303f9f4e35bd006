#include "model/fake/fake_model.h"

#include <atomic>
#include <cmath>
#include <utility>
#include <vector>

#include "model/json_model_file.h"

namespace sluice {

namespace {

class FakeModel final : public Model {
 public:
  FakeModel(ModelInfo info, const FakeModelOptions& options) : info_(std::move(info)), options_(options) {}

  const ModelInfo& info() const override { return info_; }

  Status Predict(const float* features, size_t rows, size_t cols,
                 std::vector<OutputTensor>* outputs) override {
    if (cols != options_.num_features) {
      return Status::InvalidArgument("fake model: input has " + std::to_string(cols) +
                                     " features per row, expected " + std::to_string(options_.num_features));
    }
    if (options_.delay_ms > 0) options_.env->SleepForMicros(static_cast<uint64_t>(options_.delay_ms) * 1000);
    if (calls_.fetch_add(1, std::memory_order_relaxed) < options_.fail_calls) {
      return Status(options_.fail_code, "fake model: injected failure");
    }
    const size_t width = options_.outputs;
    outputs->resize(1);
    OutputTensor& tensor = (*outputs)[0];
    tensor.width = width;
    if (tensor.values.type() != DataType::kFloat32) tensor.values = Column(DataType::kFloat32);
    tensor.values.Resize(rows * width);
    std::span<float> out = tensor.values.mutable_float32s();
    for (size_t row_idx = 0; row_idx < rows; ++row_idx) {
      const float* x = features + row_idx * cols;
      double base = 0;
      for (size_t f = 0; f < cols; ++f) {
        if (std::isfinite(x[f])) base += static_cast<double>(x[f]) * static_cast<double>(f + 1) * 0.001;
      }
      for (size_t j = 0; j < width; ++j) {
        const double v = base + static_cast<double>(j) * 0.1;
        float score = static_cast<float>(v - std::floor(v));
        // Rounding to float can reach 1.0; keep the promise of [0, 1).
        if (score >= 1.0f) score = std::nextafter(1.0f, 0.0f);
        out[row_idx * width + j] = score;
      }
    }
    return Status::OK();
  }

 private:
  const ModelInfo info_;
  const FakeModelOptions options_;
  std::atomic<int64_t> calls_{0};
};

Result<StatusCode> ParseStatusCode(const std::string& name, const std::string& path) {
  std::string known;
  for (int c = static_cast<int>(StatusCode::kInvalidArgument); c <= static_cast<int>(StatusCode::kTimeout); ++c) {
    const StatusCode code = static_cast<StatusCode>(c);
    if (StatusCodeName(code) == name) return code;
    if (!known.empty()) known += ", ";
    known += StatusCodeName(code);
  }
  return Status::Corruption(path + ": fail_code '" + name + "' is not a status code (expected one of: " +
                            known + ")");
}

}  // namespace

Result<std::unique_ptr<Model>> MakeFakeModel(const FakeModelOptions& options) {
  if (options.num_features < 1) return Status::InvalidArgument("fake model: num_features must be >= 1");
  if (options.outputs < 1) return Status::InvalidArgument("fake model: outputs must be >= 1");
  if (options.fail_calls < 0) return Status::InvalidArgument("fake model: fail_calls must be >= 0");
  if (options.fail_code == StatusCode::kOk) {
    return Status::InvalidArgument("fake model: fail_code must be an error code, not ok");
  }
  if (options.delay_ms < 0) return Status::InvalidArgument("fake model: delay_ms must be >= 0");
  if (options.delay_ms > 0 && options.env == nullptr) {
    return Status::InvalidArgument("fake model: delay_ms needs an Env to sleep on");
  }
  ModelInfo info;
  info.backend = "fake";
  info.num_features = options.num_features;
  info.outputs.push_back(ModelOutputInfo{.name = "score", .type = DataType::kFloat32, .width = options.outputs});
  info.concurrent_predict = true;
  return std::unique_ptr<Model>(std::make_unique<FakeModel>(std::move(info), options));
}

bool DetectFakeModel(std::string_view path, std::string_view head) {
  return JsonFileHasMarker(path, head, "sluice_fake");
}

Result<std::unique_ptr<Model>> LoadFakeModel(Env* env, const ModelOptions& options) {
  const std::string& path = options.path;
  ASSIGN_OR_RETURN(nlohmann::json doc, ReadJsonModelFile(env, path));
  RETURN_IF_ERROR(CheckJsonFormatVersion(doc, path, "sluice_fake", 1));
  RETURN_IF_ERROR(
      CheckJsonKeys(doc, path, {"sluice_fake", "num_features", "outputs", "fail_calls", "fail_code", "delay_ms"}));
  FakeModelOptions fake;
  fake.env = env;
  ASSIGN_OR_RETURN(int64_t num_features, GetJsonInt(doc, path, "num_features", std::nullopt, 1));
  ASSIGN_OR_RETURN(int64_t outputs, GetJsonInt(doc, path, "outputs", 1, 1));
  ASSIGN_OR_RETURN(fake.fail_calls, GetJsonInt(doc, path, "fail_calls", 0, 0));
  ASSIGN_OR_RETURN(fake.delay_ms, GetJsonInt(doc, path, "delay_ms", 0, 0));
  fake.num_features = static_cast<size_t>(num_features);
  fake.outputs = static_cast<size_t>(outputs);
  if (auto code = doc.find("fail_code"); code != doc.end()) {
    if (!code->is_string()) return Status::Corruption(path + ": fail_code must be a string");
    ASSIGN_OR_RETURN(fake.fail_code, ParseStatusCode(code->get<std::string>(), path));
  }
  return MakeFakeModel(fake);
}

}  // namespace sluice
