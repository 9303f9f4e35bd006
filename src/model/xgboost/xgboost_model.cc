#include "model/xgboost/xgboost_model.h"

#include <omp.h>
#include <xgboost/c_api.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "model/json_model_file.h"
#include "model/xgboost/xgboost_format.h"

namespace sluice {

namespace {

// ---- errors --------------------------------------------------------------------

// libxgboost's last error on this thread, reduced to one line for users:
// "[19:34:44] ./src/learner.cc:1017: Check failed: ... : BoostLearner: wrong
// model format\nStack trace: ..." -> "Check failed: ... : BoostLearner: wrong
// model format".
std::string LastXgboostError() {
  const char* raw = XGBGetLastError();
  std::string_view msg = raw != nullptr ? raw : "";
  msg = msg.substr(0, msg.find('\n'));
  if (!msg.empty() && msg.front() == '[') {  // timestamp
    const size_t close = msg.find("] ");
    if (close != std::string_view::npos) msg.remove_prefix(close + 2);
  }
  // Source location "path/file.cc:123: ": no spaces, ends in ":<digits>".
  const size_t sep = msg.find(": ");
  if (sep != std::string_view::npos) {
    const std::string_view location = msg.substr(0, sep);
    const size_t colon = location.rfind(':');
    const bool digits =
        colon != std::string_view::npos && colon + 1 < location.size() &&
        std::all_of(location.begin() + colon + 1, location.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits && location.find(' ') == std::string_view::npos) msg.remove_prefix(sep + 2);
  }
  while (!msg.empty() && (msg.back() == ' ' || msg.back() == ':')) msg.remove_suffix(1);
  return msg.empty() ? std::string("unknown XGBoost error") : std::string(msg);
}

// OK for rc == 0; otherwise `code` with "context: <libxgboost's message>".
Status XgbCall(int rc, StatusCode code, const std::string& context) {
  if (rc == 0) return Status::OK();
  return Status(code, context + ": " + LastXgboostError());
}

// Sets the calling thread's OpenMP team size for a scope and restores it after.
// libxgboost parses a model (in parallel over trees) before its own "nthread"
// takes effect, so with OpenMP's default it would use every core whatever
// model.threads says; and ThreadSanitizer, which cannot see libgomp's barriers,
// reports those worker threads as races.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~ScopedOmpThreads() { omp_set_num_threads(saved_); }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  const int saved_;
};

struct BoosterDeleter {
  void operator()(void* handle) const { XGBoosterFree(handle); }
};
using BoosterPtr = std::unique_ptr<void, BoosterDeleter>;

struct DMatrixDeleter {
  void operator()(void* handle) const { XGDMatrixFree(handle); }
};
using DMatrixPtr = std::unique_ptr<void, DMatrixDeleter>;

// ---- the model's configuration ---------------------------------------------------

const nlohmann::json* Find(const nlohmann::json& root, std::initializer_list<const char*> keys) {
  const nlohmann::json* node = &root;
  for (const char* key : keys) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

// XGBoost writes every parameter of its configuration as a string.
std::string FindString(const nlohmann::json& root, std::initializer_list<const char*> keys) {
  const nlohmann::json* node = Find(root, keys);
  return node != nullptr && node->is_string() ? node->get<std::string>() : std::string();
}

int64_t ParseCount(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && value >= 0 ? value : 0;
}

// "5E-1" (XGBoost's spelling) -> "0.5".
std::string NormalizeNumber(const std::string& text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return text;
  char buf[32];
  auto [out, out_ec] = std::to_chars(buf, buf + sizeof(buf), static_cast<float>(value));
  return out_ec == std::errc() ? std::string(buf, out) : text;
}

// ---- prediction --------------------------------------------------------------------

enum class Convert { kFloat32, kLabel };

struct OutputPlan {
  Convert convert = Convert::kFloat32;
  size_t width = 1;
  std::string config;  // JSON for the predict call (PredictConfig)
};

std::string PredictConfig(int predict_type, bool in_place) {
  std::string config = "{\"type\": " + std::to_string(predict_type) +
                       ", \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
                       "\"strict_shape\": true";
  // Missing values are NaN (XGBoost's JSON reader accepts the NaN literal).
  if (in_place) config += ", \"cache_id\": 0, \"missing\": NaN";
  return config + "}";
}

// The __array_interface__ of a row-major float32 matrix, written into `buf`
// (no allocation per call). Returns false if it does not fit.
bool WriteArrayInterface(const float* data, size_t rows, size_t cols, char* buf, size_t size) {
  char* const end = buf + size;
  char* p = buf;
  auto put = [&](std::string_view text) {
    if (static_cast<size_t>(end - p) < text.size()) return false;
    p = std::copy(text.begin(), text.end(), p);
    return true;
  };
  auto put_number = [&](uint64_t v) {
    auto [next, ec] = std::to_chars(p, end, v);
    if (ec != std::errc()) return false;
    p = next;
    return true;
  };
  return put("{\"data\": [") && put_number(reinterpret_cast<uintptr_t>(data)) && put(", true], \"shape\": [") &&
         put_number(rows) && put(", ") && put_number(cols) &&
         put("], \"strides\": null, \"typestr\": \"<f4\", \"version\": 3}") && put(std::string_view("\0", 1));
}

// One prediction call. On success `*result` points into libxgboost's buffer
// for this thread and booster, valid until the thread's next call on it. Errors
// read "<context>: <what>: <libxgboost's message>", built only on failure.
Status PredictRaw(BoosterHandle booster, bool in_place, int threads, const std::string& config, const float* features,
                  size_t rows, size_t cols, const bst_ulong** shape, bst_ulong* dims, const float** result,
                  StatusCode code, const std::string& context, const char* what) {
  if (in_place) {
    char array[160];
    if (!WriteArrayInterface(features, rows, cols, array, sizeof(array))) {
      return Status::Internal(context + ": array interface does not fit");
    }
    const int rc = XGBoosterPredictFromDense(booster, array, config.c_str(), nullptr, shape, dims, result);
    return rc == 0 ? Status::OK() : XgbCall(rc, code, context + ": " + what);
  }
  DMatrixHandle handle = nullptr;
  int rc = XGDMatrixCreateFromMat_omp(features, rows, cols, std::numeric_limits<float>::quiet_NaN(), &handle, threads);
  if (rc != 0) return XgbCall(rc, StatusCode::kInternal, context + ": cannot build a DMatrix");
  DMatrixPtr dmatrix(handle);  // the result lives in the booster's buffer, not in the DMatrix
  rc = XGBoosterPredictFromDMatrix(booster, handle, config.c_str(), shape, dims, result);
  return rc == 0 ? Status::OK() : XgbCall(rc, code, context + ": " + what);
}

class XgboostModel final : public Model {
 public:
  XgboostModel(ModelInfo info, std::vector<OutputPlan> plans, const std::string& path, BoosterPtr booster,
               bool in_place, int threads)
      : info_(std::move(info)),
        plans_(std::move(plans)),
        context_("xgboost model '" + path + "'"),
        booster_(std::move(booster)),
        in_place_(in_place),
        threads_(threads) {}

  const ModelInfo& info() const override { return info_; }

  Status Predict(const float* features, size_t rows, size_t cols, std::vector<OutputTensor>* outputs) override {
    if (cols != info_.num_features) {
      return Status::InvalidArgument(context_ + ": input has " + std::to_string(cols) + " features per row, expected " +
                                     std::to_string(info_.num_features));
    }
    outputs->resize(plans_.size());
    for (size_t o = 0; o < plans_.size(); ++o) {
      OutputTensor& tensor = (*outputs)[o];
      tensor.width = plans_[o].width;
      if (tensor.values.type() != info_.outputs[o].type) tensor.values = Column(info_.outputs[o].type);
      tensor.values.Resize(rows * plans_[o].width);
    }
    if (rows == 0) return Status::OK();  // libxgboost answers an empty batch with shape (0, 0)
    for (size_t o = 0; o < plans_.size(); ++o) {
      RETURN_IF_ERROR(PredictOne(plans_[o], features, rows, cols, &(*outputs)[o]));
    }
    return Status::OK();
  }

 private:
  Status PredictOne(const OutputPlan& plan, const float* features, size_t rows, size_t cols,
                    OutputTensor* tensor) const {
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    RETURN_IF_ERROR(PredictRaw(booster_.get(), in_place_, threads_, plan.config, features, rows, cols, &shape, &dims,
                               &result, StatusCode::kInternal, context_, "prediction failed"));
    if (dims != 2 || shape[0] != rows || shape[1] != plan.width) {
      return Status::Internal(context_ + ": prediction has an unexpected shape (" + std::to_string(dims) +
                              " dims) for " + std::to_string(rows) + " rows x " + std::to_string(plan.width));
    }
    const size_t n = rows * plan.width;
    if (plan.convert == Convert::kFloat32) {
      std::memcpy(tensor->values.mutable_float32s().data(), result, n * sizeof(float));
      return Status::OK();
    }
    std::span<int64_t> labels = tensor->values.mutable_int64s();
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(result[i])) {
        return Status::Internal(context_ + ": class index of row " + std::to_string(i / plan.width) + " is not finite");
      }
      labels[i] = static_cast<int64_t>(result[i]);
    }
    return Status::OK();
  }

