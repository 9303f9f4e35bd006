// Test helpers for the XGBoost backend (header-only; tests only): trains small
// models through libxgboost's C API, and scores them with a reference written
// here from the model's JSON dump (its own tree walk, independent of
// libxgboost's predictor), for tests/model_conformance_test.cc and
// xgboost_model_test.cc.
//
// The reference mirrors XGBoost's float32 arithmetic: a margin starts at the
// base score (as a margin) and adds each tree's leaf in tree order in float; a
// NaN feature follows the node's default direction; x < split_condition goes
// left. Transforms (sigmoid, softmax) run in double on that float margin, so
// they differ from libxgboost's float versions by about one float ulp.
//
// Thread-safety: free functions and immutable objects after construction.
#pragma once

#include <xgboost/c_api.h>

#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "sluice/status.h"

namespace sluice {
namespace xgboost_test {

struct TrainSpec {
  std::string objective = "binary:logistic";
  std::string booster = "gbtree";  // gbtree | dart | gblinear
  int num_class = 0;               // multi:* objectives
  int rounds = 30;
  int max_depth = 6;
  size_t num_features = 7;
  size_t rows = 2000;
  double nan_fraction = 0.1;  // of training features
  bool feature_names = true;  // f0..f{F-1}
  uint32_t seed = 7;
};

struct TrainedModel {
  std::string bytes;  // in the requested format
  std::string json;   // the same model as JSON text, for the reference
};

inline Status XgbCheck(int rc, const std::string& what) {
  if (rc == 0) return Status::OK();
  std::string msg = XGBGetLastError();
  return Status::Internal(what + ": " + msg.substr(0, msg.find('\n')));
}

// Synthetic labels that depend on a few features (NaN counts as 0).
inline float SyntheticLabel(const TrainSpec& spec, const float* x, std::mt19937* rng) {
  auto v = [&](size_t f) { return f < spec.num_features && !std::isnan(x[f]) ? x[f] : 0.0f; };
  std::normal_distribution<float> noise(0.0f, 0.3f);
  if (spec.objective.rfind("multi:", 0) == 0) {
    float best = -1e30f;
    int label = 0;
    for (int c = 0; c < spec.num_class; ++c) {
      const float s = v(c) - 0.5f * v(c + 1) + noise(*rng);
      if (s > best) best = s, label = c;
    }
    return static_cast<float>(label);
  }
  const float z = v(0) + v(1) * v(2) - 0.5f * v(3) + noise(*rng);
  if (spec.objective.rfind("binary:", 0) == 0) return z > 0 ? 1.0f : 0.0f;
  return z;
}

// Trains with libxgboost and saves as `format`: "json", "ubj" or "deprecated"
// (the legacy binary format).
inline Result<TrainedModel> Train(const TrainSpec& spec, const std::string& format) {
  std::mt19937 rng(spec.seed);
  std::uniform_real_distribution<float> value(-3.0f, 3.0f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<float> x(spec.rows * spec.num_features);
  std::vector<float> y(spec.rows);
  for (size_t r = 0; r < spec.rows; ++r) {
    float* row = x.data() + r * spec.num_features;
    for (size_t f = 0; f < spec.num_features; ++f) row[f] = value(rng);
    y[r] = SyntheticLabel(spec, row, &rng);
    for (size_t f = 0; f < spec.num_features; ++f) {
      if (unit(rng) < spec.nan_fraction) row[f] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  DMatrixHandle dtrain = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGDMatrixCreateFromMat_omp(x.data(), spec.rows, spec.num_features,
                                                      std::numeric_limits<float>::quiet_NaN(), &dtrain, 1),
                           "XGDMatrixCreateFromMat_omp"));
  std::unique_ptr<void, int (*)(DMatrixHandle)> dmatrix(dtrain, XGDMatrixFree);
  RETURN_IF_ERROR(XgbCheck(XGDMatrixSetFloatInfo(dtrain, "label", y.data(), spec.rows), "label"));
  if (spec.feature_names) {
    std::vector<std::string> names;
    for (size_t f = 0; f < spec.num_features; ++f) names.push_back("f" + std::to_string(f));
    std::vector<const char*> pointers;
    for (const std::string& n : names) pointers.push_back(n.c_str());
    RETURN_IF_ERROR(XgbCheck(XGDMatrixSetStrFeatureInfo(dtrain, "feature_name", pointers.data(), pointers.size()),
                             "feature names"));
  }
  BoosterHandle handle = nullptr;
  RETURN_IF_ERROR(XgbCheck(XGBoosterCreate(&dtrain, 1, &handle), "XGBoosterCreate"));
  std::unique_ptr<void, int (*)(BoosterHandle)> booster(handle, XGBoosterFree);
  std::vector<std::pair<std::string, std::string>> params = {{"objective", spec.objective},
                                                             {"booster", spec.booster},
                                                             {"max_depth", std::to_string(spec.max_depth)},
                                                             {"eta", "0.3"},
                                                             {"tree_method", "hist"},
                                                             {"seed", "0"},
                                                             {"nthread", "1"},
                                                             {"verbosity", "0"}};
  if (spec.num_class > 0) params.emplace_back("num_class", std::to_string(spec.num_class));
  if (spec.booster == "dart") params.emplace_back("rate_drop", "0.1");
  for (const auto& [key, val] : params) {
    RETURN_IF_ERROR(XgbCheck(XGBoosterSetParam(handle, key.c_str(), val.c_str()), "param " + key));
  }
  for (int round = 0; round < spec.rounds; ++round) {
    RETURN_IF_ERROR(XgbCheck(XGBoosterUpdateOneIter(handle, round, dtrain), "XGBoosterUpdateOneIter"));
  }
  auto save = [&](const std::string& fmt) -> Result<std::string> {
    bst_ulong len = 0;
    const char* data = nullptr;
    const std::string config = "{\"format\": \"" + fmt + "\"}";
    RETURN_IF_ERROR(XgbCheck(XGBoosterSaveModelToBuffer(handle, config.c_str(), &len, &data), "save " + fmt));
    return std::string(data, len);
  };
  TrainedModel out;
  ASSIGN_OR_RETURN(out.bytes, save(format));
  ASSIGN_OR_RETURN(out.json, save("json"));
  return out;
}

// Scores rows from a model's JSON text without libxgboost.
class Reference {
 public:
  static Result<Reference> FromJson(const std::string& text) {
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded()) return Status::InvalidArgument("reference: model JSON does not parse");
    Reference ref;
    try {
      const nlohmann::json& learner = doc.at("learner");
      const nlohmann::json& mparam = learner.at("learner_model_param");
      ref.objective_ = learner.at("objective").at("name").get<std::string>();
      const float base_score = std::stof(mparam.at("base_score").get<std::string>());
      ref.num_group_ = std::max(1, std::stoi(mparam.at("num_class").get<std::string>()));
      ref.num_feature_ = std::stoul(mparam.at("num_feature").get<std::string>());
      // ProbToMargin: logit for logistic objectives, identity otherwise.
      const bool logistic = ref.objective_ == "binary:logistic" || ref.objective_ == "reg:logistic" ||
                            ref.objective_ == "binary:logitraw";
      ref.base_margin_ = logistic ? -std::log(1.0f / base_score - 1.0f) : base_score;
      const nlohmann::json& gb = learner.at("gradient_booster");
      const std::string name = gb.at("name").get<std::string>();
      if (name == "gblinear") {
        ref.linear_weights_ = gb.at("model").at("weights").get<std::vector<float>>();
        return ref;
      }
      const nlohmann::json& model = name == "dart" ? gb.at("gbtree").at("model") : gb.at("model");
      if (name == "dart") ref.tree_weights_ = gb.at("weight_drop").get<std::vector<float>>();
      ref.tree_group_ = model.at("tree_info").get<std::vector<int>>();
      for (const nlohmann::json& t : model.at("trees")) {
        Tree tree;
        tree.left = t.at("left_children").get<std::vector<int>>();
        tree.right = t.at("right_children").get<std::vector<int>>();
        tree.feature = t.at("split_indices").get<std::vector<int>>();
        tree.condition = t.at("split_conditions").get<std::vector<float>>();
        tree.default_left = t.at("default_left").get<std::vector<int>>();
        ref.trees_.push_back(std::move(tree));
      }
    } catch (const std::exception& e) {
      return Status::InvalidArgument(std::string("reference: unexpected model JSON: ") + e.what());
    }
    return ref;
  }

  size_t num_group() const { return num_group_; }

  // The untransformed margins of one row, one per group, in float.
  std::vector<float> Margins(const float* row) const {
    std::vector<float> margin(num_group_, base_margin_);
    if (!linear_weights_.empty()) {
      // weights: (num_feature + 1) x num_group, the bias row last.
      for (size_t g = 0; g < num_group_; ++g) {
        float sum = linear_weights_[num_feature_ * num_group_ + g] + base_margin_;
        for (size_t f = 0; f < num_feature_; ++f) {
          if (!std::isnan(row[f])) sum += row[f] * linear_weights_[f * num_group_ + g];
        }
        margin[g] = sum;
      }
      return margin;
    }
    for (size_t t = 0; t < trees_.size(); ++t) {
      const Tree& tree = trees_[t];
      int node = 0;
      while (tree.left[node] != -1) {
        const float v = row[tree.feature[node]];
        const bool left = std::isnan(v) ? tree.default_left[node] != 0 : v < tree.condition[node];
        node = left ? tree.left[node] : tree.right[node];
      }
      const float leaf = tree.condition[node];
      margin[tree_group_[t]] += tree_weights_.empty() ? leaf : leaf * tree_weights_[t];
    }
    return margin;
  }

  // What the backend's main output holds for the row, in double.
  std::vector<double> Transformed(const float* row) const {
    const std::vector<float> margin = Margins(row);
    std::vector<double> out(margin.begin(), margin.end());
    if (objective_ == "binary:logistic" || objective_ == "reg:logistic") {
      for (double& v : out) v = 1.0 / (1.0 + std::exp(-v));
    } else if (objective_ == "multi:softprob") {
      double max = out[0], sum = 0;
      for (double v : out) max = std::max(max, v);
      for (double& v : out) sum += (v = std::exp(v - max));
      for (double& v : out) v /= sum;
    } else if (objective_ == "multi:softmax") {
      size_t best = 0;
      for (size_t g = 1; g < margin.size(); ++g) {
        if (margin[g] > margin[best]) best = g;
      }
      out.assign(1, static_cast<double>(best));
    }
    return out;
  }

 private:
  struct Tree {
    std::vector<int> left, right, feature, default_left;
    std::vector<float> condition;  // split value, or the leaf value at a leaf
  };

  std::string objective_;
  size_t num_group_ = 1;
  size_t num_feature_ = 0;
  float base_margin_ = 0;
  std::vector<Tree> trees_;
  std::vector<int> tree_group_;
  std::vector<float> tree_weights_;    // dart
  std::vector<float> linear_weights_;  // gblinear
};

}  // namespace xgboost_test
}  // namespace sluice
