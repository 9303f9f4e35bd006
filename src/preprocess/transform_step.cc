#include "preprocess/transform_step.h"

namespace sluice {

std::string_view TransformKindName(TransformKind kind) {
  switch (kind) {
    case TransformKind::kLog1p: return "log1p";
    case TransformKind::kStandardize: return "standardize";
    case TransformKind::kMinMax: return "minmax";
    case TransformKind::kClip: return "clip";
  }
  return "unknown";
}

std::string_view ImputeKindName(ImputeKind kind) {
  switch (kind) {
    case ImputeKind::kNone: return "none";
    case ImputeKind::kMean: return "mean";
    case ImputeKind::kMedian: return "median";
    case ImputeKind::kMostFrequent: return "most_frequent";
    case ImputeKind::kConstant: return "constant";
    case ImputeKind::kNan: return "nan";
  }
  return "unknown";
}

}  // namespace sluice
