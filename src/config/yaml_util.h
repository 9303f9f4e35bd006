// Helpers for reading a yaml-cpp tree with errors that name the key path.
// yaml-cpp throws; nothing here lets an exception escape.
// Thread-safety: stateless functions.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice::config {

// "path: message" as kInvalidArgument.
Status KeyError(std::string_view path, std::string_view message);
// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c"; "features" + 2 -> "features[2]".
std::string SubPath(std::string_view path, std::string_view key);
std::string IndexPath(std::string_view path, size_t index);

// Checks that `node` is a mapping whose keys are all in `allowed`. Keys in
// `unsupported` give "path.key: not supported yet (<why>)".
Status CheckMap(const YAML::Node& node, std::string_view path,
                std::initializer_list<std::string_view> allowed,
                std::initializer_list<std::string_view> unsupported = {},
                std::string_view unsupported_why = "");

Result<std::string> ReadString(const YAML::Node& node, std::string_view path);
Result<int64_t> ReadInt(const YAML::Node& node, std::string_view path, int64_t min, int64_t max);
Result<double> ReadDouble(const YAML::Node& node, std::string_view path);
Result<bool> ReadBool(const YAML::Node& node, std::string_view path);
Result<std::vector<std::string>> ReadStringList(const YAML::Node& node, std::string_view path);
// A scalar that must be one of `allowed`: "path: unknown value 'x' (expected a, b, c)".
Result<std::string> ReadEnum(const YAML::Node& node, std::string_view path,
                             std::initializer_list<std::string_view> allowed);
// A byte size: 1048576, 64KiB, 64MiB, 2GiB, 1TiB (powers of 1024) or 64KB, 64MB,
// 2GB, 1TB (powers of 1000); at least `min` bytes.
Result<uint64_t> ReadBytes(const YAML::Node& node, std::string_view path, uint64_t min);
// A duration in milliseconds: 250ms, 10s, 5m, 1h, or a number of seconds; >= 0.
Result<int64_t> ReadDurationMs(const YAML::Node& node, std::string_view path);
// An integer in [min, max], or "auto" (returned as 0).
Result<int64_t> ReadIntOrAuto(const YAML::Node& node, std::string_view path, int64_t min, int64_t max);
// Single character (e.g. a delimiter); "\t" arrives already unescaped by YAML.
Result<char> ReadChar(const YAML::Node& node, std::string_view path);

// A YAML tree as JSON text (scalars become numbers or booleans when they parse
// as such, strings otherwise).
std::string YamlToJson(const YAML::Node& node);

// Applies "a.b[2].c=value" to the tree, creating maps along the way. The value
// is parsed as YAML ("[id, ts]" is a list).
Status ApplyOverride(YAML::Node* root, std::string_view assignment);

}  // namespace sluice::config
