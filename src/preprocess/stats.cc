#include "preprocess/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace sluice {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kStatsFormatVersion = 1;

// Builds one-line messages "origin: path: what".
class ErrorContext {
 public:
  explicit ErrorContext(const std::string& origin) : origin_(origin) {}

  Status Error(std::string_view path, std::string_view what) const {
    std::string msg = origin_;
    msg += ": ";
    if (!path.empty()) {
      msg += path;
      msg += ": ";
    }
    msg += what;
    return Status::InvalidArgument(std::move(msg));
  }

 private:
  const std::string& origin_;
};

std::string_view JsonTypeName(const Json& j) { return j.type_name(); }

Result<double> ReadFiniteNumber(const Json& j, const std::string& path, const ErrorContext& ctx) {
  if (!j.is_number()) {
    return ctx.Error(path, std::string("expected a number, got ") + std::string(JsonTypeName(j)));
  }
  double v = j.get<double>();
  if (!std::isfinite(v)) return ctx.Error(path, "number is not finite");
  return v;
}

Result<int64_t> ReadCount(const Json& j, const std::string& path, const ErrorContext& ctx) {
  if (j.is_number_unsigned()) {
    uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return ctx.Error(path, "count too large");
    }
    return static_cast<int64_t>(v);
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < 0) return ctx.Error(path, "expected a non-negative integer, got " + std::to_string(v));
    return v;
  }
  return ctx.Error(path, std::string("expected a non-negative integer, got ") +
                             std::string(JsonTypeName(j)));
}

// Reads {"a": number, "b": number} with exactly those two keys.
Status ReadPair(const Json& j, const std::string& path, const char* a_name, const char* b_name,
                const ErrorContext& ctx, double* a, double* b) {
  if (!j.is_object()) {
    return ctx.Error(path, std::string("expected an object with '") + a_name + "' and '" + b_name +
                               "', got " + std::string(JsonTypeName(j)));
  }
  for (const auto& [key, value] : j.items()) {
    if (key != a_name && key != b_name) {
      return ctx.Error(path, "unknown key '" + key + "' (expected " + a_name + ", " + b_name + ")");
    }
  }
  for (const char* name : {a_name, b_name}) {
    auto it = j.find(name);
    if (it == j.end()) return ctx.Error(path, std::string("missing '") + name + "'");
    ASSIGN_OR_RETURN(double v, ReadFiniteNumber(*it, path + "." + name, ctx));
    *(name == a_name ? a : b) = v;
  }
  return Status::OK();
}

Result<FeatureStats> ReadFeature(const Json& j, const std::string& path, const ErrorContext& ctx) {
  if (!j.is_object()) {
    return ctx.Error(path, std::string("expected an object, got ") + std::string(JsonTypeName(j)));
  }
  FeatureStats fs;
  for (const auto& [key, value] : j.items()) {
    const std::string key_path = path + "." + key;
    if (key == "impute") {
      if (value.is_string()) {
        fs.impute_string = value.get<std::string>();
      } else if (value.is_number()) {
        ASSIGN_OR_RETURN(fs.impute_number, ReadFiniteNumber(value, key_path, ctx));
      } else {
        return ctx.Error(key_path, std::string("expected a number or a string, got ") +
                                       std::string(JsonTypeName(value)));
      }
    } else if (key == "standardize") {
      double mean = 0, sd = 0;
      RETURN_IF_ERROR(ReadPair(value, key_path, "mean", "std", ctx, &mean, &sd));
      if (sd < 0) return ctx.Error(key_path + ".std", "must be >= 0");
      fs.mean = mean;
      fs.std = sd;
    } else if (key == "minmax") {
      double lo = 0, hi = 0;
      RETURN_IF_ERROR(ReadPair(value, key_path, "min", "max", ctx, &lo, &hi));
      if (lo > hi) return ctx.Error(key_path, "min is greater than max");
      fs.min = lo;
      fs.max = hi;
    } else if (key == "count") {
      ASSIGN_OR_RETURN(fs.count, ReadCount(value, key_path, ctx));
    } else if (key == "nulls") {
      ASSIGN_OR_RETURN(fs.nulls, ReadCount(value, key_path, ctx));
    } else {
      return ctx.Error(path, "unknown key '" + key +
                                 "' (expected impute, standardize, minmax, count, nulls)");
    }
  }
  return fs;
}

