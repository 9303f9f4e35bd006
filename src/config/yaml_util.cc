#include "config/yaml_util.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace sluice::config {
namespace {

std::string Join(std::initializer_list<std::string_view> items) {
  std::string out;
  for (std::string_view s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

const char* KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Undefined: return "nothing";
  }
  return "unknown";
}

bool ParseIntText(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ParseDoubleText(std::string_view s, double* out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

nlohmann::json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.Scalar()] = ToJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(ToJson(item));
      return arr;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted in the YAML text: keep as string
      int64_t i;
      if (ParseIntText(s, &i)) return i;
      double d;
      if (ParseDoubleText(s, &d)) return d;
      if (s == "true") return true;
      if (s == "false") return false;
      return s;
    }
    default: return nullptr;
  }
}

}  // namespace

Status KeyError(std::string_view path, std::string_view message) {
  return Status::InvalidArgument(std::string(path) + ": " + std::string(message));
}

std::string SubPath(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return std::string(path) + "." + std::string(key);
}

std::string IndexPath(std::string_view path, size_t index) {
  return std::string(path) + "[" + std::to_string(index) + "]";
}

Status CheckMap(const YAML::Node& node, std::string_view path,
                std::initializer_list<std::string_view> allowed,
                std::initializer_list<std::string_view> unsupported,
                std::string_view unsupported_why) {
  if (!node.IsMap()) {
    return KeyError(path.empty() ? "job" : path, std::string("expected a mapping, got ") + KindName(node));
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || key == a;
    if (ok) continue;
    for (std::string_view u : unsupported) {
      if (key == u) {
        return KeyError(SubPath(path, key), "not supported yet" +
                                                (unsupported_why.empty() ? std::string()
                                                                         : " (" + std::string(unsupported_why) + ")"));
      }
    }
    return KeyError(SubPath(path, key), "unknown key (expected one of: " + Join(allowed) + ")");
  }
  return Status::OK();
}

Result<std::string> ReadString(const YAML::Node& node, std::string_view path) {
  if (!node.IsScalar()) return KeyError(path, std::string("expected a string, got ") + KindName(node));
  return node.Scalar();
}

Result<int64_t> ReadInt(const YAML::Node& node, std::string_view path, int64_t min, int64_t max) {
  if (!node.IsScalar()) return KeyError(path, std::string("expected an integer, got ") + KindName(node));
  int64_t v;
  if (!ParseIntText(node.Scalar(), &v)) {
    return KeyError(path, "expected an integer, got '" + node.Scalar() + "'");
  }
  if (v < min || v > max) {
    return KeyError(path, "value " + std::to_string(v) + " out of range [" + std::to_string(min) + ", " +
                              std::to_string(max) + "]");
  }
  return v;
}

Result<uint64_t> ReadBytes(const YAML::Node& node, std::string_view path, uint64_t min) {
  const std::string hint = "expected a size such as 64MiB, 2GiB or a number of bytes";
  if (!node.IsScalar()) return KeyError(path, hint + ", got " + KindName(node));
  const std::string& text = node.Scalar();
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string unit = text.substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},          {"B", 1},           {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
      {"TiB", 1ULL << 40}, {"KB", 1000ULL}, {"MB", 1000000ULL}, {"GB", 1000000000ULL}, {"TB", 1000000000000ULL}};
  uint64_t scale = 0;
  for (const auto& [name, s] : kUnits) {
    if (unit == name) scale = s;
  }
  int64_t count = 0;
  if (digits == 0 || scale == 0 || !ParseIntText(text.substr(0, digits), &count)) {
    return KeyError(path, hint + ", got '" + text + "'");
  }
  const uint64_t n = static_cast<uint64_t>(count);
  if (n > UINT64_MAX / scale) return KeyError(path, "size '" + text + "' is too large");
  if (n * scale < min) return KeyError(path, "must be at least " + std::to_string(min) + " bytes, got '" + text + "'");
  return n * scale;
}

Result<int64_t> ReadDurationMs(const YAML::Node& node, std::string_view path) {
  const std::string hint = "expected a duration such as 250ms, 10s, 5m or 1h";
  if (!node.IsScalar()) return KeyError(path, hint + ", got " + KindName(node));
  const std::string& text = node.Scalar();
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "ms") scale = 1;
  if (unit == "s" || unit.empty()) scale = 1000;
  if (unit == "m") scale = 60 * 1000;
  if (unit == "h") scale = 3600 * 1000;
  int64_t count = 0;
  if (digits == 0 || scale == 0 || !ParseIntText(text.substr(0, digits), &count) || count > INT64_MAX / scale) {
    return KeyError(path, hint + ", got '" + text + "'");
  }
  return count * scale;
}

