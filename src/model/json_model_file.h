// Helpers shared by the backends whose model file is a small JSON document
// (linear, fake): reading and parsing through Env, key checks, detection.
// Internal to src/model/; nlohmann::json exceptions never leave these functions.
//
// Error convention: every message starts with the model path and names the key,
// in one line ("m.json: coefficients row 2 has 5 values, expected 7 (feature_names)").
// A malformed file is kCorruption; a well-formed file asking for something this
// build does not have (a newer format version, an unknown link) is kNotSupported.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sluice/env.h"
#include "sluice/status.h"

namespace sluice {

// True when `path` ends with `ext` (".json"), ignoring ASCII case.
bool PathHasExtension(std::string_view path, std::string_view ext);

// True for a ".json" path whose head contains the quoted key `marker`
// ("sluice_linear"). Detection sees only the head the registry passes (1 MiB).
bool JsonFileHasMarker(std::string_view path, std::string_view head, std::string_view marker);

// Reads `path` through `env` and parses it as one JSON object.
// Errors: kNotFound "model.path: no such file 'p'"; kCorruption
// "p: not valid JSON: parse error at line 1, column 5: ..." or "p: expected a JSON object".
Result<nlohmann::json> ReadJsonModelFile(Env* env, const std::string& path);
// As above, from text already read (`path` names it in messages).
Result<nlohmann::json> ParseJsonModelText(std::string_view text, const std::string& path);

// kCorruption "p: unknown key 'k' (expected a, b, c)" for a key outside `allowed`.
Status CheckJsonKeys(const nlohmann::json& doc, const std::string& path,
                     std::initializer_list<std::string_view> allowed);

// Checks the format marker: `marker` present and equal to `version`.
// kCorruption when missing or not an integer; kNotSupported for another version.
Status CheckJsonFormatVersion(const nlohmann::json& doc, const std::string& path,
                              std::string_view marker, int64_t version);

// The integer at `key`, or `default_value` when the key is absent (absent and no
// default: kCorruption "p: missing key 'k'"). Values below `min_value` or not
// integers: kCorruption naming the key.
Result<int64_t> GetJsonInt(const nlohmann::json& doc, const std::string& path,
                           std::string_view key, std::optional<int64_t> default_value,
                           int64_t min_value);

}  // namespace sluice
