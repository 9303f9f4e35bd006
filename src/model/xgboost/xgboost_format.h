// The three encodings of an XGBoost model file, told apart by content, and a
// structural check run before the bytes reach libxgboost. Internal to
// src/model/xgboost/; independent of the XGBoost library.
//
// How XGBoost 1.7 reads a buffer (XGBoosterLoadModelFromBuffer): a leading
// "binf" is skipped; then a buffer starting with '{' is JSON when its first
// non-space byte after the '{' is '"', UBJSON when that byte is a letter (UBJSON
// keys carry a length whose type marker is a letter, 'L' in XGBoost's writer),
// and an error otherwise; anything else is read as the legacy binary format
// (deprecated since 1.6, saved by save_model("x.bin" / "x.model" / ...)). The
// extension plays no part when loading from a buffer.
//
// Why a check first: libxgboost trusts the lengths stored in UBJSON and legacy
// binary files and allocates them before reading the data behind them. A
// truncated .ubj or a random file read as legacy binary can make it ask for
// gigabytes (std::bad_alloc, or the kernel's OOM killer on an overcommitting
// system) instead of failing. The check walks the length-prefixed structure
// without allocating in proportion to any stored length, and rejects lengths
// that do not fit in the bytes left. JSON text has no stored lengths and
// libxgboost's JSON parser fails cleanly on truncation, so it is not walked.
//
// What the legacy check covers (layout of XGBoost 1.x, little-endian):
//   ["binf"] LearnerModelParamLegacy (136 bytes) | objective string | booster string
//   (string = u64 length + bytes), then for gbtree/dart: GBTreeModelParam (160
//   bytes, num_trees first) and per tree TreeParam (148 bytes, num_nodes at
//   offset 4) + num_nodes * (20-byte node + 16-byte stat), then num_trees int32
//   tree_info; for gblinear: its 136-byte param and a u64-counted float vector.
// What follows (dart weights, attributes) is read by libxgboost with lengths
// that a file passing this check came with; only deliberately crafted files get
// further.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

enum class XgboostFormat {
  kJson,          // text JSON, from save_model("x.json")
  kUbjson,        // Universal Binary JSON, save_model("x.ubj")
  kLegacyBinary,  // the pre-1.6 binary format, with or without the "binf" header
};

// "json", "ubj", "binary".
std::string_view XgboostFormatName(XgboostFormat format);

// The model bytes with leading ASCII whitespace and a UTF-8 byte order mark
// removed when a JSON object follows them (libxgboost wants the '{' first).
std::string_view TrimJsonPrefix(std::string_view bytes);

// Tells the encoding from the (trimmed) bytes the way libxgboost will, and
// checks that libxgboost can read it safely (see above). `path` names the file
// in messages. Errors, one line:
//   kCorruption "p: not an XGBoost model: the file is empty" / "...: a '{' must
//     be followed by a JSON or UBJSON key" / "...: truncated UBJSON: unexpected
//     end of input at byte 2048" / "p: not an XGBoost model: legacy binary tree
//     12 at byte 6012 has 16777216 nodes, more than the 700 bytes left hold" / ...
//   kNotSupported "p: base64 legacy models ("bs64") are not supported; ..."
Result<XgboostFormat> CheckXgboostModelBytes(std::string_view bytes, const std::string& path);

}  // namespace sluice
