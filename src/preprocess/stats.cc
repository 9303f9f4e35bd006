#include "preprocess/stats.h"

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

Result<Stats> ParseJson(const Json& root, const ErrorContext& ctx) {
  if (!root.is_object()) {
    return ctx.Error("", std::string("expected a JSON object, got ") + std::string(JsonTypeName(root)));
  }
  for (const auto& [key, value] : root.items()) {
    if (key != "sluice_stats" && key != "features") {
      return ctx.Error("", "unknown key '" + key + "' (expected sluice_stats, features)");
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

std::vector<std::string> Stats::FeatureNames() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& entry : entries_) names.push_back(entry.first);
  return names;
}

}  // namespace sluice
