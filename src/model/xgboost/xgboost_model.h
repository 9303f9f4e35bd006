// The XGBoost backend: gradient-boosted tree (gbtree, dart) and gblinear models
// scored through XGBoost's C API (libxgboost 1.7).
//
// Files: the model is read through Env and handed to libxgboost as a buffer, so
// the file's content decides the encoding, not its name: JSON (save_model
// "x.json"), UBJSON ("x.ubj") or the legacy binary format (".bin", ".model",
// ...; "binf" header). Before the bytes reach libxgboost they pass the
// structural check in xgboost_format.h, so a truncated or foreign file is a
// one-line error instead of a huge allocation.
//
// Inputs: one float32 matrix [rows x num_features]; NaN is a missing value and
// follows the tree's default direction (gbtree/dart) or contributes 0
// (gblinear). ModelInfo::inputs has one entry, "features", shape [-1, F].
// feature_names come from the model (JSON/UBJSON models saved from a DMatrix or
// DataFrame with names; empty for legacy binary models and nameless training).
//
// Outputs, by the objective in the model's configuration:
//   binary:logistic                    -> "probability"    float32, width 1
//   multi:softprob (k classes)         -> "probabilities"  float32, width k,
//                                          element_names "0".."k-1"
//   multi:softmax, binary:hinge        -> "label"          int64 class index
//   anything else (reg:*, count:*, survival:*, rank:*, binary:logitraw,
//   reg:logistic, ...)                 -> "value"          float32, width = the
//                                          model's targets (1 but for multi-target)
//   plus "margin" (float32, the untransformed sum of trees and base score; width k
//   for multi:* models, else as "value") only when ModelOptions::requested_outputs
//   names it: it costs a second pass over the trees.
// Values are XGBoost's own (float32, as Booster.predict returns them for the
// whole model, ignoring best_iteration).
//
// Metadata: objective, booster, num_features, num_classes, num_targets,
// base_score, num_boosted_rounds, num_trees, num_parallel_tree (tree boosters),
// format (json | ubj | binary), and the model's attributes as
// "attribute.<name>" (e.g. best_iteration).
//
// Threads: ModelOptions::threads (at least 1) becomes XGBoost's "nthread", the
// OpenMP threads inside one Predict call; it also bounds the threads libxgboost
// uses to parse the model (the calling thread's OpenMP setting is changed for
// the duration of the load and restored).
//
// Thread-safety: XGBoost documents prediction as thread-safe for tree boosters
// since 1.4, and in-place prediction keeps its result buffer per calling thread
// and booster. The loader finishes the booster's lazy configuration (a
// double-checked flag in libxgboost) with a one-row prediction before returning,
// so concurrent Predict calls only read shared state: for gbtree and dart,
// info().concurrent_predict = true (measured on 2 cores with the 300-tree test
// model: 2 callers on one booster score 1.8x the rows/s of 2 callers behind a
// mutex). gblinear has no in-place prediction in 1.7 and its DMatrix prediction
// is not documented thread-safe: concurrent_predict = false, callers serialize.
// Memory note: libxgboost keeps each calling thread's last result (rows x width
// floats) per booster until that thread exits, also after the model is freed.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sluice/env.h"
#include "sluice/model.h"
#include "sluice/status.h"

namespace sluice {

// Registry detection: extension .ubj, .model, .xgb, .bin or .deprecated; or a
// head that is an XGBoost model by content: a JSON object with the keys
// "learner" and "gradient_booster", a UBJSON object whose first key is
// "learner", or the legacy "binf" header.
bool DetectXgboostModel(std::string_view path, std::string_view head);

// Reads options.path through env and loads it. Errors, one line naming the file:
// kNotFound "model.path: no such file 'p'"; kCorruption for a file that is not
// an XGBoost model or is truncated ("m.ubj: not an XGBoost model: invalid
// UBJSON: unexpected end of input at byte 2049"), and for errors libxgboost
// reports while loading (first line of its message); kNotSupported for a
// booster or output shape this backend cannot score. Names in
// options.requested_outputs other than "margin" are ignored here (the
// postprocessor reports outputs the model does not have).
Result<std::unique_ptr<Model>> LoadXgboostModel(Env* env, const ModelOptions& options);

// As above, from bytes already read; `options.path` names them in messages.
Result<std::unique_ptr<Model>> LoadXgboostModelFromBytes(std::string_view bytes, const ModelOptions& options);

}  // namespace sluice
