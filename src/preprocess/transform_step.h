// Numeric transform steps with their parameters bound (internal to preprocess):
// log1p, standardize, minmax, clip. Shared by Preprocessor (the whole chain) and
// StatsFitter (the parameter-free prefix of a chain).
//
// Thread-safety: values and pure functions.
#pragma once

#include <cmath>
#include <limits>
#include <span>
#include <string_view>

#include "sluice/job.h"

namespace sluice {

struct TransformStep {
  TransformKind kind = TransformKind::kLog1p;
  // kStandardize: a = mean, b = scale (std, or 1 when std == 0).
  // kMinMax:      a = min,  b = range (max - min, or 1 when max == min).
  // kClip:        a = lower bound, b = upper bound (-inf / +inf when absent).
  double a = 0;
  double b = 0;

  static TransformStep Log1p() { return {TransformKind::kLog1p, 0, 0}; }
  // Like scikit-learn's StandardScaler: a zero std scales by 1.
  static TransformStep Standardize(double mean, double std) {
    return {TransformKind::kStandardize, mean, std == 0 ? 1.0 : std};
  }
  // Like scikit-learn's MinMaxScaler: a zero range scales by 1, so a constant
  // training feature maps to 0 (and other values to x - min).
  static TransformStep MinMax(double min, double max) {
    return {TransformKind::kMinMax, min, max == min ? 1.0 : max - min};
  }
  static TransformStep Clip(const TransformSpec& spec) {
    return {TransformKind::kClip, spec.clip_min.value_or(-std::numeric_limits<double>::infinity()),
            spec.clip_max.value_or(std::numeric_limits<double>::infinity())};
  }
};

// Applies `steps` in order to *x. Returns -1 on success, else the index of the
// step whose input is outside its domain (log1p of a value <= -1); *x is then
// that step's input.
inline int RunSteps(std::span<const TransformStep> steps, double* x) {
  double v = *x;
  for (size_t step_idx = 0; step_idx < steps.size(); ++step_idx) {
    const TransformStep& s = steps[step_idx];
    switch (s.kind) {
      case TransformKind::kLog1p:
        if (!(v > -1.0)) {
          *x = v;
          return static_cast<int>(step_idx);
        }
        v = std::log1p(v);
        break;
      case TransformKind::kStandardize: v = (v - s.a) / s.b; break;
      case TransformKind::kMinMax: v = (v - s.a) / s.b; break;
      case TransformKind::kClip: v = v < s.a ? s.a : (v > s.b ? s.b : v); break;
    }
  }
  *x = v;
  return -1;
}

}  // namespace sluice