  const ModelInfo info_;
  const std::vector<OutputPlan> plans_;
  const std::string context_;  // "xgboost model 'p'", error prefix
  const BoosterPtr booster_;
  const bool in_place_;  // gbtree/dart: in-place prediction; gblinear: through a DMatrix
  const int threads_;    // OpenMP threads (model.threads)
};

// ---- loading ---------------------------------------------------------------------------

std::vector<std::string> ClassNames(size_t k) {
  std::vector<std::string> names;
  names.reserve(k);
  for (size_t c = 0; c < k; ++c) names.push_back(std::to_string(c));
  return names;
}

bool Requested(const ModelOptions& options, std::string_view name) {
  return std::find(options.requested_outputs.begin(), options.requested_outputs.end(), name) !=
         options.requested_outputs.end();
}

Status ReadFeatureNames(BoosterHandle booster, const std::string& path, ModelInfo* info) {
  bst_ulong count = 0;
  const char** names = nullptr;  // thread-local in libxgboost: copied at once
  RETURN_IF_ERROR(XgbCall(XGBoosterGetStrFeatureInfo(booster, "feature_name", &count, &names), StatusCode::kCorruption,
                          path + ": cannot read the feature names"));
  if (count == 0) return Status::OK();
  if (count != info->num_features) {
    return Status::Corruption(path + ": the model names " + std::to_string(count) + " features but takes " +
                              std::to_string(info->num_features));
  }
  for (bst_ulong i = 0; i < count; ++i) info->feature_names.emplace_back(names[i]);
  return Status::OK();
}

