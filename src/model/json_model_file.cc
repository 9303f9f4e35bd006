#include "model/json_model_file.h"

#include <algorithm>
#include <limits>

namespace sluice {

bool PathHasExtension(std::string_view path, std::string_view ext) {
  if (path.size() < ext.size()) return false;
  std::string_view tail = path.substr(path.size() - ext.size());
  return std::equal(tail.begin(), tail.end(), ext.begin(), [](char a, char b) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(a) == lower(b);
  });
}

bool JsonFileHasMarker(std::string_view path, std::string_view head, std::string_view marker) {
  if (!PathHasExtension(path, ".json")) return false;
  std::string quoted;
  quoted.reserve(marker.size() + 2);
  quoted.push_back('"');
  quoted.append(marker);
  quoted.push_back('"');
  return head.find(quoted) != std::string_view::npos;
}

namespace {

// nlohmann messages look like "[json.exception.parse_error.101] parse error at
// line 1, column 5: ..."; keep the part after the bracketed id, on one line.
std::string CleanJsonMessage(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    size_t end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  std::string message(what);
  std::replace(message.begin(), message.end(), '\n', ' ');
  std::replace(message.begin(), message.end(), '\r', ' ');
  return message;
}

}  // namespace

Result<nlohmann::json> ParseJsonModelText(std::string_view text, const std::string& path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": not valid JSON: " + CleanJsonMessage(e.what()));
  }
  if (!doc.is_object()) return Status::Corruption(path + ": expected a JSON object");
  return doc;
}

Result<nlohmann::json> ReadJsonModelFile(Env* env, const std::string& path) {
  Result<std::string> text = ReadFileToString(env, path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("model.path: no such file '" + path + "'");
    }
    return text.status();
  }
  return ParseJsonModelText(*text, path);
}

Status CheckJsonKeys(const nlohmann::json& doc, const std::string& path,
                     std::initializer_list<std::string_view> allowed) {
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) != allowed.end()) continue;
    std::string expected;
    for (std::string_view key : allowed) {
      if (!expected.empty()) expected += ", ";
      expected += key;
    }
    return Status::Corruption(path + ": unknown key '" + it.key() + "' (expected " + expected + ")");
  }
  return Status::OK();
}

Status CheckJsonFormatVersion(const nlohmann::json& doc, const std::string& path,
                              std::string_view marker, int64_t version) {
  auto it = doc.find(marker);
  if (it == doc.end()) {
    return Status::Corruption(path + ": missing key '" + std::string(marker) + "'");
  }
  if (!it->is_number_integer()) {
    return Status::Corruption(path + ": " + std::string(marker) + " must be an integer format version");
  }
  if (it->is_number_unsigned() ? it->get<uint64_t>() != static_cast<uint64_t>(version)
                               : it->get<int64_t>() != version) {
    return Status::NotSupported(path + ": " + std::string(marker) + " version " + it->dump() +
                                " is not supported (expected " + std::to_string(version) + ")");
  }
  return Status::OK();
}

Result<int64_t> GetJsonInt(const nlohmann::json& doc, const std::string& path,
                           std::string_view key, std::optional<int64_t> default_value,
                           int64_t min_value) {
  auto it = doc.find(key);
  if (it == doc.end()) {
    if (default_value) return *default_value;
    return Status::Corruption(path + ": missing key '" + std::string(key) + "'");
  }
  const bool too_big = it->is_number_unsigned() &&
                       it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (!it->is_number_integer() || too_big || it->get<int64_t>() < min_value) {
    return Status::Corruption(path + ": " + std::string(key) + " must be an integer >= " +
                              std::to_string(min_value) + ", got " + it->dump());
  }
  return it->get<int64_t>();
}

}  // namespace sluice