// "scores.<column>": {"edges": [...], "fractions": [...]}.
Result<ScoreReference> ReadScores(const std::string& column, const Json& j, const ErrorContext& ctx) {
  const std::string path = "scores." + column;
  if (!j.is_object()) {
    return ctx.Error(path, std::string("expected an object with 'edges' and 'fractions', got ") +
                               std::string(JsonTypeName(j)));
  }
  ScoreReference ref;
  ref.column = column;
  for (const auto& [key, value] : j.items()) {
    if (key != "edges" && key != "fractions") {
      return ctx.Error(path, "unknown key '" + key + "' (expected edges, fractions)");
    }
    const std::string key_path = path + "." + key;
    if (!value.is_array()) {
      return ctx.Error(key_path, std::string("expected an array of numbers, got ") + std::string(JsonTypeName(value)));
    }
    std::vector<double>& out = key == "edges" ? ref.edges : ref.fractions;
    for (size_t i = 0; i < value.size(); ++i) {
      ASSIGN_OR_RETURN(double v, ReadFiniteNumber(value[i], key_path + "[" + std::to_string(i) + "]", ctx));
      out.push_back(v);
    }
  }
  if (!j.contains("edges")) return ctx.Error(path, "missing 'edges'");
  if (!j.contains("fractions")) return ctx.Error(path, "missing 'fractions'");
  for (size_t i = 1; i < ref.edges.size(); ++i) {
    if (!(ref.edges[i - 1] < ref.edges[i])) {
      return ctx.Error(path + ".edges", "not strictly ascending at index " + std::to_string(i));
    }
  }
  if (ref.fractions.size() != ref.edges.size() + 1) {
    return ctx.Error(path + ".fractions", "expected " + std::to_string(ref.edges.size() + 1) +
                                              " fractions (one more than edges), got " +
                                              std::to_string(ref.fractions.size()));
  }
  double sum = 0;
  for (size_t i = 0; i < ref.fractions.size(); ++i) {
    if (ref.fractions[i] < 0 || ref.fractions[i] > 1) {
      return ctx.Error(path + ".fractions[" + std::to_string(i) + "]", "must be between 0 and 1");
    }
    sum += ref.fractions[i];
  }
  if (std::fabs(sum - 1) > 1e-3) {
    return ctx.Error(path + ".fractions", "sum to " + std::to_string(sum) + ", expected 1");
  }
  return ref;
}

Result<Stats> ParseJson(const Json& root, const ErrorContext& ctx) {
  if (!root.is_object()) {
    return ctx.Error("", std::string("expected a JSON object, got ") + std::string(JsonTypeName(root)));
  }
  for (const auto& [key, value] : root.items()) {
    if (key != "sluice_stats" && key != "features" && key != "scores") {
      return ctx.Error("", "unknown key '" + key + "' (expected sluice_stats, features, scores)");
    }
  }
  auto version = root.find("sluice_stats");
  if (version == root.end()) return ctx.Error("", "missing 'sluice_stats' (format version, 1)");
  if (!version->is_number_integer() || version->get<int64_t>() != kStatsFormatVersion) {
    return ctx.Error("sluice_stats", "unsupported format version " + version->dump() + " (expected 1)");
  }
  auto features = root.find("features");
  if (features == root.end()) return ctx.Error("", "missing 'features'");
  if (!features->is_object()) {
    return ctx.Error("features", std::string("expected an object, got ") +
                                     std::string(JsonTypeName(*features)));
  }
  Stats stats;
  for (const auto& [name, value] : features->items()) {
    ASSIGN_OR_RETURN(FeatureStats fs, ReadFeature(value, "features." + name, ctx));
    stats.Set(name, std::move(fs));
  }
  if (auto scores = root.find("scores"); scores != root.end()) {
    if (!scores->is_object()) {
      return ctx.Error("scores", std::string("expected an object, got ") + std::string(JsonTypeName(*scores)));
    }
    for (const auto& [column, value] : scores->items()) {
      ASSIGN_OR_RETURN(ScoreReference ref, ReadScores(column, value, ctx));
      stats.SetScores(std::move(ref));
    }
  }
  return stats;
}

}  // namespace