void ReadAttributes(BoosterHandle booster, ModelInfo* info) {
  bst_ulong count = 0;
  const char** names = nullptr;
  if (XGBoosterGetAttrNames(booster, &count, &names) != 0) return;  // attributes are informative only
  std::vector<std::string> keys(names, names + count);
  for (const std::string& key : keys) {
    const char* value = nullptr;
    int found = 0;
    if (XGBoosterGetAttr(booster, key.c_str(), &value, &found) == 0 && found != 0 && value != nullptr) {
      info->metadata["attribute." + key] = value;
    }
  }
}

// One prediction on a row of NaN: finishes libxgboost's lazy configuration (so
// that later concurrent calls only read it) and tells the output width.
Result<size_t> ProbeWidth(BoosterHandle booster, bool in_place, int threads, const OutputPlan& plan,
                          size_t num_features, const std::string& path) {
  std::vector<float> row(num_features, std::numeric_limits<float>::quiet_NaN());
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* result = nullptr;
  RETURN_IF_ERROR(PredictRaw(booster, in_place, threads, plan.config, row.data(), 1, row.size(), &shape, &dims, &result,
                             StatusCode::kCorruption, path, "the XGBoost model cannot predict"));
  if (dims != 2 || shape[0] != 1 || shape[1] == 0) {
    return Status::NotSupported(path + ": the XGBoost model predicts " + std::to_string(dims) +
                                "-dimensional output; only one row of values per input row is supported");
  }
  return static_cast<size_t>(shape[1]);
}

}  // namespace

