#include "model/linear/linear_model.h"

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "model/json_model_file.h"

namespace sluice {

namespace {

enum class Link { kIdentity, kLogistic, kSoftmax };

double Sigmoid(double z) {
  // Two branches so exp never overflows.
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

class LinearModel final : public Model {
 public:
  LinearModel(ModelInfo info, std::string path, size_t num_rows, std::vector<double> coefficients,
              std::vector<double> intercepts, Link link)
      : info_(std::move(info)),
        path_(std::move(path)),
        num_rows_(num_rows),
        coefficients_(std::move(coefficients)),
        intercepts_(std::move(intercepts)),
        link_(link) {}

  const ModelInfo& info() const override { return info_; }

  Status Predict(const float* features, size_t rows, size_t cols,
                 std::vector<OutputTensor>* outputs) override {
    const size_t num_features = info_.num_features;
    if (cols != num_features) {
      return Status::InvalidArgument("linear model '" + path_ + "': input has " + std::to_string(cols) +
                                     " features per row, expected " + std::to_string(num_features));
    }
    outputs->resize(1);
    OutputTensor& tensor = (*outputs)[0];
    tensor.width = num_rows_;
    if (tensor.values.type() != DataType::kFloat32) tensor.values = Column(DataType::kFloat32);
    tensor.values.Resize(rows * num_rows_);
    std::span<float> out = tensor.values.mutable_float32s();

    std::vector<double> logits(num_rows_);  // per call, reused for every row
    for (size_t row_idx = 0; row_idx < rows; ++row_idx) {
      const float* x = features + row_idx * cols;
      for (size_t class_idx = 0; class_idx < num_rows_; ++class_idx) {
        const double* w = coefficients_.data() + class_idx * num_features;
        double acc = intercepts_[class_idx];
        for (size_t f = 0; f < num_features; ++f) acc += w[f] * static_cast<double>(x[f]);
        logits[class_idx] = acc;
      }
      float* y = out.data() + row_idx * num_rows_;
      switch (link_) {
        case Link::kIdentity:
          for (size_t c = 0; c < num_rows_; ++c) y[c] = static_cast<float>(logits[c]);
          break;
        case Link::kLogistic:
          for (size_t c = 0; c < num_rows_; ++c) y[c] = static_cast<float>(Sigmoid(logits[c]));
          break;
        case Link::kSoftmax:
          Softmax(logits, y);
          break;
      }
    }
    return Status::OK();
  }

 private:
  void Softmax(const std::vector<double>& logits, float* y) const {
    constexpr double kInf = std::numeric_limits<double>::infinity();
    double max_logit = -kInf;
    for (double l : logits) {
      if (std::isnan(l)) {
        for (size_t c = 0; c < num_rows_; ++c) y[c] = std::numeric_limits<float>::quiet_NaN();
        return;
      }
      if (l > max_logit) max_logit = l;
    }
    if (max_logit == kInf) {
      // exp(inf - inf) is undefined; the limit splits the mass among the +inf classes.
      size_t num_inf = 0;
      for (double l : logits) num_inf += (l == kInf) ? 1 : 0;
      for (size_t c = 0; c < num_rows_; ++c) {
        y[c] = logits[c] == kInf ? static_cast<float>(1.0 / static_cast<double>(num_inf)) : 0.0f;
      }
      return;
    }
    double sum = 0;  // subtracting the max keeps every exp <= 1
    for (double l : logits) sum += std::exp(l - max_logit);
    for (size_t c = 0; c < num_rows_; ++c) {
      y[c] = static_cast<float>(std::exp(logits[c] - max_logit) / sum);
    }
  }

  const ModelInfo info_;
  const std::string path_;
  const size_t num_rows_;                    // k: one output value per row of coefficients
  const std::vector<double> coefficients_;   // k x F, row-major
  const std::vector<double> intercepts_;     // k
  const Link link_;
};

Status ReadNumber(const nlohmann::json& value, const std::string& path, const std::string& where,
                  double* out) {
  if (!value.is_number()) return Status::Corruption(path + ": " + where + " is not a number");
  *out = value.get<double>();
  if (!std::isfinite(*out)) return Status::Corruption(path + ": " + where + " is not finite");
  return Status::OK();
}

Result<std::unique_ptr<Model>> BuildLinearModel(const nlohmann::json& doc, const std::string& path) {
  RETURN_IF_ERROR(CheckJsonFormatVersion(doc, path, "sluice_linear", 1));
  RETURN_IF_ERROR(CheckJsonKeys(
      doc, path, {"sluice_linear", "feature_names", "coefficients", "intercepts", "link", "metadata"}));
  for (const char* key : {"feature_names", "coefficients", "intercepts", "link"}) {
    if (!doc.contains(key)) return Status::Corruption(path + ": missing key '" + key + "'");
  }

  ModelInfo info;
  info.backend = "linear";
  info.concurrent_predict = true;

  const nlohmann::json& names = doc["feature_names"];
  if (!names.is_array() || names.empty()) {
    return Status::Corruption(path + ": feature_names must be a non-empty array of strings");
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (!names[i].is_string()) {
      return Status::Corruption(path + ": feature_names[" + std::to_string(i) + "] is not a string");
    }
    std::string name = names[i].get<std::string>();
    for (size_t j = 0; j < i; ++j) {
      if (info.feature_names[j] == name) {
        return Status::Corruption(path + ": feature_names[" + std::to_string(i) + "] '" + name +
                                  "' repeats feature_names[" + std::to_string(j) + "]");
      }
    }
    info.feature_names.push_back(std::move(name));
  }
  const size_t num_features = info.feature_names.size();
  info.num_features = num_features;
  const std::string expected_width = std::to_string(num_features) + " (feature_names)";

  const nlohmann::json& coefs = doc["coefficients"];
  if (!coefs.is_array() || coefs.empty()) {
    const std::string f = std::to_string(num_features);
    return Status::Corruption(path + ": coefficients must be an array of " + f +
                              " numbers (feature_names) or of rows of " + f + " numbers");
  }
  std::vector<double> coefficients;
  size_t num_rows = 0;
  if (coefs[0].is_array()) {
    num_rows = coefs.size();
    coefficients.resize(num_rows * num_features);
    for (size_t r = 0; r < num_rows; ++r) {
      const std::string row_name = "coefficients row " + std::to_string(r);
      if (!coefs[r].is_array()) return Status::Corruption(path + ": " + row_name + " is not an array");
      if (coefs[r].size() != num_features) {
        return Status::Corruption(path + ": " + row_name + " has " + std::to_string(coefs[r].size()) +
                                  " values, expected " + expected_width);
      }
      for (size_t f = 0; f < num_features; ++f) {
        RETURN_IF_ERROR(ReadNumber(coefs[r][f], path, row_name + " value " + std::to_string(f),
                                   &coefficients[r * num_features + f]));
      }
    }
  } else {
    num_rows = 1;
    if (coefs.size() != num_features) {
      return Status::Corruption(path + ": coefficients has " + std::to_string(coefs.size()) +
                                " values, expected " + expected_width);
    }
    coefficients.resize(num_features);
    for (size_t f = 0; f < num_features; ++f) {
      RETURN_IF_ERROR(ReadNumber(coefs[f], path, "coefficients value " + std::to_string(f),
                                 &coefficients[f]));
    }
  }

  const nlohmann::json& icpt = doc["intercepts"];
  std::vector<double> intercepts(num_rows);
  if (icpt.is_number()) {
    if (num_rows != 1) {
      return Status::Corruption(path + ": intercepts is one number, expected " + std::to_string(num_rows) +
                                " (coefficients rows)");
    }
    RETURN_IF_ERROR(ReadNumber(icpt, path, "intercepts", &intercepts[0]));
  } else if (icpt.is_array()) {
    if (icpt.size() != num_rows) {
      return Status::Corruption(path + ": intercepts has " + std::to_string(icpt.size()) +
                                " values, expected " + std::to_string(num_rows) + " (coefficients rows)");
    }
    for (size_t r = 0; r < num_rows; ++r) {
      RETURN_IF_ERROR(ReadNumber(icpt[r], path, "intercepts value " + std::to_string(r), &intercepts[r]));
    }
  } else {
    return Status::Corruption(path + ": intercepts must be a number or an array of numbers");
  }

  const nlohmann::json& link_value = doc["link"];
  if (!link_value.is_string()) return Status::Corruption(path + ": link must be a string");
  const std::string link_name = link_value.get<std::string>();
  Link link = Link::kIdentity;
  std::string output_name;
  if (link_name == "identity") {
    link = Link::kIdentity;
    output_name = "value";
  } else if (link_name == "logistic") {
    link = Link::kLogistic;
    output_name = "probability";
  } else if (link_name == "softmax") {
    link = Link::kSoftmax;
    output_name = "probabilities";
    if (num_rows < 2) {
      return Status::Corruption(path + ": link 'softmax' needs at least 2 coefficient rows, got " +
                                std::to_string(num_rows));
    }
  } else {
    return Status::NotSupported(path + ": link '" + link_name +
                                "' is not supported (expected identity, logistic, softmax)");
  }
  info.outputs.push_back(ModelOutputInfo{.name = output_name, .type = DataType::kFloat32, .width = num_rows});

  if (auto meta = doc.find("metadata"); meta != doc.end()) {
    if (!meta->is_object()) return Status::Corruption(path + ": metadata must be an object of strings");
    for (auto it = meta->begin(); it != meta->end(); ++it) {
      if (!it->is_string()) return Status::Corruption(path + ": metadata." + it.key() + " is not a string");
      info.metadata[it.key()] = it->get<std::string>();
    }
  }

  return std::unique_ptr<Model>(std::make_unique<LinearModel>(
      std::move(info), path, num_rows, std::move(coefficients), std::move(intercepts), link));
}

}  // namespace

bool DetectLinearModel(std::string_view path, std::string_view head) {
  return JsonFileHasMarker(path, head, "sluice_linear");
}

Result<std::unique_ptr<Model>> ParseLinearModel(std::string_view json_text, const std::string& path) {
  ASSIGN_OR_RETURN(nlohmann::json doc, ParseJsonModelText(json_text, path));
  return BuildLinearModel(doc, path);
}

Result<std::unique_ptr<Model>> LoadLinearModel(Env* env, const ModelOptions& options) {
  ASSIGN_OR_RETURN(nlohmann::json doc, ReadJsonModelFile(env, options.path));
  return BuildLinearModel(doc, options.path);
}

}  // namespace sluice