Result<int64_t> ReadIntOrAuto(const YAML::Node& node, std::string_view path, int64_t min, int64_t max) {
  if (node.IsScalar() && node.Scalar() == "auto") return int64_t{0};
  Result<int64_t> v = ReadInt(node, path, min, max);
  int64_t ignored = 0;
  if (!v.ok() && node.IsScalar() && !ParseIntText(node.Scalar(), &ignored)) {
    return KeyError(path, "expected a number or auto, got '" + node.Scalar() + "'");
  }
  return v;
}

Result<double> ReadDouble(const YAML::Node& node, std::string_view path) {
  if (!node.IsScalar()) return KeyError(path, std::string("expected a number, got ") + KindName(node));
  double v;
  if (!ParseDoubleText(node.Scalar(), &v)) return KeyError(path, "expected a number, got '" + node.Scalar() + "'");
  return v;
}

Result<bool> ReadBool(const YAML::Node& node, std::string_view path) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  return KeyError(path, "expected true or false");
}

Result<std::vector<std::string>> ReadStringList(const YAML::Node& node, std::string_view path) {
  if (node.IsScalar()) return std::vector<std::string>{node.Scalar()};
  if (!node.IsSequence()) return KeyError(path, std::string("expected a list, got ") + KindName(node));
  std::vector<std::string> out;
  for (size_t i = 0; i < node.size(); ++i) {
    ASSIGN_OR_RETURN(std::string s, ReadString(node[i], IndexPath(path, i)));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::string> ReadEnum(const YAML::Node& node, std::string_view path,
                             std::initializer_list<std::string_view> allowed) {
  ASSIGN_OR_RETURN(std::string s, ReadString(node, path));
  for (std::string_view a : allowed) {
    if (s == a) return s;
  }
  return KeyError(path, "unknown value '" + s + "' (expected " + Join(allowed) + ")");
}

Result<char> ReadChar(const YAML::Node& node, std::string_view path) {
  ASSIGN_OR_RETURN(std::string s, ReadString(node, path));
  if (s.size() != 1) return KeyError(path, "expected a single character, got '" + s + "'");
  return s[0];
}

std::string YamlToJson(const YAML::Node& node) { return ToJson(node).dump(); }

Status ApplyOverride(YAML::Node* root, std::string_view assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Status::InvalidArgument("--set '" + std::string(assignment) + "': expected KEY=VALUE");
  }
  const std::string key(assignment.substr(0, eq));
  YAML::Node value;
  try {
    value = YAML::Load(std::string(assignment.substr(eq + 1)));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("--set " + key + ": bad value: " + e.msg);
  }
  // Split "a.b[2].c" into tokens; an index token addresses a list element.
  std::vector<std::string> tokens;
  std::string cur;
  for (char c : key) {
    if (c == '.' || c == '[') {
      if (!cur.empty()) tokens.push_back(cur);
      cur.clear();
    } else if (c != ']') {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) tokens.push_back(cur);
  if (tokens.empty()) return Status::InvalidArgument("--set: empty key");
  try {
    std::vector<YAML::Node> chain{*root};
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      YAML::Node parent = chain.back();
      int64_t idx;
      if (parent.IsSequence() && ParseIntText(tokens[i], &idx)) {
        if (idx < 0 || static_cast<size_t>(idx) >= parent.size()) {
          return Status::InvalidArgument("--set " + key + ": index " + tokens[i] + " out of range");
        }
        chain.push_back(parent[static_cast<size_t>(idx)]);
      } else {
        if (!parent[tokens[i]] || parent[tokens[i]].IsNull()) parent[tokens[i]] = YAML::Node(YAML::NodeType::Map);
        chain.push_back(parent[tokens[i]]);
      }
    }
    YAML::Node parent = chain.back();
    int64_t idx;
    if (parent.IsSequence() && ParseIntText(tokens.back(), &idx)) {
      if (idx < 0 || static_cast<size_t>(idx) >= parent.size()) {
        return Status::InvalidArgument("--set " + key + ": index " + tokens.back() + " out of range");
      }
      parent[static_cast<size_t>(idx)] = value;
    } else {
      if (!parent.IsMap() && !parent.IsNull()) {
        return Status::InvalidArgument("--set " + key + ": '" + tokens[tokens.size() - 2] + "' is not a mapping");
      }
      parent[tokens.back()] = value;
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("--set " + key + ": " + e.msg);
  }
  return Status::OK();
}

}  // namespace sluice::config