bool DetectXgboostModel(std::string_view path, std::string_view head) {
  for (std::string_view ext : {".ubj", ".model", ".xgb", ".bin", ".deprecated"}) {
    if (PathHasExtension(path, ext)) return true;
  }
  if (head.substr(0, 4) == "binf") return true;
  const std::string_view json = TrimJsonPrefix(head);
  if (json.empty() || json.front() != '{') return false;
  // UBJSON: '{', a key length (an integer type marker and its bytes: 'L' + 8 in
  // XGBoost's writer), then "learner".
  if (json.size() > 1 && std::string_view("iUIlL").find(json[1]) != std::string_view::npos &&
      json.substr(0, 24).find("learner") != std::string_view::npos) {
    return true;
  }
  return json.find("\"learner\"") != std::string_view::npos &&
         json.find("\"gradient_booster\"") != std::string_view::npos;
}

Result<std::unique_ptr<Model>> LoadXgboostModel(Env* env, const ModelOptions& options) {
  Result<std::string> bytes = ReadFileToString(env, options.path);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("model.path: no such file '" + options.path + "'");
    }
    return bytes.status().WithContext("model.path '" + options.path + "'");
  }
  return LoadXgboostModelFromBytes(*bytes, options);
}

Result<std::unique_ptr<Model>> LoadXgboostModelFromBytes(std::string_view raw, const ModelOptions& options) {
  const std::string& path = options.path;
  const std::string_view bytes = TrimJsonPrefix(raw);
  ASSIGN_OR_RETURN(const XgboostFormat format, CheckXgboostModelBytes(bytes, path));

  BoosterHandle handle = nullptr;
  RETURN_IF_ERROR(XgbCall(XGBoosterCreate(nullptr, 0, &handle), StatusCode::kInternal,
                          path + ": cannot create an XGBoost booster"));
  BoosterPtr booster(handle);
  const int threads = std::max(1, options.threads);
  int load_rc = 0;
  {
    ScopedOmpThreads load_threads(threads);
    load_rc = XGBoosterLoadModelFromBuffer(handle, bytes.data(), bytes.size());
  }
  RETURN_IF_ERROR(XgbCall(load_rc, StatusCode::kCorruption,
                          path + ": not a valid XGBoost model (" + std::string(XgboostFormatName(format)) + ")"));
  const std::string nthread = std::to_string(threads);
  RETURN_IF_ERROR(
      XgbCall(XGBoosterSetParam(handle, "nthread", nthread.c_str()), StatusCode::kInvalidArgument, "model.threads"));

  // The configuration (objective, booster, model parameters) as JSON.
  bst_ulong config_len = 0;
  const char* config_text = nullptr;
  RETURN_IF_ERROR(XgbCall(XGBoosterSaveJsonConfig(handle, &config_len, &config_text), StatusCode::kCorruption,
                          path + ": cannot read the XGBoost model's configuration"));
  const nlohmann::json config =
      nlohmann::json::parse(config_text, config_text + config_len, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return Status::Internal(path + ": libxgboost returned an unreadable configuration");

  const std::string objective = FindString(config, {"learner", "objective", "name"});
  const std::string booster_name = FindString(config, {"learner", "gradient_booster", "name"});
  if (objective.empty() || booster_name.empty()) {
    return Status::Corruption(path + ": the XGBoost model's configuration names no objective or booster");
  }
  if (booster_name != "gbtree" && booster_name != "dart" && booster_name != "gblinear") {
    return Status::NotSupported(path + ": XGBoost booster '" + booster_name +
                                "' is not supported (expected gbtree, dart or gblinear)");
  }
  const bool in_place = booster_name != "gblinear";
  ModelInfo info;
  info.backend = "xgboost";
  info.concurrent_predict = in_place;

  bst_ulong num_features = 0;
  RETURN_IF_ERROR(XgbCall(XGBoosterGetNumFeature(handle, &num_features), StatusCode::kCorruption,
                          path + ": cannot read the number of features"));
  if (num_features == 0) return Status::Corruption(path + ": the XGBoost model takes no features");
  info.num_features = num_features;
  RETURN_IF_ERROR(ReadFeatureNames(handle, path, &info));
  info.inputs.push_back(ModelInputInfo{
      .name = "features", .type = DataType::kFloat32, .shape = {-1, static_cast<int64_t>(num_features)}});

  int rounds = 0;
  RETURN_IF_ERROR(XgbCall(XGBoosterBoostedRounds(handle, &rounds), StatusCode::kCorruption,
                          path + ": cannot read the number of boosted rounds"));

  std::map<std::string, std::string>& meta = info.metadata;
  ReadAttributes(handle, &info);
  meta["objective"] = objective;
  meta["booster"] = booster_name;
  meta["format"] = std::string(XgboostFormatName(format));
  meta["num_features"] = std::to_string(num_features);
  meta["num_boosted_rounds"] = std::to_string(rounds);
  const std::string num_class = FindString(config, {"learner", "learner_model_param", "num_class"});
  meta["num_classes"] = num_class.empty() ? "0" : num_class;
  const std::string num_target = FindString(config, {"learner", "learner_model_param", "num_target"});
  if (!num_target.empty()) meta["num_targets"] = num_target;
  const std::string base_score = FindString(config, {"learner", "learner_model_param", "base_score"});
  if (!base_score.empty()) meta["base_score"] = NormalizeNumber(base_score);
  if (in_place) {
    // dart nests the tree parameters one level deeper.
    const nlohmann::json& gb = *Find(config, {"learner", "gradient_booster"});
    const nlohmann::json* tree_param = Find(gb, {"gbtree_model_param"});
    if (tree_param == nullptr) tree_param = Find(gb, {"gbtree", "gbtree_model_param"});
    if (tree_param != nullptr) {
      meta["num_trees"] = std::to_string(ParseCount(FindString(*tree_param, {"num_trees"})));
      meta["num_parallel_tree"] = std::to_string(ParseCount(FindString(*tree_param, {"num_parallel_tree"})));
    }
  }

  // Outputs by objective.
  OutputPlan main_plan;
  main_plan.config = PredictConfig(0, in_place);
  ModelOutputInfo main_out;
  if (objective == "binary:logistic") {
    main_out.name = "probability";
  } else if (objective == "multi:softprob") {
    main_out.name = "probabilities";
  } else if (objective == "multi:softmax" || objective == "binary:hinge") {
    main_out.name = "label";
    main_out.type = DataType::kInt64;
    main_plan.convert = Convert::kLabel;
  } else {
    main_out.name = "value";
  }
  ASSIGN_OR_RETURN(main_plan.width, ProbeWidth(handle, in_place, threads, main_plan, num_features, path));
  main_out.width = main_plan.width;
  if (main_out.name == "probabilities") main_out.element_names = ClassNames(main_out.width);
  if (main_plan.convert == Convert::kLabel && main_plan.width != 1) {
    return Status::NotSupported(path + ": objective '" + objective + "' predicts " + std::to_string(main_plan.width) +
                                " labels per row; expected 1");
  }
  std::vector<OutputPlan> plans;
  info.outputs.push_back(std::move(main_out));
  plans.push_back(std::move(main_plan));

  if (Requested(options, "margin")) {
    OutputPlan margin_plan;
    margin_plan.config = PredictConfig(1, in_place);
    ASSIGN_OR_RETURN(margin_plan.width, ProbeWidth(handle, in_place, threads, margin_plan, num_features, path));
    ModelOutputInfo margin_out{.name = "margin", .type = DataType::kFloat32, .width = margin_plan.width};
    if (objective.rfind("multi:", 0) == 0) margin_out.element_names = ClassNames(margin_plan.width);
    info.outputs.push_back(std::move(margin_out));
    plans.push_back(std::move(margin_plan));
  }
  return std::unique_ptr<Model>(
      std::make_unique<XgboostModel>(std::move(info), std::move(plans), path, std::move(booster), in_place, threads));
}

}  // namespace sluice
