// Helpers shared by the preprocess unit tests (not part of the engine).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sluice/job.h"

namespace sluice {

// A numeric feature reading the column of the same name, with transforms of
// `kinds` (clip without bounds) and impute `impute`.
inline FeatureSpec Numeric(std::string name, std::vector<TransformKind> kinds = {},
                           ImputeKind impute = ImputeKind::kNone) {
  FeatureSpec f;
  f.name = std::move(name);
  f.impute = impute;
  for (TransformKind kind : kinds) {
    TransformSpec t;
    t.kind = kind;
    f.transforms.push_back(t);
  }
  return f;
}

}  // namespace sluice
