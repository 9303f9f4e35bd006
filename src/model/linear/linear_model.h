// The built-in linear model: k linear functions of F features with a link
// (identity, logistic or softmax), read from a small JSON file:
//
//   {"sluice_linear": 1,                                  // format version; put it first
//    "feature_names": ["amount", "age", "merchant=grocery"],   // required, F >= 1 names
//    "coefficients": [[w00, w01, w02], [w10, w11, w12]]   // k rows of F values,
//                  | [w0, w1, w2],                        //   or one row (k = 1)
//    "intercepts": [b0, b1] | b0,                         // k values; a number when k = 1
//    "link": "identity" | "logistic" | "softmax",
//    "metadata": {"trained_on": "2024-05-01"}}            // optional strings -> ModelInfo::metadata
//
// Every key but metadata is required; unknown keys are errors. For row x and
// class c, logit_c = intercepts[c] + sum_f coefficients[c][f] * x[f], accumulated
// in double. Outputs (one, float32, width k):
//   identity -> "value"         = logit_c
//   logistic -> "probability"   = 1 / (1 + exp(-logit_c)) per class; a binary
//                                 scikit-learn LogisticRegression exports k = 1 and
//                                 this is predict_proba[:, 1]
//   softmax  -> "probabilities" = exp(logit_c - max) / sum (k >= 2)
// A NaN feature makes every output of its row NaN. (Infinite features give
// infinite logits: logistic saturates to 0/1, softmax splits the mass among the
// +inf classes and is NaN when every logit is -inf.)
//
// Thread-safety: the model is immutable after load; Predict is safe for
// concurrent use (info().concurrent_predict = true). Predict ignores
// ModelOptions::threads: parallelism comes from callers predicting batches at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sluice/env.h"
#include "sluice/model.h"
#include "sluice/status.h"

namespace sluice {

// Registry detection: a ".json" path whose first bytes contain "sluice_linear".
bool DetectLinearModel(std::string_view path, std::string_view head);

// Reads options.path through env. Errors: kNotFound "model.path: no such file 'p'";
// kCorruption for malformed files and kNotSupported for an unknown link or format
// version, one line naming the file and key, e.g.
// "m.json: coefficients row 2 has 5 values, expected 7 (feature_names)".
Result<std::unique_ptr<Model>> LoadLinearModel(Env* env, const ModelOptions& options);

// Builds the model from the file's text; `path` names it in messages.
Result<std::unique_ptr<Model>> ParseLinearModel(std::string_view json_text, const std::string& path);

}  // namespace sluice
