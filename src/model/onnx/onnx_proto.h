// Facts read straight from the protobuf wire format of an ONNX ModelProto, for what
// ONNX Runtime's API does not expose: the opset imports, the IR version, and the
// class labels of ZipMap nodes (whose maps ORT returns in key order, not class order).
// Also the content test behind the backend's auto-detection.
//
// Only the fields named below are decoded; everything else is skipped by its wire
// type, so files from newer ONNX versions scan as long as the wire format is sound.
// No protobuf library is needed.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/status.h"

namespace sluice {

struct OnnxProtoFacts {
  int64_t ir_version = 0;
  std::string producer_version;
  // opset_import in file order: (domain, version); "" is the default domain ai.onnx.
  std::vector<std::pair<std::string, int64_t>> opsets;
  // For each ZipMap node of the main graph: its output name -> its class labels in
  // class order (classlabels_strings, or classlabels_int64s as decimal text).
  std::map<std::string, std::vector<std::string>> zipmap_labels;
};

// Scans a whole model file. Errors: kCorruption "offset N: <what>" when the bytes
// are not a well-formed ModelProto (bad varint, a length past the end, a group
// wire type); the caller adds the path.
Result<OnnxProtoFacts> ScanOnnxModel(std::string_view bytes);

// Content test for auto-detection, conservative: `head` (the first bytes of a file,
// possibly cut short) starts with the ir_version field (tag 0x08, a value 1..100)
// and is followed by at least one more well-formed ModelProto field. Text files,
// JSON and UBJSON never pass.
bool LooksLikeOnnxModel(std::string_view head);

// "ai.onnx 17, ai.onnx.ml 3": the opsets as one line for ModelInfo::metadata.
std::string DescribeOpsets(const std::vector<std::pair<std::string, int64_t>>& opsets);

}  // namespace sluice