Result<Stats> Stats::Parse(std::string_view json, const std::string& origin) {
  const ErrorContext ctx(origin);
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {
    // e.what() is one line: "[json.exception.parse_error.101] parse error at line 3, column 7: ...".
    return ctx.Error("", std::string("invalid JSON: ") + e.what());
  }
  try {
    return ParseJson(root, ctx);
  } catch (const Json::exception& e) {
    return ctx.Error("", std::string("unreadable stats: ") + e.what());
  }
}

std::string Stats::ToJson() const {
  Json features = Json::object();
  for (const auto& [name, fs] : entries_) {
    Json f = Json::object();
    if (fs.impute_number) {
      f["impute"] = *fs.impute_number;
    } else if (fs.impute_string) {
      f["impute"] = *fs.impute_string;
    }
    if (fs.mean || fs.std) {
      Json s = Json::object();
      if (fs.mean) s["mean"] = *fs.mean;
      if (fs.std) s["std"] = *fs.std;
      f["standardize"] = std::move(s);
    }
    if (fs.min || fs.max) {
      Json m = Json::object();
      if (fs.min) m["min"] = *fs.min;
      if (fs.max) m["max"] = *fs.max;
      f["minmax"] = std::move(m);
    }
    if (fs.count != 0 || fs.nulls != 0) {
      f["count"] = fs.count;
      f["nulls"] = fs.nulls;
    }
    features[name] = std::move(f);
  }
  Json root = Json::object();
  root["sluice_stats"] = kStatsFormatVersion;
  root["features"] = std::move(features);
  if (!scores_.empty()) {
    Json scores = Json::object();
    for (const ScoreReference& ref : scores_) scores[ref.column] = {{"edges", ref.edges}, {"fractions", ref.fractions}};
    root["scores"] = std::move(scores);
  }
  // Replace rather than throw on invalid UTF-8 in names or categories.
  return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

const FeatureStats* Stats::Find(std::string_view feature) const {
  auto it = index_.find(feature);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void Stats::Set(std::string feature, FeatureStats stats) {
  auto it = index_.find(feature);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(stats);
    return;
  }
  index_.emplace(feature, entries_.size());
  entries_.emplace_back(std::move(feature), std::move(stats));
}

const ScoreReference* Stats::FindScores(std::string_view column) const {
  for (const ScoreReference& ref : scores_) {
    if (ref.column == column) return &ref;
  }
  return nullptr;
}

void Stats::SetScores(ScoreReference reference) {
  for (ScoreReference& ref : scores_) {
    if (ref.column == reference.column) {
      ref = std::move(reference);
      return;
    }
  }
  scores_.push_back(std::move(reference));
}

bool Stats::operator==(const Stats& other) const {
  if (entries_ != other.entries_ || scores_.size() != other.scores_.size()) return false;
  for (size_t i = 0; i < scores_.size(); ++i) {
    const ScoreReference& a = scores_[i];
    const ScoreReference& b = other.scores_[i];
    if (a.column != b.column || a.edges != b.edges || a.fractions != b.fractions) return false;
  }
  return true;
}

std::optional<ScoreReference> FitScoreReference(std::string column, std::vector<double> scores, int bins) {
  if (scores.empty() || bins < 1) return std::nullopt;
  std::sort(scores.begin(), scores.end());
  const size_t n = scores.size();
  ScoreReference ref;
  ref.column = std::move(column);
  for (int b = 1; b < bins; ++b) {
    // numpy.quantile(method="linear"): position q * (n - 1) between order statistics.
    const double pos = static_cast<double>(b) / bins * static_cast<double>(n - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, n - 1);
    const double edge = scores[lo] + (scores[hi] - scores[lo]) * (pos - static_cast<double>(lo));
    if (ref.edges.empty() || edge > ref.edges.back()) ref.edges.push_back(edge);
  }
  // Bins as Histogram::Observe counts them: (e[i-1], e[i]].
  std::vector<int64_t> counts(ref.edges.size() + 1, 0);
  for (double v : scores) {
    ++counts[static_cast<size_t>(std::lower_bound(ref.edges.begin(), ref.edges.end(), v) - ref.edges.begin())];
  }
  for (int64_t c : counts) ref.fractions.push_back(static_cast<double>(c) / static_cast<double>(n));
  return ref;
}

std::vector<std::string> Stats::FeatureNames() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& entry : entries_) names.push_back(entry.first);
  return names;
}

}  // namespace sluice
