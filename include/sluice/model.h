// Model: one interface for every backend (linear, fake; ONNX Runtime and XGBoost
// join through the same registry).
//
// Input: a row-major float32 matrix [rows x cols] built by preprocessing; NaN
// marks a missing value. Output: one OutputTensor per entry of info().outputs,
// each [rows x width], row-major, in the output's declared type.
//
// Thread-safety: Predict may be called from several threads at once if and only
// if info().concurrent_predict is true; otherwise callers serialize.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/batch.h"
#include "sluice/env.h"
#include "sluice/status.h"

namespace sluice {

struct ModelOutputInfo {
  std::string name;
  DataType type = DataType::kFloat32;  // kFloat32, kFloat64, kInt64 or kString
  size_t width = 1;                    // values per row
  // Names of the width entries (e.g. class labels of a probabilities output), in
  // element order; empty when the model does not name them.
  std::vector<std::string> element_names{};
};

// One input of the model file as the model declares it, for `sluice inspect`.
// Backends whose input is simply the feature vector (linear, fake) may leave
// ModelInfo::inputs empty.
struct ModelInputInfo {
  std::string name;
  DataType type = DataType::kFloat32;
  std::vector<int64_t> shape{};  // -1 = dynamic dimension
};

struct ModelInfo {
  std::string backend;                     // "linear", "fake", ...
  std::vector<std::string> feature_names;  // empty when the model does not name them
  size_t num_features = 0;                 // input width the model requires
  std::vector<ModelInputInfo> inputs;      // the model file's own inputs; may be empty
  std::vector<ModelOutputInfo> outputs;
  // Backend facts as text, e.g. "objective", "num_trees", "num_classes",
  // "num_boosted_rounds", "producer_name", "opset".
  std::map<std::string, std::string> metadata;
  bool concurrent_predict = false;
};

struct OutputTensor {
  size_t width = 1;
  Column values{DataType::kFloat32};  // rows * width values, row-major
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  // Scores `rows` rows of `cols` features. `outputs` is resized to
  // info().outputs.size(); each tensor gets rows*width values.
  // Errors: kInvalidArgument if cols != info().num_features; backend failures as
  // returned by the backend (transient codes only for retryable conditions).
  virtual Status Predict(const float* features, size_t rows, size_t cols,
                         std::vector<OutputTensor>* outputs) = 0;

  // Scores rows some of whose features are text: for models that declare one
  // input per feature (info().inputs.size() == info().num_features) with string
  // inputs among them. `text` has one entry per feature (or is empty):
  // text[i] is the kString column holding feature i for the `rows` rows (the
  // compacted OK rows, in the order of the matrix rows; at least `rows` values,
  // none null) when input i is declared kString, else nullptr; `features` holds
  // NaN in the columns of text features. The pointers are borrowed for the call.
  // The default implementation calls Predict when no entry of `text` is set,
  // and returns kNotSupported otherwise. Thread-safety as for Predict.
  virtual Status PredictWithText(const float* features, size_t rows, size_t cols,
                                 const std::vector<const Column*>& text, std::vector<OutputTensor>* outputs);
};

struct ModelOptions {
  std::string path;
  int threads = 1;  // intra-op threads, for backends that have them
  // Model output names referenced by model.outputs; empty = the backend's default
  // set. Backends may expose optional outputs (e.g. a raw margin) only when requested.
  std::vector<std::string> requested_outputs{};
  // execution.batch_timeout in milliseconds; 0 = none. Backends that can stop
  // a running prediction (ONNX Runtime, through RunOptions::SetTerminate) stop
  // it at the deadline and return kTimeout; the caller fails a late call of any
  // other backend as timed out once it returns.
  int64_t batch_timeout_ms = 0;
};

// The table of model backends. Not thread-safe for registration; Load is safe
// for concurrent use once registration is done.
class ModelRegistry {
 public:
  // Returns true when the backend recognizes the file by extension or content
  // (head = first bytes of the file, up to 1 MiB).
  using DetectFn = std::function<bool(std::string_view path, std::string_view head)>;
  using LoadFn = std::function<Result<std::unique_ptr<Model>>(Env*, const ModelOptions&)>;
  // Makes the backend's process-wide runtime, which every Load needs first
  // (ONNX Runtime's environment: about 10 ms). Errors are left for Load to report.
  using WarmFn = std::function<void()>;

  // kAlreadyExists for a duplicate name. `warm` may be empty.
  Status Register(std::string name, DetectFn detect, LoadFn load, WarmFn warm = nullptr);
  // Names in registration order.
  std::vector<std::string> names() const;

  // Loads the model with backend `kind`, or the first backend whose DetectFn
  // accepts the file when kind is "auto". Errors name the path.
  Result<std::unique_ptr<Model>> Load(Env* env, std::string_view kind,
                                      const ModelOptions& options) const;
  // The backend "auto" would choose for this file.
  Result<std::string> Detect(Env* env, const std::string& path) const;
  // Runs backend `kind`'s WarmFn (the detected backend for "auto"), so that a
  // caller can pay for it beside other work before the first Load. Does
  // nothing when the backend has none or `kind` names none. Thread-safe.
  void Warm(Env* env, std::string_view kind, const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DetectFn detect;
    LoadFn load;
    WarmFn warm;
  };
  // Backend `kind`, or the one detected for `path` when `kind` is "auto".
  Result<const Entry*> Find(Env* env, std::string_view kind, const std::string& path) const;
  std::vector<Entry> entries_;
};

// Registers the backends compiled into this build: "linear", "fake", and "onnx" /
// "xgboost" when built with ONNX Runtime / XGBoost (SLUICE_WITH_ONNX / SLUICE_WITH_XGBOOST).
void RegisterBuiltinModels(ModelRegistry* registry);

}  // namespace sluice
